"""The item lifecycle after creation: claim, renew, complete, fail, cancel, retry, requeue.

Plain functions that take a session; the SQL they run lives in models.store.queries.items.
Flows, the REST API and the admin pages call these functions; nothing else writes video_items.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from reelroute.models.core.catalogue import info
from reelroute.models.core.enums import (
    POOL_OF,
    EventType,
    FailureClass,
    FailureCode,
    InferenceProvider,
    ItemStatus,
    Pool,
)
from reelroute.models.core.errors import InvalidTransition, NotFound, StaleAttempt
from reelroute.models.core.failures import RULES, class_of
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.core.text import without_url_queries
from reelroute.models.core.workers import host_of
from reelroute.models.health.breakers import (
    host_breaker,
    model_breaker,
    record_outcome,
    record_success,
)
from reelroute.models.items.settings import ItemsConfig
from reelroute.models.money.budgets import release, reserve, settle, settle_item, spend_gpu
from reelroute.models.outbox.events import (
    PROGRESS_EVERY,
    enabled,
    record,
    record_started,
    with_started_event,
)
from reelroute.models.store.db import is_postgres
from reelroute.models.store.queries import items as item_sql
from reelroute.models.store.sql import returning_items, rowcount, sql
from reelroute.models.store.tallies import (
    count_failure,
    count_gpu_time,
    count_verdict,
    observe_latency,
)


@dataclass(frozen=True)
class Claim:
    """An item leased to one attempt, with what the holder needs to do the work.

    `attempt` is the fencing token: pass it to every later write about this item.
    """

    item_id: uuid.UUID
    attempt: int
    group_id: uuid.UUID | None
    photo_id: uuid.UUID | None
    prompt: str
    inference_provider: InferenceProvider
    frame_num: int | None
    duration_s: int | None
    ratio: str | None
    seed: int | None
    provider_task_id: str | None
    leased_until: datetime
    worker_id: str


# Claim fields named differently from their column; every other field is its column's name.
_COLUMN_OF_FIELD = {"item_id": "id", "attempt": "retry_count"}
_FIELD_OF_COLUMN = {
    _COLUMN_OF_FIELD.get(field.name, field.name): field.name for field in fields(Claim)
}


def claim_of(item: VideoItem, worker_id: str) -> Claim:
    """The claim `worker_id` holds on `item` (as its current attempt), read from the row: for
    work done outside a flow run (a pull worker's upload)."""
    values = {field: getattr(item, _COLUMN_OF_FIELD.get(field, field)) for field in CLAIM_FIELDS}
    return Claim(**values, worker_id=worker_id)


CLAIM_FIELDS = tuple(field.name for field in fields(Claim) if field.name != "worker_id")


@lru_cache(maxsize=16)
def _claiming(statement: str) -> sa.TextualSelect:
    """A claim statement with its result columns typed, matched by name (not position)."""
    columns = VideoItem.__table__.columns  # type: ignore[attr-defined]
    return sql(statement).columns(**{name: columns[name].type for name in _FIELD_OF_COLUMN})


def _claim(session: Session, statement: str, **params: Any) -> Claim | None:
    # A plain dataclass, not an ORM object: the claim is every worker's hot path, and building
    # a VideoItem costs more than the claim's own SQL (bench/claims.py). Its `item.started`
    # event is written in the same statement on PostgreSQL, by a second one on SQLite.
    events, postgres = enabled(session), is_postgres(session)
    if events and postgres:
        statement = with_started_event(statement)
    row = session.connection().execute(_claiming(statement), params).first()
    if row is None:
        return None
    claim = Claim(**{_FIELD_OF_COLUMN[column]: value for column, value in row._mapping.items()})
    if events and not postgres:
        record_started(
            session,
            item_id=claim.item_id,
            group_id=claim.group_id,
            provider=claim.inference_provider.value,
            attempt=claim.attempt,
            now=params["now"],
        )
    return claim


def claim_next(
    session: Session,
    *,
    pool: Pool,
    worker_id: str,
    settings: ItemsConfig,
    lease_seconds: int | None = None,
    now: datetime | None = None,
) -> Claim | None:
    """Atomically lease the next item of a pool, or None when there is nothing to do.

    An item whose lease ran out comes first (its holder is gone), then pending items by
    priority and age. The claim's `attempt` is the fencing token the caller now holds.
    The claim is one statement: a session in autocommit mode claims in one round trip.
    """
    now = now or utcnow()
    params = {
        "now": now,
        "leased_until": now + timedelta(seconds=lease_seconds or settings.items.lease_seconds),
        "worker_id": worker_id,
        "max_attempts": settings.items.max_attempts,
        "max_spared": settings.items.max_spared_attempts,
    }
    return _claim(session, item_sql.claim_next(pool, skip_locked=is_postgres(session)), **params)


def claim_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    worker_id: str,
    settings: ItemsConfig,
    now: datetime | None = None,
    provider: InferenceProvider | None = None,
) -> Claim | None:
    """Lease one item for the run made for `attempt` (and for `provider`, when given); None
    when it is no longer claimable (another attempt took it, it was cancelled, finished or
    moved to another provider, or its attempts are used up)."""
    now = now or utcnow()
    extra = {} if provider is None else {"provider": provider.value}
    return _claim(
        session,
        item_sql.CLAIM_BY_ID if provider is None else item_sql.CLAIM_BY_ID_FOR_PROVIDER,
        **extra,
        item_id=item_id,
        attempt=attempt,
        now=now,
        leased_until=now + timedelta(seconds=settings.items.lease_seconds),
        worker_id=worker_id,
        max_attempts=settings.items.max_attempts,
        max_spared=settings.items.max_spared_attempts,
    )


