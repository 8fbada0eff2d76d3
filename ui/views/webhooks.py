"""The Webhooks page without Gradio: the endpoints with their receivers' latest answers (disable,
enable, rotate a secret, delete), the deliveries per status, the dead letters and resending
one."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from reelroute.models.assembly import Settings
from reelroute.models.core import DeliveryStatus, InvalidInput, NotFound, stamp, utcnow
from reelroute.models.items import forget_endpoint
from reelroute.models.outbox import WebhookEndpoint, endpoints, webhooks
from reelroute.models.store import session_scope

ENDPOINT_COLUMNS = ["Endpoint", "Events", "Default", "State", "Last answers"]
ACTIONS = ("disable", "enable", "rotate", "delete")
DEAD_COLUMNS = ["Delivery", "Event", "Item", "Endpoint", "Attempts", "Last answer", "Since"]


def endpoint_rows(engine: sa.Engine) -> list[list[Any]]:
    """One row per registered endpoint."""
    with session_scope(engine) as session:
        return [
            [
                endpoint.url,
                ", ".join(endpoint.events) if endpoint.events else "all but item.progress",
                "yes" if endpoint.is_default else "",
                _state(endpoint),
                _answers(endpoint.last_answers or []),
            ]
            for endpoint in endpoints.list_endpoints(session)
        ]


def _state(endpoint: WebhookEndpoint) -> str:
    state = "enabled" if endpoint.enabled else "disabled"
    if endpoint.previous_secret_until is not None and endpoint.previous_secret_until > utcnow():
        state += f"; old secret signs too until {stamp(endpoint.previous_secret_until)}"
    return state


def _answers(answers: list[dict[str, Any]]) -> str:
    """The latest answers, newest first: `204 (35 ms)`, `503: busy (120 ms)`, `- no answer…`."""
    shown = []
    for answer in answers[:5]:
        status = answer.get("status") or "-"
        error = f": {answer['error'][:60]}" if answer.get("error") else ""
        shown.append(f"{status}{error} ({answer.get('ms', 0)} ms)")
    return "; ".join(shown) or "none yet"


def endpoint_choices(engine: sa.Engine) -> list[tuple[str, str]]:
    """The endpoints as (URL, id), for the actions."""
    with session_scope(engine) as session:
        return [(e.url, str(e.id)) for e in endpoints.list_endpoints(session)]


def act_on_endpoints(engine: sa.Engine, settings: Settings, action: str, chosen: list[str]) -> str:
    """Disable, enable, rotate the secret of, or delete the chosen endpoints; a sentence per
    endpoint for the page (a rotated secret is shown there once)."""
    if action not in ACTIONS:
        return f"Unknown action {action!r}."
    if not chosen:
        return "Choose the endpoints first."
    lines = []
    for value in chosen:
        try:
            endpoint_id = uuid.UUID(value)
            with session_scope(engine) as session:
                if action == "rotate":
                    endpoint, secret = endpoints.rotate(session, settings, endpoint_id)
                    lines.append(
                        f"{endpoint.url}: new secret `{secret}` (shown once; the old one signs "
                        "too for 24 h)"
                    )
                elif action == "delete":
                    forget_endpoint(session, endpoint_id)
                    endpoints.delete(session, endpoint_id)
                    lines.append(f"{value}: deleted")
                else:
                    endpoint = endpoints.change(session, endpoint_id, enabled=action == "enable")
                    lines.append(f"{endpoint.url}: {action}d")
        except (InvalidInput, NotFound, ValueError) as error:
            lines.append(f"{value}: {error}")
    return "\n".join(f"- {line}" for line in lines)


def summary(engine: sa.Engine) -> str:
    """Deliveries per status, in one line."""
    with session_scope(engine) as session:
        found = webhooks.counts(session)
    parts = [f"**{found.get(status, 0)}** {status}" for status in DeliveryStatus]
    return "Deliveries: " + " · ".join(parts)


def dead_rows(engine: sa.Engine) -> list[list[Any]]:
    """The dead letters, newest first."""
    with session_scope(engine) as session:
        return [
            [
                dead.delivery.id,
                dead.event_type.value,
                str(dead.delivery.item_id)[:8],
                dead.endpoint_url,
                dead.delivery.attempts,
                dead.delivery.last_error or "",
                stamp(dead.delivery.first_attempt_at) if dead.delivery.first_attempt_at else "",
            ]
            for dead in webhooks.dead_letters(session)
        ]


def dead_choices(engine: sa.Engine) -> list[tuple[str, str]]:
    """The dead letters as (label, delivery id) for the resend selection."""
    return [
        (f"#{row[0]} {row[1]} of {row[2]} to {row[3]}", str(row[0])) for row in dead_rows(engine)
    ]


def resend(engine: sa.Engine, chosen: list[str]) -> str:
    """Resend the chosen dead deliveries; a sentence for the page."""
    if not chosen:
        return "Choose the deliveries to send again."
    lines = []
    for value in chosen:
        try:
            with session_scope(engine) as session:
                webhooks.resend(session, int(value))
            lines.append(f"#{value}: sent again")
        except InvalidInput as error:
            lines.append(f"#{value}: {'; '.join(error.problems)}")
    return "\n".join(f"- {line}" for line in lines)
