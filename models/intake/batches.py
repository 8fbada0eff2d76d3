"""Adding a batch: photos and tasks in, stored photos and routed items out, all or none.

The one way to add work: `reelroute add`, `POST /api/admin/tasks/add` and the admin's New tasks
page all call `add_batch`. Everything is checked before anything is written, and every problem
of every photo and task is named at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from reelroute.models.core.enums import EventType, InferenceProvider, queue_rank
from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.tables import Group, Photo, VideoItem, utcnow
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.core.text import control_problem
from reelroute.models.intake.photos import ImageInfo, image_problems, store_inspected
from reelroute.models.intake.samples import add_samples
from reelroute.models.intake.settings import IntakeConfig
from reelroute.models.items.lifecycle import create_items
from reelroute.models.money.budgets import BudgetExceeded, lock_budgets, reserve
from reelroute.models.outbox.endpoints import endpoint_for
from reelroute.models.outbox.events import record
from reelroute.models.planning.eta import Waiting
from reelroute.models.planning.routing import (
    Policy,
    RouteRequest,
    RoutingDecision,
    RoutingOptions,
    allowed_for,
    route,
)
from reelroute.models.planning.snapshot import Snapshot, build_snapshot
from reelroute.models.store.files import Storage

MAX_BATCH = 1000


@dataclass(frozen=True)
class Upload:
    """A photo file: the name it was given (shown, never used as a path) and its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class PhotoTask:
    """A photo uploaded with the batch and the task to make of it (its `photo_id` is set once
    the photo is stored)."""

    upload: Upload
    task: TaskSpec


def photo_label(number: int, filename: str) -> str:
    """How a problem names an uploaded photo: `photo 2 (beach.jpg)`."""
    return f"photo {number} ({filename})"


def _check_photo_tasks(
    photo_tasks: Sequence[PhotoTask], settings: IntakeConfig
) -> tuple[list[ImageInfo | None], list[str]]:
    infos: list[ImageInfo | None] = []
    problems = []
    for number, photo_task in enumerate(photo_tasks, start=1):
        label = photo_label(number, photo_task.upload.filename)
        info, found = image_problems(photo_task.upload.data, settings)
        if (control := control_problem(photo_task.upload.filename)) is not None:
            found = [f"filename {control}", *found]
            label = photo_label(number, repr(photo_task.upload.filename))
        infos.append(info)
        problems += [f"{label}: {problem}" for problem in found]
        problems += [f"{label}, {field}: {why}" for field, why in photo_task.task.problems()]
    return infos, problems


def _check_tasks(session: Session, group_id: uuid.UUID, tasks: Sequence[TaskSpec]) -> list[str]:
    ids = {task.photo_id for task in tasks if task.photo_id is not None}
    photos = {
        photo.id: photo for photo in session.exec(select(Photo).where(col(Photo.id).in_(ids)))
    }
    problems = []
    for index, task in enumerate(tasks):
        where = f"tasks[{index}]"
        problems += [f"{where}.{field}: {why}" for field, why in task.problems()]
        try:
            endpoint_for(session, task.webhook_url)
        except InvalidInput as error:
            problems += [f"{where}.{problem}" for problem in error.problems]
        photo = photos.get(task.photo_id) if task.photo_id else None
        if task.photo_id is None:
            problems.append(f"{where}.photo_id: is missing; give the id of an uploaded photo")
        elif photo is None:
            problems.append(f"{where}.photo_id: no photo {task.photo_id}; upload it first")
        elif photo.group_id != group_id:
            problems.append(f"{where}.photo_id: photo {task.photo_id} belongs to another group")
    return problems


def add_batch(
    session: Session,
    *,
    group_id: uuid.UUID,
    settings: IntakeConfig,
    tasks: Sequence[TaskSpec] = (),
    photo_tasks: Sequence[PhotoTask] = (),
    storage: Storage | None = None,
    now: datetime | None = None,
    snapshot: Snapshot | None = None,
    policy: Policy | None = None,
    item_ids: Sequence[uuid.UUID] | None = None,
) -> list[VideoItem]:
    """Store the batch's photos and create one item per task, routed by the policy, with its
    due time and its budget reservation: the items of `photo_tasks` (in order), then those of
    `tasks` (photos already stored in the group).

    Raises InvalidInput listing every problem, and writes nothing, when anything is wrong; and
    BudgetExceeded (409) when a task names a paid provider whose cap it would pass.
    `now`, `snapshot`, `policy` and `item_ids` are for `reelroute replay` (a simulated clock,
    and the ids its hindsight knows the true durations of).
    """
    group = session.get(Group, group_id)
    if group is None:
        raise InvalidInput([f"group_id: no group {group_id}; create the group first"])
    count = len(tasks) + len(photo_tasks)
    problems = []
    if count == 0:
        problems.append("tasks: is empty; add at least one task")
    if count > MAX_BATCH:
        problems.append(f"tasks: {count} tasks; send at most {MAX_BATCH} per batch")
    infos, found = _check_photo_tasks(photo_tasks, settings)
    problems += found + _check_tasks(session, group_id, tasks)
    if problems:
        raise InvalidInput(problems)
    if photo_tasks and storage is None:
        raise ValueError("add_batch: photo_tasks need a storage")
    specs = []
    for photo_task, info in zip(photo_tasks, infos, strict=True):
        assert storage is not None and info is not None
        upload = photo_task.upload
        photo = store_inspected(session, storage, group_id, upload.data, upload.filename, info)
        specs.append(photo_task.task.model_copy(update={"photo_id": photo.id}))
    now = now or utcnow()
    snapshot = snapshot or build_snapshot(session, settings, now=now)
    ids = list(item_ids) if item_ids is not None else [uuid.uuid4() for _ in range(count)]
    return _insert_items(
        session,
        group,
        [*specs, *tasks],
        ids,
        settings,
        now,
        snapshot,
        RoutingOptions.of(settings, policy),
    )


