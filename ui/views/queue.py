"""The Queue page without Gradio: filters, one page of rows as an HTML table (the seed's columns
with badges, plus attempts, progress, age and the Prefect flow run), and cancel/retry."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from html import escape

import sqlalchemy as sa
from sqlmodel import col, select

from reelroute.models.assembly import Settings
from reelroute.models.core import (
    CATALOGUE,
    InferenceProvider,
    InvalidInput,
    InvalidTransition,
    ItemEta,
    ItemStatus,
    NotFound,
    Photo,
    VideoItem,
    ago,
    clock,
    utcnow,
)
from reelroute.models.health import unavailable
from reelroute.models.items import blind_ids, etas_of, list_queue
from reelroute.models.items import lifecycle as ops
from reelroute.models.store import Storage, session_scope

ALL = "all"
PAGE_SIZE = 50
THUMBNAIL_PX = 64
PROMPT_CHARS = 60

# The seed's badges (SEED.md §3.2): WAN / Gen-4 / Veo 3.1.
BADGE_CLASSES = {
    InferenceProvider.wan_local: "rr-wan",
    InferenceProvider.runway_gen4_turbo: "rr-gen4",
    InferenceProvider.runway_gen4_5: "rr-gen45",
    InferenceProvider.runway_veo3_1: "rr-veo",
    InferenceProvider.runway_veo3_1_fast: "rr-veofast",
}
PROVIDER_BADGES = {
    provider: (entry.badge, BADGE_CLASSES.get(provider, "rr-gen4"))
    for provider, entry in CATALOGUE.items()
}
STATUS_CLASSES = {status: f"rr-{status.value}" for status in ItemStatus}
STATUS_COLOURS: dict[ItemStatus, str] = {
    ItemStatus.pending: "#334155",  # slate: waiting
    ItemStatus.processing: "#2563eb",  # blue: at work
    ItemStatus.review: "#a16207",  # amber: waiting for a person
    ItemStatus.completed: "#15803d",  # green
    ItemStatus.failed: "#b91c1c",  # red
    ItemStatus.cancelled: "#9ca3af",  # light grey (dark text on badges)
}
"""One colour per status, by meaning, for every badge and chart of the admin."""

CSS = (
    """
.rr-table { border-collapse: collapse; width: 100%; font-size: 14px; }
.rr-table th, .rr-table td { border-bottom: 1px solid #e5e7eb; padding: 4px 8px; text-align: left;
  vertical-align: middle; }
