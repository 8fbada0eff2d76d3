"""What the dispatcher and the reconciler (flows/) read and write: plain functions on a session."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models import queries
from reelroute.models.enums import InferenceProvider, ItemStatus, Pool
from reelroute.models.settings import Settings
from reelroute.models.sql import rowcount, sql
from reelroute.models.tables import VideoItem, utcnow


@dataclass(frozen=True)
class Dispatchable:
    """A pending item the dispatcher may send to Prefect as attempt `retry_count + 1`."""

    item_id: uuid.UUID
    retry_count: int
    priority: int
    inference_provider: InferenceProvider
    group_id: uuid.UUID | None

    @property
    def attempt(self) -> int:
        """The attempt the flow run will hold once it claims the item."""
        return self.retry_count + 1


def count_in_flight(session: Session, pool: Pool) -> int:
    """Items of the pool that are processing or already sent to Prefect."""
    return int(session.execute(sa.text(queries.in_flight(pool))).scalar_one())


def next_to_dispatch(
    session: Session, *, pool: Pool, limit: int, settings: Settings
) -> list[Dispatchable]:
    """The next due pending items of the pool that no flow run has been made for."""
    if limit <= 0:
        return []
    statement = sql(queries.next_to_dispatch(pool)).columns(
        sa.column("id", sa.Uuid()),
        sa.column("retry_count", sa.Integer()),
        sa.column("priority", sa.Integer()),
        sa.column("inference_provider", sa.String()),
        sa.column("group_id", sa.Uuid()),
    )
    rows = session.execute(
        statement, {"now": utcnow(), "max_attempts": settings.max_attempts, "limit": limit}
    )
    return [
        Dispatchable(
            row.id,
            row.retry_count,
            row.priority,
            InferenceProvider(row.inference_provider),
            row.group_id,
        )
        for row in rows
    ]


def mark_dispatched(
    session: Session, *, item_id: uuid.UUID, retry_count: int, flow_run_id: uuid.UUID
) -> bool:
    """Record the flow run of the item's next attempt; False when the item changed meanwhile
    (cancelled, or claimed by a pull worker)."""
    result = session.execute(
        sql(queries.MARK_DISPATCHED),
        {
            "item_id": item_id,
            "retry_count": retry_count,
            "flow_run_id": flow_run_id,
            "now": utcnow(),
        },
    )
    return rowcount(result) > 0


def run_lost_before_claim(
    session: Session,
    *,
    item_id: uuid.UUID,
    flow_run_id: uuid.UUID,
    reason: str,
    settings: Settings,
) -> bool:
    """A flow run ended (crashed, cancelled, vanished) before claiming its item: that attempt
    is used up; the next one is dispatched, or the item fails after the last."""
    result = session.execute(
        sql(queries.RUN_LOST_BEFORE_CLAIM),
        {
            "item_id": item_id,
            "flow_run_id": flow_run_id,
            "error": reason,
            "max_attempts": settings.max_attempts,
            "now": utcnow(),
        },
    )
    return rowcount(result) > 0


def items_by_id(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, VideoItem]:
    """The items with these ids (those that exist)."""
    if not ids:
        return {}
    query = select(VideoItem).where(col(VideoItem.id).in_(list(ids)))
    return {item.id: item for item in session.exec(query).all()}


def items_with_runs(session: Session, *, limit: int = 500) -> list[VideoItem]:
    """Unfinished items that have a flow run (pending and sent, or processing)."""
    query = (
        select(VideoItem)
        .where(col(VideoItem.flow_run_id).is_not(None))
        .where(col(VideoItem.status).in_([ItemStatus.pending, ItemStatus.processing]))
        .limit(limit)
    )
    return list(session.exec(query).all())


def recently_cancelled_with_runs(
    session: Session, *, within: timedelta = timedelta(days=1), limit: int = 500
) -> list[VideoItem]:
    """Items cancelled lately whose flow run (or Runway task) may still be running."""
    since: datetime = utcnow() - within
    query = (
        select(VideoItem)
        .where(col(VideoItem.status) == ItemStatus.cancelled)
        .where(col(VideoItem.finished_at) >= since)
        .where(
            sa.or_(
                col(VideoItem.flow_run_id).is_not(None),
                col(VideoItem.provider_task_id).is_not(None),
            )
        )
        .limit(limit)
    )
    return list(session.exec(query).all())