def request_for(
    group: Group, settings: IntakeConfig, task: TaskSpec, item_id: uuid.UUID, now: datetime
) -> RouteRequest:
    """What the routing policy needs to know about one task of `group`."""
    deadline = (
        task.deadline_seconds
        or group.deadline_seconds
        or settings.routing.deadline_seconds(group.priority)
    )
    allowed = allowed_for(group)
    return RouteRequest(
        requested=task.provider(),
        group_id=group.id,
        priority=group.priority,
        group_default=group.default_provider,
        allowed=allowed,
        due_at=now + timedelta(seconds=deadline),
        frame_num=task.frame_num,
        duration_s=task.duration_s,
        item_id=item_id,
        full_quality=group.wan_full_quality,
    )


def _insert_items(
    session: Session,
    group: Group,
    tasks: Sequence[TaskSpec],
    ids: Sequence[uuid.UUID],
    settings: IntakeConfig,
    now: datetime,
    snapshot: Snapshot,
    options: RoutingOptions,
) -> list[VideoItem]:
    rows: list[dict[str, Any]] = []
    requests, decisions = [], []
    for index, (task, item_id) in enumerate(zip(tasks, ids, strict=True)):
        request = request_for(group, settings, task, item_id, now)
        decision = route(request, snapshot, options)
        rows.append(
            {
                "id": item_id,
                "group_id": group.id,
                "photo_id": task.photo_id,
                "prompt": task.prompt.strip(),
                "frame_num": task.frame_num,
                "duration_s": task.duration_s,
                "seed": task.seed,
                "inference_provider": decision.provider,
                "routed_by": decision.routed_by,
                "route_reason": decision.reason,
                "priority": queue_rank(group.priority),
                "wan_full_quality": group.wan_full_quality or decision.wan_full_quality,
                "due_at": request.due_at,
                "webhook_endpoint_id": endpoint_for(session, task.webhook_url),
                # A microsecond apart: the queue takes a batch's items in the order given.
                "created_at": now + timedelta(microseconds=index),
                "updated_at": now,
            }
        )
        requests.append(request)
        decisions.append(decision)
    items = create_items(session, rows)
    lock_budgets(session, group_id=group.id, now=now)
    refused = []
    for index, (item, request, decision) in enumerate(zip(items, requests, decisions, strict=True)):
        problem = _reserve(session, item, request, decision, snapshot, options, now)
        if problem is not None:
            refused.append(f"tasks[{index}].inference_provider: {problem}")
    if refused:
        raise BudgetExceeded("; ".join(refused), problems=refused)
    for item in items:  # the reason of each (a cap may have sent it elsewhere)
        record(session, [item], EventType.created, now=now)
    add_samples(session, group, items, now=now)  # the group's blind A/B samples, if any
    return items


def _reserve(
    session: Session,
    item: VideoItem,
    request: RouteRequest,
    decision: RoutingDecision,
    snapshot: Snapshot,
    options: RoutingOptions,
    now: datetime,
) -> str | None:
    """Reserve the item's estimated cost on its budgets. A cap that a concurrent batch reached
    first sends an auto-routed item to its next option; an explicit choice is refused."""
    excluded: set[InferenceProvider] = set()
    while True:
        try:
            reserve(
                session,
                item_id=item.id,
                provider=decision.provider,
                group_id=item.group_id,
                credits=decision.credits,
                now=now,
            )
            return None
        except BudgetExceeded as error:
            if request.requested is not None:
                return str(error)
            excluded.add(decision.provider)
            decision = route(request, snapshot, options, exclude=frozenset(excluded))
            item.inference_provider = decision.provider
            item.routed_by, item.route_reason = decision.routed_by, decision.reason
            session.flush()


@dataclass(frozen=True)
class Outlook:
    """What one provider would give a batch now: when its last video should be ready."""

    provider: InferenceProvider
    finish: datetime
    finish_p90: datetime
    on_time: bool
    """Every video of the batch predicted done (at p90) by its due time."""


def outlook(
    session: Session,
    *,
    group_id: uuid.UUID,
    settings: IntakeConfig,
    task: TaskSpec,
    count: int,
    now: datetime | None = None,
) -> tuple[RoutingDecision, list[Outlook]]:
    """For a batch of `count` tasks like `task` in the group: what the routing policy would
    choose for the first now, and when each provider would finish the whole batch (measured
    service times replayed on its queue). Writes nothing."""
    group = session.get(Group, group_id)
    if group is None:
        raise InvalidInput([f"group_id: no group {group_id}; create the group first"])
    now = now or utcnow()
    snapshot = build_snapshot(session, settings, now=now)
    request = request_for(group, settings, task, uuid.uuid4(), now)
    outlooks = []
    for provider, lane in snapshot.lanes.items():
        trial = lane.copy()
        p50, p90 = snapshot.estimates.seconds(provider, task.frame_num, task.duration_s)
        last = None
        for _ in range(max(count, 1)):
            last = trial.if_added(request.due_at, p50, p90)
            trial.add(Waiting(uuid.uuid4(), request.due_at, p50, p90))
        assert last is not None
        outlooks.append(
            Outlook(provider, last.finish, last.finish_p90, last.finish_p90 <= request.due_at)
        )
    decision = route(request, snapshot, RoutingOptions.of(settings))
    return decision, outlooks
