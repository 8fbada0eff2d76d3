"""The Webhooks page without Gradio: the endpoints, the deliveries per status, the dead letters
and resending one."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from reelroute.models import webhooks
from reelroute.models.db import session_scope
from reelroute.models.errors import InvalidInput
from reelroute.models.tables import WebhookEndpoint

ENDPOINT_COLUMNS = ["Endpoint", "Events", "Default"]
DEAD_COLUMNS = ["Delivery", "Event", "Item", "Endpoint", "Attempts", "Last answer", "Since"]


def endpoint_rows(engine: sa.Engine) -> list[list[Any]]:
    """One row per registered endpoint."""
    with session_scope(engine) as session:
        found = session.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.created_at)))
        return [
            [
                endpoint.url,
                ", ".join(endpoint.events) if endpoint.events else "all but item.progress",
                "yes" if endpoint.is_default else "",
            ]
            for endpoint in found.all()
        ]


def summary(engine: sa.Engine) -> str:
    """Deliveries per status, in one line."""
    with session_scope(engine) as session:
        found = webhooks.counts(session)
    parts = [f"**{found.get(status, 0)}** {status}" for status in ("pending", "delivered", "dead")]
    return "Deliveries: " + " · ".join(parts)


def dead_rows(engine: sa.Engine) -> list[list[Any]]:
    """The dead letters, newest first."""
    with session_scope(engine) as session:
        return [
            [
                delivery.id,
                kind,
                str(delivery.item_id)[:8],
                url,
                delivery.attempts,
                delivery.last_error or "",
                delivery.first_attempt_at.strftime("%Y-%m-%d %H:%M UTC")
                if delivery.first_attempt_at
                else "",
            ]
            for delivery, url, kind in webhooks.dead_letters(session)
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
