"""What the dispatcher and the reconciler (flows/) read and write: plain functions on a session."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models.core.catalogue import CATALOGUE
from reelroute.models.core.enums import (
    POOL_OF,
    EventType,
    FailureClass,
    FailureCode,
    InferenceProvider,
    ItemStatus,
    Pool,
)
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.health.breakers import (
    begin_probe,
    gate,
    model_breaker,
    needs_success,
    pool_breaker,
    probe_stale_after,
    read_breakers,
    record_outcome,
    record_success,
)
from reelroute.models.items.settings import ItemsConfig
from reelroute.models.money.budgets import settle_item
from reelroute.models.money.limits import RunwayLimits
from reelroute.models.outbox.events import record
from reelroute.models.store.queries import items as item_sql
from reelroute.models.store.sql import rowcount, sql


@dataclass(frozen=True)
class Dispatchable:
    """A pending item the dispatcher may send to Prefect as attempt `retry_count + 1`."""

    item_id: uuid.UUID
    retry_count: int
    priority: int
    inference_provider: InferenceProvider
    group_id: uuid.UUID | None
    due_at: datetime
    wan_full_quality: bool = False
    """Only a GPU host running a full-quality preset may make it (its own work queues)."""

    @property
    def attempt(self) -> int:
        """The attempt the flow run will hold once it claims the item."""
        return self.retry_count + 1


def in_flight(session: Session, pool: Pool) -> dict[InferenceProvider, int]:
    """Per provider of the pool, its items processing or already sent to Prefect."""
    rows = session.execute(sa.text(item_sql.in_flight(pool))).all()
    return {InferenceProvider(provider): int(count) for provider, count in rows}


def count_in_flight(session: Session, pool: Pool) -> int:
    """Items of the pool that are processing or already sent to Prefect."""
    return sum(in_flight(session, pool).values())


def next_to_dispatch(
    session: Session,
    *,
    pool: Pool,
    limit: int,
    settings: ItemsConfig,
    provider: InferenceProvider | None = None,
    now: datetime | None = None,
) -> list[Dispatchable]:
    """The next due pending items of the pool (or of one provider) that no flow run has been
    made for, earliest due first."""
    if limit <= 0:
        return []
    statement = sql(item_sql.next_to_dispatch(pool, one_provider=provider is not None)).columns(
        sa.column("id", sa.Uuid()),
        sa.column("retry_count", sa.Integer()),
        sa.column("priority", sa.Integer()),
        sa.column("inference_provider", sa.String()),
        sa.column("group_id", sa.Uuid()),
        sa.column("due_at", UTCDateTime()),
        sa.column("wan_full_quality", sa.Boolean()),
    )
    params: dict[str, object] = {
        "now": now or utcnow(),
        "max_attempts": settings.items.max_attempts,
        "max_spared": settings.items.max_spared_attempts,
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
            bool(row.wan_full_quality),
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
        sql(item_sql.MARK_DISPATCHED),
        {
            "item_id": item_id,
            "provider": provider.value,
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
    settings: ItemsConfig,
) -> bool:
    """A flow run ended (crashed, cancelled, vanished) before claiming its item: that attempt
    is used up; the next one is dispatched, or the item fails after the last."""
    result = session.execute(
        sql(item_sql.RUN_LOST_BEFORE_CLAIM),
        {
            "item_id": item_id,
            "flow_run_id": flow_run_id,
            "error": reason,
            "failure_code": FailureCode.RUN_NOT_STARTED,
            "max_spared": settings.items.max_spared_attempts,
            "now": utcnow(),
        },
    )
    if rowcount(result) == 0:
        return False
    item = session.get(VideoItem, item_id, populate_existing=True)
    if item is not None and item.status is ItemStatus.failed:
        settle_item(session, item)
        record(session, [item], EventType.failed)
    if item is not None:
        record_outcome(
            session,
            settings,
            name=pool_breaker(POOL_OF[item.inference_provider]),
            ok=False,
            failure_class=FailureClass.infra,
            reason=reason,
            item_id=item_id,
        )
    return True


def run_started(session: Session, *, pool: Pool, item_id: uuid.UUID) -> None:
    """A flow run of `pool` claimed its item: a success for the pool's breaker, written only
    when it has a failure to end (a run that never started before; most claims write
    nothing)."""
    name = pool_breaker(pool)
    if needs_success(session, name):
        record_success(session, name=name, item_id=item_id)


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


def runway_slots(settings: ItemsConfig, limits: RunwayLimits | None) -> int:
    """How many Runway items may run at once: REELROUTE_CLOUD_SLOTS (what our cloud worker
    host holds), and no more than the sum of Runway's per-model concurrency once it is known
    (a model without a limit counts REELROUTE_CLOUD_SLOTS)."""
    if limits is None:
        return settings.dispatch.cloud_slots
    allowed = (limits.model(CATALOGUE[p].model).max_concurrent for p in Pool.cloud.providers())
    runway = sum(settings.dispatch.cloud_slots if n is None else n for n in allowed)
    return max(1, min(settings.dispatch.cloud_slots, runway))


def plan_dispatch(
    session: Session,
    *,
    pool: Pool,
    settings: ItemsConfig,
    limits: RunwayLimits | None = None,
    now: datetime | None = None,
) -> list[Dispatchable]:
    """The items to send to `pool` now, earliest due first: no more than its free slots (plus
    the look-ahead); for Runway, once its limits are known, no more per model than the model
    may run at once (so nothing of ours waits THROTTLED at Runway, unseen by our ETAs), and
    nothing of a model whose daily limit is used up. Nothing of a model whose breaker is open,
    nor of a pool whose breaker is open, except one probe once its cooldown is over (the item
    chosen is recorded as the probe)."""
    now = now or utcnow()
    flying = in_flight(session, pool)
    busy = sum(flying.values())
    breakers = read_breakers(session)
    stale = probe_stale_after(settings)
    pool_gate = gate(breakers.get(pool_breaker(pool)), now, stale)
    gated: dict[InferenceProvider, int | None] = {
        provider: gate(breakers.get(model_breaker(provider)), now, stale)
        for provider in pool.providers()
        if provider is not InferenceProvider.wan_local
    }
    if (
        pool_gate is None
        and all(g is None for g in gated.values())
        and (pool is Pool.gpu or limits is None)
    ):
        free = settings.dispatch.pool_slots(pool) + settings.dispatch.lookahead - busy
        return next_to_dispatch(session, pool=pool, limit=free, settings=settings, now=now)
    candidates: list[Dispatchable] = []
    probes: dict[str, uuid.UUID] = {}
    for provider in pool.providers():
        cap = settings.dispatch.pool_slots(pool) + settings.dispatch.lookahead
        if limits is not None and pool is Pool.cloud:
            model = limits.model(CATALOGUE[provider].model)
            if model.daily_left == 0:
                continue
            cap = model.max_concurrent if model.max_concurrent is not None else cap
        cap -= flying.get(provider, 0)
        limit = gated.get(provider)
        if limit is not None:
            cap = min(cap, limit)
        found = next_to_dispatch(
            session, pool=pool, provider=provider, limit=cap, settings=settings, now=now
        )
        if limit == 1 and found:
            probes[model_breaker(provider)] = found[0].item_id
        candidates += found
    free = (
        runway_slots(settings, limits)
        if pool is Pool.cloud
        else settings.dispatch.pool_slots(pool) + settings.dispatch.lookahead
    ) - busy
    if pool_gate is not None:
        free = min(free, pool_gate)
    chosen = sorted(candidates, key=lambda item: item.due_at)[: max(free, 0)]
    if pool_gate == 1 and chosen:
        probes[pool_breaker(pool)] = chosen[0].item_id
    sent = {item.item_id for item in chosen}
    for name, item_id in probes.items():
        if item_id in sent:
            begin_probe(session, name, item_id, now)
    return chosen
