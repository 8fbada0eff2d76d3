"""The item-event outbox: what happened to an item, written in the same transaction as the
change itself, so a crash can neither lose an event nor invent one. Webhooks
(`flows.webhooks`) and the SSE stream (`GET /api/admin/events`) are fed from it.

Events: `item.created`, `item.started`, `item.progress` (at most one every PROGRESS_EVERY per
item), `item.rerouted`, `item.completed`, `item.failed` (for good), `item.cancelled`, and the
providers' `provider.opened` / `provider.closed` (`record_subject`). Their ids grow with time;
two events of one item are written by transactions that took the item's row in turn, so their
ids are in the item's order.

This module is the only writer of `item_events` (tests/test_architecture.py checks it): every
other room calls it, so what an event holds is decided in one place.

A session whose `info["events"]` is False writes none (the claim benchmark's baseline).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from reelroute.models.core.enums import EventType
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.outbox.tables import ItemEvent
from reelroute.models.store.queries.outbox import STARTED_CTE, STARTED_ROW
from reelroute.models.store.sql import sql

DEFAULT_EVENTS = tuple(kind for kind in EventType if kind is not EventType.progress)
"""What an endpoint that names no events gets: progress is opt-in."""
PROGRESS_EVERY = timedelta(seconds=30)


def enabled(session: Session) -> bool:
    """Whether this session writes events."""
    return bool(session.info.get("events", True))


def record(
    session: Session,
    items: Iterable[VideoItem],
    kind: EventType,
    *,
    detail: str | None = None,
    now: datetime | None = None,
) -> None:
    """Write one `kind` event per item, as the items are now (in the caller's transaction)."""
    if not enabled(session):
        return
    now = now or utcnow()
    rows = [
        {
            "item_id": item.id,
            "group_id": item.group_id,
            "type": kind,
            "status": item.status.value,
            "provider": item.inference_provider.value,
            "attempt": item.retry_count,
            "progress": item.progress if kind is EventType.progress else None,
            "detail": detail if detail is not None else _detail(item, kind),
            "cost_credits": item.cost_credits,
            "created_at": now,
            "fanned_out": False,
        }
        for item in items
    ]
    if rows:
        session.execute(sa.insert(ItemEvent), rows)


def record_subject(
    session: Session,
    *,
    subject: str,
    subject_id: uuid.UUID,
    kind: EventType,
    status: str,
    provider: str,
    detail: str,
    now: datetime,
) -> None:
    """One event of something that is not an item (a provider's breaker, `subject`), under a
    stable id of its own (`subject_id`) where an item's id would be."""
    if not enabled(session):
        return
    session.execute(
        sa.insert(ItemEvent),
        [
            {
                "item_id": subject_id,
                "group_id": None,
                "type": kind,
                "status": status,
                "provider": provider[:20],
                "attempt": 0,
                "detail": detail,
                "subject": subject,
                "created_at": now,
                "fanned_out": False,
            }
        ],
    )


def _detail(item: VideoItem, kind: EventType) -> str | None:
    if kind in (EventType.created, EventType.rerouted):
        return item.route_reason
    if kind is EventType.failed:
        return item.error
    return None


def with_started_event(claim_statement: str) -> str:
    """The claim statement that also writes its `item.started` (PostgreSQL)."""
    return STARTED_CTE.format(claim=claim_statement.strip())


def record_started(
    session: Session,
    *,
    item_id: uuid.UUID,
    group_id: uuid.UUID | None,
    provider: str,
    attempt: int,
    now: datetime,
) -> None:
    """The `item.started` of a claim, as its own statement (SQLite)."""
    statement = sql(STARTED_ROW).bindparams(
        sa.bindparam("item_id", type_=sa.Uuid()), sa.bindparam("group_id", type_=sa.Uuid())
    )
    params: dict[str, Any] = {
        "item_id": item_id,
        "group_id": group_id,
        "provider": provider,
        "attempt": attempt,
        "now": now,
    }
    session.connection().execute(statement, params)
