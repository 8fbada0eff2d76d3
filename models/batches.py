"""Adding a batch: photos and tasks in, stored photos and routed items out, all or none.

The one way to add work: `reelroute add`, `POST /api/admin/tasks/add` and the admin's New tasks
page all call `add_batch`. Everything is checked before anything is written, and every problem
of every photo and task is named at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from reelroute.models.enums import InferenceProvider, ItemStatus, queue_rank
from reelroute.models.errors import InvalidInput
from reelroute.models.routing import route_in_group
from reelroute.models.settings import Settings
from reelroute.models.statistics import count_items
from reelroute.models.storage import ImageInfo, Storage, image_problems, store_inspected
from reelroute.models.tables import Group, Photo, VideoItem, utcnow
from reelroute.models.tasks import TaskSpec

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
    photo_tasks: Sequence[PhotoTask], settings: Settings
) -> tuple[list[ImageInfo | None], list[str]]:
    infos: list[ImageInfo | None] = []
    problems = []
    for number, photo_task in enumerate(photo_tasks, start=1):
        label = photo_label(number, photo_task.upload.filename)
        info, found = image_problems(photo_task.upload.data, settings)
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
    settings: Settings,
    tasks: Sequence[TaskSpec] = (),
    photo_tasks: Sequence[PhotoTask] = (),
    storage: Storage | None = None,
) -> list[VideoItem]:
    """Store the batch's photos and create one item per task, routed by the policy: the items
    of `photo_tasks` (in order), then those of `tasks` (photos already stored in the group).

    Raises InvalidInput listing every problem, and writes nothing, when anything is wrong.
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
    return _insert_items(session, group, [*specs, *tasks], settings)


def _insert_items(
    session: Session, group: Group, tasks: Sequence[TaskSpec], settings: Settings
) -> list[VideoItem]:
    pending_wan = count_items(session, InferenceProvider.wan_local, ItemStatus.pending)
    now = utcnow()
    items = []
    for index, task in enumerate(tasks):
        decision = route_in_group(
            group, settings, requested=task.provider(), pending_wan=pending_wan
        )
        if decision.provider is InferenceProvider.wan_local:
            pending_wan += 1  # the batch's own Wan items count towards the fallback
        items.append(
            VideoItem(
                group_id=group.id,
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
