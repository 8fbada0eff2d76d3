"""The item lifecycle: create, claim, renew, complete, fail, cancel, retry, requeue, statistics,
queue listing. Plain functions that take a session; the SQL they run lives in models.queries.

Flows, the REST API and the admin pages call these functions; nothing else writes video_items.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models import queries
from reelroute.models.db import is_postgres
from reelroute.models.enums import (
    AUTO,
    InferenceProvider,
    ItemStatus,
    WorkerType,
    queue_rank,
)
from reelroute.models.errors import InvalidInput, InvalidTransition, NotFound, StaleAttempt
from reelroute.models.queue import count_items
from reelroute.models.routing import RoutingDecision, route
from reelroute.models.settings import Settings
from reelroute.models.tables import Group, Photo, VideoItem, utcnow

MAX_PROMPT_UTF16_UNITS = 1000  # Runway's limit; applied to every item so it can be re-routed.
MIN_FRAMES, MAX_FRAMES = 5, 241  # Wan: 4k+1 frames; 241 is 10 s at the 5B model's 24 fps.
MIN_DURATION_S, MAX_DURATION_S = 1, 10
MAX_SEED = 2**32 - 1
MAX_BATCH = 1000


_BIND_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "now": UTCDateTime(),
    "leased_until": UTCDateTime(),
    "next_attempt_at": UTCDateTime(),
    "item_id": sa.Uuid(),
    "flow_run_id": sa.Uuid(),
}


@lru_cache(maxsize=64)
def sql(statement: str) -> sa.TextClause:
    """A text statement whose timestamp and id parameters are typed (SQLite stores them as text)."""
    binds = [
        sa.bindparam(name, type_=kind)
        for name, kind in _BIND_TYPES.items()
        if f":{name}" in statement
    ]
    return sa.text(statement).bindparams(*binds)


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


@lru_cache(maxsize=16)
def _claiming(statement: str) -> sa.TextualSelect:
    """A claim statement with its result columns typed (they follow queries.CLAIM_FIELDS)."""
    columns = VideoItem.__table__.columns  # type: ignore[attr-defined]
    return sql(statement).columns(*(columns[name] for name in queries.CLAIM_FIELDS))


def _claim(session: Session, statement: str, **params: Any) -> Claim | None:
    # A plain dataclass, not an ORM object: the claim is every worker's hot path, and building
    # a VideoItem costs more than the claim's own SQL (bench/claims.py).
    row = session.connection().execute(_claiming(statement), params).first()
    return Claim(*row) if row is not None else None


@lru_cache(maxsize=64)
def _returning(statement: str) -> sa.TextualSelect:
    """`statement` (which returns every item column, in order) with its result columns typed."""
    return sql(statement).columns(*VideoItem.__table__.columns)  # type: ignore[attr-defined]


def _returning_items(session: Session, statement: str, **params: Any) -> list[VideoItem]:
    """Run an UPDATE … RETURNING <item columns> and map its rows to refreshed VideoItems."""
    query = select(VideoItem).from_statement(_returning(statement))
    result = session.execute(query.execution_options(populate_existing=True), params)
    return list(result.scalars().all())


# --- creating items -----------------------------------------------------------------------


class TaskSpec(BaseModel):
    """One task of a batch, as the admin gives it (the seed's fields and ours)."""

    model_config = ConfigDict(extra="forbid")

    photo_id: uuid.UUID
    prompt: str
    frame_num: int | None = None
    duration_s: int | None = None
    seed: int | None = None
    inference_provider: str | None = None


def parse_provider(value: str | None) -> InferenceProvider | None:
    """`None` or `auto` mean "apply the routing rules"; anything else must name a provider."""
    if value is None or value == AUTO:
        return None
    try:
        return InferenceProvider(value)
    except ValueError:
        choices = ", ".join([p.value for p in InferenceProvider] + [AUTO])
        raise ValueError(f"{value!r} is not a provider; choose one of {choices}") from None


def _task_problems(index: int, task: TaskSpec) -> list[str]:
    where = f"tasks[{index}]"
    problems = []
    try:
        parse_provider(task.inference_provider)
    except ValueError as error:
        problems.append(f"{where}.inference_provider: {error}")
    if not task.prompt.strip():
        problems.append(f"{where}.prompt: is empty; describe the motion you want")
    elif (units := len(task.prompt.encode("utf-16-le")) // 2) > MAX_PROMPT_UTF16_UNITS:
        problems.append(
            f"{where}.prompt: is {units} UTF-16 units long; shorten it to at most "
            f"{MAX_PROMPT_UTF16_UNITS}"
        )
    if task.frame_num is not None and (
        task.frame_num % 4 != 1 or not MIN_FRAMES <= task.frame_num <= MAX_FRAMES
    ):
        problems.append(
            f"{where}.frame_num: {task.frame_num} is not a frame count Wan can make; use 4k+1 "
            f"between {MIN_FRAMES} and {MAX_FRAMES} (e.g. 81 or 121)"
        )
    if task.duration_s is not None and not MIN_DURATION_S <= task.duration_s <= MAX_DURATION_S:
        problems.append(
            f"{where}.duration_s: {task.duration_s} is out of range; use {MIN_DURATION_S} to "
            f"{MAX_DURATION_S} seconds"
        )
    if task.seed is not None and not 0 <= task.seed <= MAX_SEED:
        problems.append(f"{where}.seed: {task.seed} is out of range; use 0 to {MAX_SEED}")
    return problems


def route_in_group(
    group: Group,
    settings: Settings,
    *,
    requested: InferenceProvider | None,
    pending_wan: int,
) -> RoutingDecision:
    """The routing rules for a new item of `group` while `pending_wan` Wan items wait (what
    create_items applies and the admin's New tasks page previews)."""
    return route(
        requested=requested,
        group_priority=group.priority,
        group_default=group.default_provider,
        configured_default=settings.default_provider,
        pending_wan=pending_wan,
        fallback_threshold=settings.wan_fallback_threshold,
    )


def create_items(
    session: Session, *, group_id: uuid.UUID, tasks: Sequence[TaskSpec], settings: Settings
) -> list[VideoItem]:
    """Validate every task, then insert all of them routed by the policy, or none.

    Raises InvalidInput listing every problem (and writes nothing) when any task is bad.
    """
    group = session.get(Group, group_id)
    if group is None:
        raise InvalidInput([f"group_id: no group {group_id}; create the group first"])
    problems = []
    if not tasks:
        problems.append("tasks: is empty; add at least one task")
    if len(tasks) > MAX_BATCH:
        problems.append(f"tasks: {len(tasks)} tasks; send at most {MAX_BATCH} per batch")
    photo_ids = {task.photo_id for task in tasks}
    photos = {
        photo.id: photo
        for photo in session.exec(select(Photo).where(col(Photo.id).in_(photo_ids))).all()
    }
    for index, task in enumerate(tasks):
        problems += _task_problems(index, task)
        photo = photos.get(task.photo_id)
        if photo is None:
            problems.append(f"tasks[{index}].photo_id: no photo {task.photo_id}; upload it first")
        elif photo.group_id != group_id:
            problems.append(
                f"tasks[{index}].photo_id: photo {task.photo_id} belongs to another group"
            )
    if problems:
        raise InvalidInput(problems)

    pending_wan = count_items(session, InferenceProvider.wan_local, ItemStatus.pending)
    now = utcnow()
    items = []
    for index, task in enumerate(tasks):
        decision = route_in_group(
            group,
            settings,
            requested=parse_provider(task.inference_provider),
            pending_wan=pending_wan,
        )
        if decision.provider is InferenceProvider.wan_local:
            pending_wan += 1  # the batch's own Wan items count towards the fallback
        items.append(
            VideoItem(
                group_id=group_id,
                photo_id=task.photo_id,
                prompt=task.prompt.strip(),
                frame_num=task.frame_num,
                duration_s=task.duration_s,
                seed=task.seed,
                inference_provider=decision.provider,
                routed_by=decision.routed_by,
                route_reason=decision.reason,
                priority=queue_rank(group.priority),
                # A microsecond apart: the queue takes a batch's items in the order given.
                created_at=now + timedelta(microseconds=index),
                updated_at=now,
            )
        )
    session.add_all(items)
    session.flush()
    return items


# --- claiming and working -----------------------------------------------------------------


def claim_next(
    session: Session,
    *,
    worker_type: WorkerType,
    worker_id: str,
    settings: Settings,
    lease_seconds: int | None = None,
    now: datetime | None = None,
) -> Claim | None:
    """Atomically lease the next item for a worker type, or None when there is nothing to do.

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
    return _claim(
        session, queries.claim_next(worker_type, skip_locked=is_postgres(session)), **params
    )


def claim_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    worker_id: str,
    settings: Settings,
    now: datetime | None = None,
) -> Claim | None:
    """Lease one item for the run made for `attempt`; None when it is no longer claimable
    (another attempt took it, it was cancelled or finished, or its attempts are used up)."""
    now = now or utcnow()
    return _claim(
        session,
        queries.CLAIM_BY_ID,
        item_id=item_id,
        attempt=attempt,
        now=now,
        leased_until=now + timedelta(seconds=settings.lease_seconds),
        worker_id=worker_id,
        max_attempts=settings.max_attempts,
    )


def _fenced(session: Session, statement: str, **params: Any) -> None:
    result = session.execute(sql(statement), params)
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise StaleAttempt(f"attempt {params['attempt']} no longer holds item {params['item_id']}")


def renew_lease(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    lease_seconds: int,
    progress: float | None = None,
    now: datetime | None = None,
) -> datetime:
    """Extend the lease of the holder of `attempt` (and store its progress, 0..1).

    Returns the new end of the lease; raises StaleAttempt when the caller lost the item.
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
        leased_until=leased_until,
        progress=progress,
        now=now,
    )
    return leased_until


def set_provider_task(session: Session, *, item_id: uuid.UUID, attempt: int, task_id: str) -> None:
    """Store the provider's task id (Runway's) the moment it exists, so a retry resumes it."""
    _fenced(
        session,
        queries.SET_PROVIDER_TASK,
        item_id=item_id,
        attempt=attempt,
        task_id=task_id,
        now=utcnow(),
    )


def _one_or_stale(items: list[VideoItem], item_id: uuid.UUID, attempt: int) -> VideoItem:
    if not items:
        raise StaleAttempt(f"attempt {attempt} no longer holds item {item_id}")
    return items[0]


def complete_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    output_path: str,
    cost_credits: int = 0,
) -> VideoItem:
    """Mark the item completed with its video and what this attempt cost (fenced)."""
    items = _returning_items(
        session,
        queries.COMPLETE,
        item_id=item_id,
        attempt=attempt,
        output_path=output_path,
        cost_credits=cost_credits,
        now=utcnow(),
    )
    return _one_or_stale(items, item_id, attempt)