@dataclass(frozen=True)
class MadeBy:
    """Which Wan preset, GPU host and GPU class made a video (all None for Runway's)."""

    wan_preset: str | None = None
    gpu_host: str | None = None
    gpu_class: str | None = None
    hour_cost: float = 0.0
    """Dollars per hour of a GPU of `gpu_class` (models.money.gpu.GpuPrices.hour_cost): what
    the attempt's GPU seconds cost."""


def _fenced(session: Session, statement: str, **params: Any) -> None:
    if rowcount(session.execute(sql(statement), params)) == 0:
        _stale(session, params["item_id"], params["attempt"])


def _stale(session: Session, item_id: uuid.UUID, attempt: int) -> NoReturn:
    """A fenced write changed nothing: NotFound for an unknown item, else StaleAttempt."""
    if session.get(VideoItem, item_id) is None:
        raise NotFound(f"no item {item_id}")
    raise StaleAttempt(f"attempt {attempt} no longer holds item {item_id}")


def renew_lease(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    worker_id: str,
    lease_seconds: int,
    progress: float | None = None,
    now: datetime | None = None,
) -> datetime:
    """Extend the lease of `worker_id`, the holder of `attempt` (and store its progress, 0..1).

    Returns the new end of the lease; raises StaleAttempt when the caller lost the item (or
    never held it).
    """
    now = now or utcnow()
    leased_until = now + timedelta(seconds=lease_seconds)
    if progress is not None:
        progress = min(max(progress, 0.0), 1.0)
    _fenced(
        session,
        item_sql.RENEW_LEASE,
        item_id=item_id,
        attempt=attempt,
        worker_id=worker_id,
        leased_until=leased_until,
        progress=progress,
        now=now,
    )
    if progress is not None:
        _progress_event(session, item_id=item_id, now=now)
    return leased_until


def _progress_event(session: Session, *, item_id: uuid.UUID, now: datetime) -> None:
    """An `item.progress` event, when the item's last one is PROGRESS_EVERY old."""
    if not enabled(session):
        return
    statement = sql(item_sql.PROGRESS_DUE).bindparams(sa.bindparam("item_id", type_=sa.Uuid()))
    done = session.execute(
        statement, {"item_id": item_id, "now": now, "since": now - PROGRESS_EVERY}
    )
    if rowcount(done):
        item = session.get(VideoItem, item_id, populate_existing=True)
        if item is not None:
            record(session, [item], EventType.progress, now=now)


