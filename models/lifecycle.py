"""The item lifecycle after creation: claim, renew, complete, fail, cancel, retry, requeue.

Plain functions that take a session; the SQL they run lives in models.queries. Flows, the REST
API and the admin pages call these functions; nothing else writes video_items.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlmodel import Session

from reelroute.models import events, queries
from reelroute.models.budgets import reserve, settle
from reelroute.models.catalogue import info
from reelroute.models.db import is_postgres
from reelroute.models.enums import InferenceProvider, Pool
from reelroute.models.errors import InvalidTransition, NotFound, StaleAttempt
from reelroute.models.events import (
    enabled,
    record,
    record_progress,
    record_started,
    with_started_event,
)
from reelroute.models.settings import Settings
from reelroute.models.sql import returning_items, rowcount, sql
from reelroute.models.tables import VideoItem, utcnow


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
    settings: Settings,
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
        "leased_until": now + timedelta(seconds=lease_seconds or settings.lease_seconds),
        "worker_id": worker_id,
        "max_attempts": settings.max_attempts,
    }
    return _claim(session, queries.claim_next(pool, skip_locked=is_postgres(session)), **params)


def claim_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    worker_id: str,
    settings: Settings,
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
        queries.CLAIM_BY_ID if provider is None else queries.CLAIM_BY_ID_FOR_PROVIDER,
        **extra,
        item_id=item_id,
        attempt=attempt,
        now=now,
        leased_until=now + timedelta(seconds=settings.lease_seconds),
        worker_id=worker_id,
        max_attempts=settings.max_attempts,
    )


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
        queries.RENEW_LEASE,
        item_id=item_id,
        attempt=attempt,
        worker_id=worker_id,
        leased_until=leased_until,
        progress=progress,
        now=now,
    )
    if progress is not None:
        record_progress(session, item_id=item_id, now=now)
    return leased_until


def set_provider_task(
    session: Session, *, item_id: uuid.UUID, attempt: int, worker_id: str, task_id: str
) -> None:
    """Store the provider's task id (Runway's) the moment it exists, so a retry resumes it."""
    _fenced(
        session,
        queries.SET_PROVIDER_TASK,
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
    now: datetime | None = None,
) -> VideoItem:
    """Mark the item completed with its video and what this attempt cost (fenced: only the
    holder of `attempt` may); its budget reservation becomes what it really cost."""
    now = now or utcnow()
    items = returning_items(
        session,
        queries.COMPLETE,
        item_id=item_id,
        attempt=attempt,
        worker_id=worker_id,
        output_path=output_path,
        cost_credits=cost_credits,
        now=now,
    )
    item = _one_or_stale(session, items, item_id, attempt)
    settle(session, item_id=item_id, spent_credits=item.cost_credits or 0)
    record(session, [item], events.COMPLETED, now=now)
    return item


def backoff(attempt: int, settings: Settings) -> timedelta:
    """Wait before the attempt after `attempt`: the base delay, doubled per attempt made."""
    return timedelta(seconds=settings.retry_backoff_seconds * 2 ** (attempt - 1))


def fail_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    worker_id: str,
    error: str,
    permanent: bool,
    settings: Settings,
    failure_code: str | None = None,
    cost_credits: int | None = None,
    keep_provider_task: bool = False,
    now: datetime | None = None,
) -> VideoItem:
    """Record a failed attempt (fenced).

    Transient errors send the item back to pending after a backoff while attempts remain;
    permanent errors, and the last attempt, fail it. `keep_provider_task` keeps the provider's
    task id for the next attempt to resume (the task itself is still alive, e.g. a poll failed).
    """
    now = now or utcnow()
    retry = not permanent and attempt < settings.max_attempts
    items = returning_items(
        session,
        queries.fail("pending" if retry else "failed"),
        item_id=item_id,
        attempt=attempt,
        worker_id=worker_id,
        error=error,
        failure_code=failure_code,
        cost_credits=cost_credits,
        keep_task=keep_provider_task,
        next_attempt_at=now + backoff(attempt, settings) if retry else None,
        now=now,
    )
    item = _one_or_stale(session, items, item_id, attempt)
    if not retry:  # failed for good: it keeps only what Runway charged
        settle(session, item_id=item_id, spent_credits=item.cost_credits or 0)
        record(session, [item], events.FAILED, now=now)
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
    item = _transition(session, queries.CANCEL, item_id, "cancel")
    settle(session, item_id=item_id, spent_credits=item.cost_credits or 0)
    record(session, [item], events.CANCELLED)
    return item


def retry_item(session: Session, *, item_id: uuid.UUID) -> VideoItem:
    """Send a failed or cancelled item back to pending with its attempts reset; a paid item
    reserves its cost again (BudgetExceeded, 409, when a cap is reached)."""
    item = _transition(session, queries.ADMIN_RETRY, item_id, "retry")
    credits = info(item.inference_provider).credits_for(item.duration_s, item.frame_num)
    reserve(
        session,
        item_id=item.id,
        provider=item.inference_provider,
        group_id=item.group_id,
        credits=credits,
    )
    return item


def forget_provider_task(session: Session, *, item_id: uuid.UUID, task_id: str) -> None:
    """Record that a cancelled item's provider task was deleted at the provider."""
    session.execute(
        sql(queries.FORGET_TASK), {"item_id": item_id, "task_id": task_id, "now": utcnow()}
    )


@dataclass(frozen=True)
class RequeueResult:
    """What requeue_expired did."""

    requeued: int
    failed: int


def requeue_expired(
    session: Session,
    *,
    settings: Settings,
    now: datetime | None = None,
    item_ids: Collection[uuid.UUID] | None = None,
) -> RequeueResult:
    """Items whose lease ran out go back to pending, or fail after their last attempt: all of
    them, or those of `item_ids` (the reconciler passes the ones whose holder it has stopped)."""
    now = now or utcnow()
    if item_ids is None:
        item_ids = [lease.item_id for lease in expired_leases(session, now=now, limit=100_000)]
    params: dict[str, Any] = {"now": now, "max_attempts": settings.max_attempts}
    requeued = failed = 0
    for item_id in item_ids:
        one = {**params, "item_id": item_id}
        requeued += rowcount(session.execute(sql(queries.REQUEUE_EXPIRED + ONE_ITEM), one))
        if rowcount(session.execute(sql(queries.FAIL_EXPIRED + ONE_ITEM), one)):
            failed += 1
            item = session.get(VideoItem, item_id, populate_existing=True)
            settle(session, item_id=item_id, spent_credits=item.cost_credits or 0 if item else 0)
            if item is not None:
                record(session, [item], events.FAILED, now=now)
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
        sql(queries.EXPIRED_LEASES).columns(
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
