"""What the dispatcher and the reconciler (flows/) read and write: plain functions on a session."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models import events, queries
from reelroute.models.budgets import settle
from reelroute.models.catalogue import CATALOGUE
from reelroute.models.enums import InferenceProvider, ItemStatus, Pool
from reelroute.models.events import record
from reelroute.models.limits import RunwayLimits
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
    due_at: datetime

    @property
    def attempt(self) -> int:
        """The attempt the flow run will hold once it claims the item."""
        return self.retry_count + 1


def in_flight(session: Session, pool: Pool) -> dict[InferenceProvider, int]:
    """Per provider of the pool, its items processing or already sent to Prefect."""
    rows = session.execute(sa.text(queries.in_flight(pool))).all()
    return {InferenceProvider(provider): int(count) for provider, count in rows}


def count_in_flight(session: Session, pool: Pool) -> int:
    """Items of the pool that are processing or already sent to Prefect."""
    return sum(in_flight(session, pool).values())


def next_to_dispatch(
    session: Session,
    *,
    pool: Pool,
    limit: int,
    settings: Settings,
    provider: InferenceProvider | None = None,
    now: datetime | None = None,
) -> list[Dispatchable]:
    """The next due pending items of the pool (or of one provider) that no flow run has been
    made for, earliest due first."""
    if limit <= 0:
        return []
    statement = sql(queries.next_to_dispatch(pool, one_provider=provider is not None)).columns(
        sa.column("id", sa.Uuid()),
        sa.column("retry_count", sa.Integer()),
        sa.column("priority", sa.Integer()),
        sa.column("inference_provider", sa.String()),
        sa.column("group_id", sa.Uuid()),
        sa.column("due_at", UTCDateTime()),
    )
    params: dict[str, object] = {
        "now": now or utcnow(),
        "max_attempts": settings.max_attempts,
        "limit": limit,
    }
    if provider is not None:
        params["provider"] = provider.value
    rows = session.execute(statement, params)
    return [
        Dispatchable(
            row.id,
            row.retry_count,
            row.priority,
            InferenceProvider(row.inference_provider),
            row.group_id,
            row.due_at,
        )
        for row in rows
    ]


def mark_dispatched(
    session: Session,
    *,
    item_id: uuid.UUID,
    retry_count: int,
    flow_run_id: uuid.UUID,
    provider: InferenceProvider,
) -> bool:
    """Record the flow run of the item's next attempt; False when the item changed meanwhile
    (cancelled, claimed by a pull worker, or moved to another provider)."""
    result = session.execute(
        sql(queries.MARK_DISPATCHED),
        {
            "item_id": item_id,
            "provider": provider.value,
            "retry_count": retry_count,
            "flow_run_id": flow_run_id,
            "now": utcnow(),
        },
    )
    return rowcount(result) > 0


RUN_NOT_STARTED = "RUN_NOT_STARTED"
"""The failure code of an attempt whose flow run ended before it claimed the item."""


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
            "failure_code": RUN_NOT_STARTED,
            "max_attempts": settings.max_attempts,
            "now": utcnow(),
        },
    )
    if rowcount(result) == 0:
        return False
    item = session.get(VideoItem, item_id, populate_existing=True)
    if item is not None and item.status is ItemStatus.failed:
        settle(session, item_id=item_id, spent_credits=item.cost_credits or 0)
        record(session, [item], events.FAILED)
    return True


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


def runway_slots(settings: Settings, limits: RunwayLimits | None) -> int:
    """How many Runway items may run at once: REELROUTE_CLOUD_SLOTS (what our cloud worker
    host holds), and no more than the sum of Runway's per-model concurrency once it is known
    (a model without a limit counts REELROUTE_CLOUD_SLOTS)."""
    if limits is None:
        return settings.cloud_slots
    runway = sum(
        limits.model(CATALOGUE[provider].model).max_concurrent or settings.cloud_slots
        for provider in Pool.cloud.providers()
    )
    return max(1, min(settings.cloud_slots, runway))


def plan_dispatch(
    session: Session,
    *,
    pool: Pool,
    settings: Settings,
    limits: RunwayLimits | None = None,
    now: datetime | None = None,
) -> list[Dispatchable]:
    """The items to send to `pool` now, earliest due first: no more than its free slots (plus
    the look-ahead); for Runway, once its limits are known, no more per model than the model
    may run at once (so nothing of ours waits THROTTLED at Runway, unseen by our ETAs), and
    nothing of a model whose daily limit is used up."""
    flying = in_flight(session, pool)
    busy = sum(flying.values())
    if pool is Pool.gpu or limits is None:
        free = settings.pool_slots(pool) + settings.dispatch_lookahead - busy
        return next_to_dispatch(session, pool=pool, limit=free, settings=settings, now=now)
    candidates: list[Dispatchable] = []
    for provider in pool.providers():
        model = limits.model(CATALOGUE[provider].model)
        if model.daily_left == 0:
            continue
        cap = model.max_concurrent if model.max_concurrent is not None else settings.cloud_slots
        candidates += next_to_dispatch(
            session,
            pool=pool,
            provider=provider,
            limit=cap - flying.get(provider, 0),
            settings=settings,
            now=now,
        )
    free = runway_slots(settings, limits) - busy
    return sorted(candidates, key=lambda item: item.due_at)[: max(free, 0)]