def create_items(session: Session, rows: Sequence[dict[str, Any]]) -> list[VideoItem]:
    """New items, one per row of column values, inserted (and flushed) in the given order: the
    only way `video_items` gains rows. The caller writes their `item.created` events once their
    budgets are reserved."""
    items = [VideoItem(**row) for row in rows]
    session.add_all(items)
    session.flush()
    return items


def move_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    origin: InferenceProvider,
    to: InferenceProvider,
    reason: str,
    credits: int,
    now: datetime,
) -> VideoItem | None:
    """Move a waiting item from `origin` to `to` (the planner's move: once per item, never one
    the admin chose, one whose provider task exists, or one with an A/B sample), its budget
    reservation with it, and write its `item.rerouted`; None when it is no longer movable.
    BudgetExceeded when a cap of `to` says no: the caller's savepoint undoes the move."""
    params = {
        "item_id": item_id,
        "from_provider": origin.value,
        "to_provider": to.value,
        "reason": reason,
        "now": now,
    }
    if rowcount(session.execute(sql(item_sql.MOVE), params)) == 0:
        return None
    release(session, item_id=item_id)
    moved = session.get(VideoItem, item_id, populate_existing=True)
    if moved is None:
        return None
    reserve(
        session, item_id=item_id, provider=to, group_id=moved.group_id, credits=credits, now=now
    )
    record(session, [moved], EventType.rerouted, detail=reason, now=now)
    return moved


def set_provider_task(
    session: Session, *, item_id: uuid.UUID, attempt: int, worker_id: str, task_id: str
) -> None:
    """Store the provider's task id (Runway's) the moment it exists, so a retry resumes it."""
    _fenced(
        session,
        item_sql.SET_PROVIDER_TASK,
        item_id=item_id,
        attempt=attempt,
        worker_id=worker_id,
        task_id=task_id,
        now=utcnow(),
    )


def _one_or_stale(
    session: Session, items: list[VideoItem], item_id: uuid.UUID, attempt: int
) -> VideoItem:
    if not items:
        _stale(session, item_id, attempt)
    return items[0]


def complete_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    worker_id: str,
    output_path: str,
    cost_credits: int = 0,
    made_by: MadeBy | None = None,
    quality: dict[str, Any] | None = None,
    review_reason: str | None = None,
    now: datetime | None = None,
) -> VideoItem:
    """Mark the item completed with its video, what this attempt cost, (Wan) the preset and
    GPU host that made it and its checks' `quality` (fenced: only the holder of `attempt`
    may); its budget reservation becomes what it really cost. With a `review_reason` the video
    is held for a person instead (status review, item.review_requested): models.items.review
    accepts or redoes it."""
    now = now or utcnow()
    made_by = made_by or MadeBy()
    held = review_reason is not None
    items = returning_items(
        session,
        item_sql.HOLD_FOR_REVIEW if held else item_sql.COMPLETE,
        item_id=item_id,
        attempt=attempt,
        worker_id=worker_id,
        output_path=output_path,
        cost_credits=cost_credits,
        wan_preset=made_by.wan_preset,
        gpu_host=made_by.gpu_host,
        gpu_class=made_by.gpu_class,
        quality=quality,
        **({"reason": review_reason} if held else {}),
        now=now,
    )
    item = _one_or_stale(session, items, item_id, attempt)
    settle_item(session, item)  # made, and paid for, whatever the reviewer says
    count_gpu_attempt(session, item, made_by, now)
    name = breaker_of(item.inference_provider, worker_id)
    if name is not None:
        record_success(session, name=name, item_id=item.id, now=now)
    if held:
        record(session, [item], EventType.review_requested, detail=review_reason, now=now)
        return item
    record(session, [item], EventType.completed, now=now)
    observe_completion(session, item, now)
    return item