.rr-table img { width: 48px; height: 48px; object-fit: cover; border-radius: 4px; }
.rr-badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; color: #fff; white-space: nowrap; }
.rr-wan { background: #0f766e; } .rr-gen4 { background: #7c3aed; } .rr-veo { background: #b45309; }
.rr-gen45 { background: #5b21b6; } .rr-veofast { background: #d97706; }
.rr-late { background: #dc2626; } .rr-ontime { background: #15803d; }
"""
    + " ".join(
        f".{STATUS_CLASSES[status]} {{ background: {colour}; }}"
        for status, colour in STATUS_COLOURS.items()
    )
    + """ .rr-cancelled { color: #111827; }
.rr-sandbox { background: #fef3c7; border: 2px solid #d97706; color: #78350f; padding: 8px 12px;
  border-radius: 6px; font-weight: 600; }
"""
)


@dataclass(frozen=True)
class Filters:
    """The page's filters; None means all."""

    provider: InferenceProvider | None = None
    status: ItemStatus | None = None
    group_id: uuid.UUID | None = None

    @classmethod
    def parse(cls, provider: str | None, status: str | None, group_id: str | None) -> Filters:
        """From the select values (`all` or empty means no filter)."""

        def chosen(value: str | None) -> str | None:
            return None if value in (None, "", ALL) else value

        try:
            return cls(
                provider=InferenceProvider(p) if (p := chosen(provider)) else None,
                status=ItemStatus(s) if (s := chosen(status)) else None,
                group_id=uuid.UUID(g) if (g := chosen(group_id)) else None,
            )
        except ValueError as error:
            raise InvalidInput([f"filters: {error}"]) from None


def provider_filter_choices() -> list[tuple[str, str]]:
    """(label, value) of the provider filter."""
    return [("All providers", ALL)] + [(PROVIDER_BADGES[p][0], p.value) for p in InferenceProvider]


def status_filter_choices() -> list[tuple[str, str]]:
    """(label, value) of the status filter."""
    return [("All statuses", ALL)] + [(s.value, s.value) for s in ItemStatus]


def provider_badge(provider: InferenceProvider) -> str:
    """The inference method badge of the seed's queue page."""
    text, css = PROVIDER_BADGES[provider]
    return f'<span class="rr-badge {css}" title="{provider.value}">{text}</span>'


def status_badge(status: ItemStatus) -> str:
    """The status badge."""
    return f'<span class="rr-badge {STATUS_CLASSES[status]}">{status.value}</span>'


def eta_cell(item: VideoItem, eta: ItemEta | None, now: datetime) -> str:
    """ETA column: the predicted finish, the queue position, and a badge when the item is at
    risk of missing its due time; for finished items, whether they made it."""
    due = f"due {clock(item.due_at, now)}"
    if item.status is ItemStatus.completed and item.finished_at is not None:
        made = item.finished_at <= item.due_at
        badge = "on time" if made else "late"
        css = "rr-ontime" if made else "rr-late"
        return f'<span class="rr-badge {css}">{badge}</span> <small>{due}</small>'
    if eta is None or item.status not in (ItemStatus.pending, ItemStatus.processing):
        return f"<small>{due}</small>" if item.status is ItemStatus.pending else "-"
    where = "at work" if eta.queue_position == 0 else f"#{eta.queue_position}"
    risk = ' <span class="rr-badge rr-late">late risk</span>' if eta.late_risk else ""
    return f"{clock(eta.eta, now)} <small>({where}, {due})</small>{risk}"


def flow_run_url(prefect_ui_url: str | None, flow_run_id: uuid.UUID | None) -> str | None:
    """The Prefect UI page of a flow run, when both are known."""
    if prefect_ui_url is None or flow_run_id is None:
        return None
    return f"{prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


@lru_cache(maxsize=2048)
def _thumbnail(storage_url: str, path: str) -> str | None:
    """A small JPEG of a stored photo as a data URI (content-addressed, so cached by path)."""
    from PIL import Image

    try:
        data = Storage(storage_url).read(path)
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=80)
    except (NotFound, OSError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def item_label(item: VideoItem, blind: bool = False) -> str:
    """How an item is named in the selection: short id, method (not for a blind A/B
    sample), status."""
    method = "A/B sample" if blind else PROVIDER_BADGES[item.inference_provider][0]
    return f"{str(item.id)[:8]} · {method} · {item.status.value}"


@dataclass(frozen=True)
class QueueView:
    """One rendered page: the table, the selectable items (label, id), the next page's cursor."""

    html: str
    choices: list[tuple[str, str]]
    next_cursor: str | None
    shown: int


def render_page(
    engine: sa.Engine,
    settings: Settings,
    filters: Filters,
    *,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    prefect_ui_url: str | None = None,
    now: datetime | None = None,
) -> QueueView:
    """The queue newest first, one page, as an HTML table (every value escaped)."""
    now = now or utcnow()
    with session_scope(engine) as session:
        page = list_queue(
            session,
            provider=filters.provider,
            status=filters.status,
            group_id=filters.group_id,
            limit=limit,
            cursor=cursor,
        )
        etas = etas_of(session, [item.id for item in page.items])
        waiting = unavailable(session, now)
        blind = blind_ids(session, page.items)
        photo_ids = {item.photo_id for item in page.items if item.photo_id is not None}
        paths = dict(
            session.exec(
                select(Photo.id, Photo.storage_path).where(col(Photo.id).in_(photo_ids))
            ).all()
        )
    rows = []
    for item in page.items:
        path = paths.get(item.photo_id) if item.photo_id else None
        thumb = _thumbnail(settings.store.storage_url, path) if path else None
        photo = f'<img src="{thumb}" alt="photo">' if thumb else "-"
        prompt = (
            item.prompt if len(item.prompt) <= PROMPT_CHARS else item.prompt[:PROMPT_CHARS] + "…"
        )
        url = flow_run_url(prefect_ui_url, item.flow_run_id)
        run = f'<a href="{escape(url)}" target="_blank" rel="noopener">flow run</a>' if url else "-"
        if item.id in blind:  # an A/B sample: who makes it is shown after the pick
            rows.append(
                "<tr>"
                f'<td><code title="{item.id}">{str(item.id)[:8]}</code></td>'
                f"<td>{photo}</td>"
                f'<td title="{escape(item.prompt)}">{escape(prompt)}</td>'
                '<td><span class="rr-badge">A/B sample</span></td>'
                f"<td>{status_badge(item.status)}</td>"
                "<td>-</td>"
                f"<td>{item.retry_count}</td>"
                f"<td>{round(item.progress * 100)}%</td>"
                f"<td>{eta_cell(item, etas.get(item.id), now)}</td>"
                f"<td>{ago(item.created_at, now)}</td>"
                "<td>-</td>"
                "</tr>"
            )
            continue
        error = (
            f'<br><small title="{escape(item.error)}">{escape(item.error[:80])}</small>'
            if (item.error)
            else ""
        )
        if item.status is ItemStatus.pending and item.inference_provider in waiting:
            why = waiting[item.inference_provider]
            error += (
                f'<br><small class="rr-waits" title="{escape(why)}">waits: {escape(why)}</small>'
            )

        rows.append(
            "<tr>"
            f'<td><code title="{item.id}">{str(item.id)[:8]}</code></td>'
            f"<td>{photo}</td>"
            f'<td title="{escape(item.prompt)}">{escape(prompt)}</td>'
            f"<td>{provider_badge(item.inference_provider)}</td>"
            f"<td>{status_badge(item.status)}{error}</td>"
            f"<td>{escape(item.worker_id or '-')}</td>"
            f"<td>{item.retry_count}</td>"
            f"<td>{round(item.progress * 100)}%</td>"
            f"<td>{eta_cell(item, etas.get(item.id), now)}</td>"
            f"<td>{ago(item.created_at, now)}</td>"
            f"<td>{run}</td>"
            "</tr>"
        )
    header = "".join(
        f"<th>{name}</th>"
        for name in (
            "ID",
            "Photo",
            "Prompt",
            "Inference method",
            "Status",
            "Worker",
            "Attempts",
            "Progress",
            "ETA",
            "Age",
            "Prefect",
        )
    )
    body = "".join(rows) or '<tr><td colspan="11">No items match these filters.</td></tr>'
    html = f'<table class="rr-table"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'
    return QueueView(
        html=html,
        choices=[(item_label(item, item.id in blind), str(item.id)) for item in page.items],
        next_cursor=page.next_cursor,
        shown=len(page.items),
    )


def act_on(
    engine: sa.Engine,
    settings: Settings,
    action: str,
    item_ids: list[str],
    *,
    cancel: Callable[[sa.Engine, Settings, uuid.UUID], VideoItem] | None = None,
) -> str:
    """Cancel or retry the selected items, each on its own; returns what happened to each
    (an item that cannot be cancelled or retried is reported, the others still are)."""
    if action not in ("cancel", "retry"):
        raise InvalidInput([f"action: {action!r} is neither cancel nor retry"])
    if not item_ids:
        return "Select items first."
    if cancel is None:
        from reelroute.flows.reconcile import cancel_everywhere

        cancel = cancel_everywhere
    lines = []
    for raw in item_ids:
        try:
            item_id = uuid.UUID(raw)
            if action == "cancel":
                item = cancel(engine, settings, item_id)
            else:
                with session_scope(engine) as session:
                    item = ops.retry_item(session, item_id=item_id)
            lines.append(f"- `{raw[:8]}`: {item.status.value}")
        except (ValueError, NotFound, InvalidTransition) as error:
            done = "cancelled" if action == "cancel" else "retried"
            lines.append(f"- `{raw[:8]}`: not {done}: {escape(str(error))}")
    return "\n".join(lines)