def backoff(attempt: int, settings: Settings) -> timedelta:
    """Wait before the attempt after `attempt`: the base delay, doubled per attempt made."""
    return timedelta(seconds=settings.retry_backoff_seconds * 2 ** (attempt - 1))


def fail_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    error: str,
    permanent: bool,
    settings: Settings,
    failure_code: str | None = None,
    cost_credits: int | None = None,
    keep_provider_task: bool = False,
) -> VideoItem:
    """Record a failed attempt (fenced).

    Transient errors send the item back to pending after a backoff while attempts remain;
    permanent errors, and the last attempt, fail it. `keep_provider_task` keeps the provider's
    task id for the next attempt to resume (the task itself is still alive, e.g. a poll failed).
    """
    now = utcnow()
    retry = not permanent and attempt < settings.max_attempts
    items = _returning_items(
        session,
        queries.fail("pending" if retry else "failed"),
        item_id=item_id,
        attempt=attempt,
        error=error,
        failure_code=failure_code,
        cost_credits=cost_credits,
        keep_task=keep_provider_task,
        next_attempt_at=now + backoff(attempt, settings) if retry else None,
        now=now,
    )
    return _one_or_stale(items, item_id, attempt)


# --- admin actions and housekeeping -------------------------------------------------------


def _transition(session: Session, statement: str, item_id: uuid.UUID, action: str) -> VideoItem:
    items = _returning_items(session, statement, item_id=item_id, now=utcnow())
    if items:
        return items[0]
    item = session.get(VideoItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"no item {item_id}")
    raise InvalidTransition(f"cannot {action} item {item_id}: it is {item.status.value}")


def cancel_item(session: Session, *, item_id: uuid.UUID) -> VideoItem:
    """Cancel a pending or processing item. The caller stops its flow run and provider task."""
    return _transition(session, queries.CANCEL, item_id, "cancel")


def retry_item(session: Session, *, item_id: uuid.UUID) -> VideoItem:
    """Send a failed or cancelled item back to pending with its attempts reset."""
    return _transition(session, queries.ADMIN_RETRY, item_id, "retry")


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
    session: Session, *, settings: Settings, now: datetime | None = None
) -> RequeueResult:
    """Items whose lease ran out go back to pending, or fail after their last attempt."""
    params = {"now": now or utcnow(), "max_attempts": settings.max_attempts}
    requeued = session.execute(sql(queries.REQUEUE_EXPIRED), params).rowcount  # type: ignore[attr-defined]
    failed = session.execute(sql(queries.FAIL_EXPIRED), params).rowcount  # type: ignore[attr-defined]
    return RequeueResult(requeued=requeued, failed=failed)


def get_item(session: Session, item_id: uuid.UUID) -> VideoItem:
    """The item with this id; NotFound otherwise."""
    item = session.get(VideoItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"no item {item_id}")
    return item