def count_gpu_attempt(session: Session, item: VideoItem, made_by: MadeBy, now: datetime) -> None:
    """A Wan attempt made a video: add its GPU seconds (claimed to now) and their cost to the
    item, the GPU tallies and the `gpu` budgets. Nothing for Runway's items."""
    if POOL_OF[item.inference_provider] is not Pool.gpu or item.started_at is None:
        return
    seconds = max(0.0, (now - item.started_at).total_seconds())
    dollars = seconds * made_by.hour_cost / 3600
    table = VideoItem.__table__  # type: ignore[attr-defined]
    session.execute(
        sa.update(table)
        .where(table.c.id == item.id)
        .values(
            gpu_seconds=sa.func.coalesce(table.c.gpu_seconds, 0) + seconds,
            gpu_dollars=sa.func.coalesce(table.c.gpu_dollars, 0) + dollars,
        )
    )
    # the row holds them now: the object learns them without being marked changed
    set_committed_value(item, "gpu_seconds", (item.gpu_seconds or 0) + seconds)
    set_committed_value(item, "gpu_dollars", (item.gpu_dollars or 0) + dollars)
    count_gpu_time(
        session,
        gpu_class=made_by.gpu_class or item.gpu_class or "",
        seconds=seconds,
        dollars=dollars,
    )
    spend_gpu(session, credits=round(dollars * 100), now=now)


def observe_completion(session: Session, item: VideoItem, now: datetime) -> None:
    """Count a completed item: its latencies (created to completed, claimed to completed), and
    its video as kept (routing learns each option's acceptance from these counts)."""
    provider = item.inference_provider.value
    if item.shadow_of is None:  # an A/B sample's verdict is its comparison
        count_verdict(
            session,
            group_id=item.group_id,
            provider=provider,
            wan_preset=item.wan_preset,
            accepted=True,
        )
    observe_latency(
        session,
        provider=provider,
        measure="created",
        seconds=(now - item.created_at).total_seconds(),
    )
    if item.started_at is not None:
        took = (now - item.started_at).total_seconds()
        observe_latency(session, provider=provider, measure="claimed", seconds=took)


def check_holder(session: Session, *, item_id: uuid.UUID, attempt: int, worker_id: str) -> None:
    """StaleAttempt (NotFound for an unknown item) unless `worker_id` holds `attempt` as a
    completion would need: checked before an upload's video is copied and decoded."""
    params = {"item_id": item_id, "attempt": attempt, "worker_id": worker_id}
    if session.execute(sql(item_sql.HOLDS), params).first() is None:
        _stale(session, item_id, attempt)


BACKOFF_CEILING = timedelta(minutes=15)
"""The longest wait between two attempts (an outage's spared attempts can be many)."""


def backoff(attempt: int, settings: ItemsConfig) -> timedelta:
    """Wait before the attempt after `attempt`: the base delay, doubled per attempt made, at
    most BACKOFF_CEILING."""
    delay = timedelta(seconds=settings.items.retry_backoff_seconds * 2 ** min(attempt - 1, 30))
    return min(delay, BACKOFF_CEILING)


HOST_OR_INPUT = frozenset({FailureCode.CUDA_OOM, FailureCode.WAN_FAILED})
"""Wan failures that follow the input (its size, its length): the item fails with the settings
to change, and its host's breaker is untouched, unless the same length was made on another GPU
host lately (`made_elsewhere`), which makes it the host's fault."""
ELSEWHERE_WINDOW = timedelta(days=1)


def made_elsewhere(session: Session, *, item_id: uuid.UUID, host: str, now: datetime) -> str | None:
    """Another GPU host that completed a Wan video of this item's length (its frame count and
    duration as asked) in the last day, or None. Reads the last day's Wan completions through
    ix_video_items_completed_provider."""
    asked = session.execute(
        sa.select(col(VideoItem.frame_num), col(VideoItem.duration_s)).where(
            col(VideoItem.id) == item_id
        )
    ).first()
    if asked is None:
        return None
    frame_num, duration_s = asked
    found = session.execute(
        sa.select(col(VideoItem.gpu_host))
        .where(
            col(VideoItem.inference_provider) == InferenceProvider.wan_local,
            col(VideoItem.status) == ItemStatus.completed,
            col(VideoItem.finished_at) >= now - ELSEWHERE_WINDOW,
            col(VideoItem.gpu_host).is_not(None),
            col(VideoItem.gpu_host) != host,
            col(VideoItem.frame_num).is_(None)
            if frame_num is None
            else col(VideoItem.frame_num) == frame_num,
            col(VideoItem.duration_s).is_(None)
            if duration_s is None
            else col(VideoItem.duration_s) == duration_s,
        )
        .order_by(col(VideoItem.finished_at).desc())
        .limit(1)
    ).first()
    return None if found is None else str(found[0])


def breaker_of(provider: InferenceProvider, worker_id: str | None) -> str | None:
    """The breaker an attempt's outcome feeds: the Runway model's, or the GPU host's (a Wan
    attempt whose host is known)."""
    if provider is not InferenceProvider.wan_local:
        return model_breaker(provider)
    host = host_of(worker_id)
    return host_breaker(host) if host is not None else None


def fail_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    worker_id: str,
    error: str,
    permanent: bool,
    settings: ItemsConfig,
    failure_code: FailureCode | None = None,
    cost_credits: int | None = None,
    keep_provider_task: bool = False,
    retry_after: float | None = None,
    now: datetime | None = None,
) -> VideoItem:
    """Record a failed attempt (fenced), by its failure's class (models.core.failures):

    - `input` fails the item now (and `permanent` fails an `unknown` one now: the caller knows
      a retry would not help);
    - the others send it back to pending while attempts remain: those the item could have
      caused count against REELROUTE_MAX_ATTEMPTS, outages (a provider's, a GPU host's, ours)
      against REELROUTE_MAX_SPARED_ATTEMPTS; after the retry backoff, or (a daily cap, a
      setting to fix) as soon as the provider's breaker lets it go.

    The outcome feeds the provider's breaker (`retry_after`: when Runway says it resets).
    `keep_provider_task` keeps the provider's task id for the next attempt to resume (the task
    itself is still alive, e.g. a poll failed).
    """
    now = now or utcnow()
    error = without_url_queries(error)  # stored, evented, sent: never a signed URL's query
    kind = class_of(failure_code)
    host = host_of(worker_id)
    if failure_code in HOST_OR_INPUT and host is not None:
        other = made_elsewhere(session, item_id=item_id, host=host, now=now)
        if other is not None:  # the input is fine elsewhere: this host is at fault
            kind = FailureClass.gpu_host
            error = (
                f"{error} (a Wan video of this length was made on {other} in the last day: "
                f"counted against {host}, and tried again)"
            )
    rule = RULES[kind]
    final = rule.permanent or (permanent and kind is FailureClass.unknown)
    spared = 0 if rule.counts else 1
    holder = session.execute(
        sql(item_sql.FAILING),
        {"item_id": item_id, "attempt": attempt, "worker_id": worker_id},
    ).first()
    if holder is None:
        _stale(session, item_id, attempt)
    counted = attempt - holder.spared_attempts - spared
    left = (
        counted < settings.items.max_attempts
        and holder.spared_attempts + spared < settings.items.max_spared_attempts
    )
    retry = not final and left
    wait = backoff(attempt, settings) if rule.backoff else timedelta(0)
    items = returning_items(
        session,
        item_sql.fail(ItemStatus.pending if retry else ItemStatus.failed),
        item_id=item_id,
        attempt=attempt,
        worker_id=worker_id,
        error=error,
        failure_code=failure_code,
        cost_credits=cost_credits,
        keep_task=keep_provider_task,
        spared=spared,
        next_attempt_at=now + wait if retry and rule.backoff else None,
        now=now,
    )
    item = _one_or_stale(session, items, item_id, attempt)
    count_failure(session, provider=item.inference_provider.value, failure_class=kind.value)
    if not retry:  # failed for good: it keeps only what Runway charged
        settle_item(session, item)
        record(session, [item], EventType.failed, now=now)
    name = breaker_of(item.inference_provider, worker_id)
    if name is not None:
        record_outcome(
            session,
            settings,
            name=name,
            ok=False,
            failure_class=kind,
            reason=f"{failure_code.value if failure_code else kind.value}: {error[:200]}",
            retry_after=retry_after,
            item_id=item.id,
            now=now,
        )
    return item


def _transition(session: Session, statement: str, item_id: uuid.UUID, action: str) -> VideoItem:
    items = returning_items(session, statement, item_id=item_id, now=utcnow())
    if items:
        return items[0]
    item = session.get(VideoItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"no item {item_id}")
    raise InvalidTransition(f"cannot {action} item {item_id}: it is {item.status.value}")


def cancel_item(session: Session, *, item_id: uuid.UUID) -> VideoItem:
    """Cancel a pending or processing item (releasing what it reserved of its budgets). The
    caller stops its flow run and provider task."""
    item = _transition(session, item_sql.CANCEL, item_id, "cancel")
    settle_item(session, item)
    record(session, [item], EventType.cancelled)
    return item


def retry_item(session: Session, *, item_id: uuid.UUID) -> VideoItem:
    """Send a failed or cancelled item back to pending with its attempts reset; a paid item
    reserves its cost again (BudgetExceeded, 409, when a cap is reached)."""
    item = _transition(session, item_sql.ADMIN_RETRY, item_id, "retry")
    credits = info(item.inference_provider).credits_for(item.duration_s, item.frame_num)
    reserve(
        session,
        item_id=item.id,
        provider=item.inference_provider,
        group_id=item.group_id,
        credits=credits,
        shadow=item.shadow_of is not None,  # an A/B sample is paid from the shadow budgets
    )
    return item


def forget_provider_task(session: Session, *, item_id: uuid.UUID, task_id: str) -> None:
    """Record that a cancelled item's provider task was deleted at the provider."""
    session.execute(
        sql(item_sql.FORGET_TASK), {"item_id": item_id, "task_id": task_id, "now": utcnow()}
    )


@dataclass(frozen=True)
class RequeueResult:
    """What requeue_expired did."""

    requeued: int
    failed: int


def requeue_expired(
    session: Session,
    *,
    settings: ItemsConfig,
    now: datetime | None = None,
    item_ids: Collection[uuid.UUID] | None = None,
) -> RequeueResult:
    """Items whose lease ran out go back to pending, or fail after their last attempt: all of
    them, or those of `item_ids` (the reconciler passes the ones whose holder it has stopped)."""
    now = now or utcnow()
    if item_ids is None:
        item_ids = [lease.item_id for lease in expired_leases(session, now=now, limit=100_000)]
    params: dict[str, Any] = {"now": now, "max_spared": settings.items.max_spared_attempts}
    requeued = failed = 0
    for item_id in item_ids:
        one = {**params, "item_id": item_id}
        back = rowcount(session.execute(sql(item_sql.REQUEUE_EXPIRED + ONE_ITEM), one))
        requeued += back
        ended = rowcount(session.execute(sql(item_sql.FAIL_EXPIRED + ONE_ITEM), one))
        if not back and not ended:
            continue
        item = session.get(VideoItem, item_id, populate_existing=True)
        if item is not None:  # its holder died: our fault, an attempt lost
            provider = item.inference_provider.value
            count_failure(session, provider=provider, failure_class=FailureClass.infra.value)
        if ended:
            failed += 1
            if item is not None:
                settle_item(session, item)
            else:
                settle(session, item_id=item_id, spent_credits=0)
            if item is not None:
                record(session, [item], EventType.failed, now=now)
    return RequeueResult(requeued=requeued, failed=failed)


ONE_ITEM = "  AND id = :item_id\n"


@dataclass(frozen=True)
class ExpiredLease:
    """An item whose holder stopped renewing its lease."""

    item_id: uuid.UUID
    attempt: int
    worker_id: str | None


def expired_leases(
    session: Session, *, now: datetime | None = None, limit: int = 500
) -> list[ExpiredLease]:
    """Items whose lease ran out, and who held them (ix_video_items_leases)."""
    rows = session.execute(
        sql(item_sql.EXPIRED_LEASES).columns(
            sa.column("id", sa.Uuid()),
            sa.column("retry_count", sa.Integer()),
            sa.column("worker_id", sa.String()),
        ),
        {"now": now or utcnow(), "limit": limit},
    )
    return [ExpiredLease(row.id, row.retry_count, row.worker_id) for row in rows]


def get_item(session: Session, item_id: uuid.UUID) -> VideoItem:
    """The item with this id; NotFound otherwise."""
    item = session.get(VideoItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"no item {item_id}")
    return item
