"""The one way work comes in, whichever door it uses: `reelroute add`, `POST
/api/admin/tasks/add` (and the photo upload), and the admin's New tasks page differ only in how
they read their input and show the answer.

- `Intake` says which group (by id, or by name with the priority it should have) and what to
  make; `take_in` resolves the group, then adds the batch (models.intake.batches), all or none.
  A group named with a priority other than its own is refused, naming the group and its
  priority: a task never silently gets another priority than the one asked for.
- `deadline_from_text` reads `90m`, `4h`, `1h30m`; a bad one is InvalidInput naming the field.
- `run_once` is the Idempotency-Key rule around any of them: the same key and request answer the
  first answer again and create nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from reelroute.models.core.enums import GroupPriority
from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.tables import Group, VideoItem
from reelroute.models.core.tasks import TaskSpec, parse_deadline
from reelroute.models.intake import idempotency
from reelroute.models.intake.batches import PhotoTask, add_batch
from reelroute.models.intake.settings import IntakeConfig
from reelroute.models.items.groups import find_group, group_named
from reelroute.models.store.files import Storage


def deadline_from_text(text: str | None, *, field: str = "deadline") -> int | None:
    """Seconds from `90m`, `4h`, `1h30m`, `1200s`; None for nothing written. InvalidInput, naming
    `field`, for anything else."""
    if text is None or not text.strip():
        return None
    try:
        return parse_deadline(text)
    except ValueError as error:
        raise InvalidInput([f"{field}: {error}"]) from None


@dataclass(frozen=True)
class Intake:
    """One batch as an entry point read it."""

    group_id: uuid.UUID | None = None
    """An existing group; or, instead, `group_name`."""
    group_name: str | None = None
    """A group by name (case and spacing do not count): made when there is none."""
    priority: GroupPriority | None = None
    """The priority asked for: a new group's; an existing group must already have it."""
    wan_full_quality: bool | None = None
    """Wan videos of full quality only: a new group's; an existing group must already say so."""
    tasks: Sequence[TaskSpec] = ()
    """Tasks on photos already stored in the group."""
    photo_tasks: Sequence[PhotoTask] = ()
    """Photos uploaded with the batch, each with its task."""


@dataclass(frozen=True)
class Intaken:
    """What a batch became."""

    group: Group
    items: list[VideoItem]


def resolve_group(session: Session, intake: Intake) -> Group:
    """The batch's group: by id, or by name (made with the priority asked for when new).
    InvalidInput when there is none to use, or when an existing group has another priority."""
    if intake.group_id is not None:
        group = session.get(Group, intake.group_id)
        if group is None:
            raise InvalidInput([f"group_id: no group {intake.group_id}; create the group first"])
    elif intake.group_name is not None:
        existing = find_group(session, intake.group_name)
        if existing is not None:
            group = existing
        else:
            group, _ = group_named(
                session,
                name=intake.group_name,
                priority=intake.priority or GroupPriority.normal,
                wan_full_quality=bool(intake.wan_full_quality),
            )
    else:
        raise InvalidInput(["group: none given; pick a group or give a group name"])
    if intake.priority is not None and group.priority is not intake.priority:
        raise InvalidInput(
            [
                f"priority: the group {group.name!r} is {group.priority.value}, not "
                f"{intake.priority.value}; a group's items share its priority: add them to a "
                "group of that priority (another name), or leave the priority out"
            ]
        )
    if intake.wan_full_quality is not None and group.wan_full_quality != intake.wan_full_quality:
        says = "requires" if group.wan_full_quality else "does not require"
        raise InvalidInput(
            [
                f"wan_full_quality: the group {group.name!r} {says} full-quality Wan videos; a "
                "group's items share it: use a group that says so (another name), or leave it out"
            ]
        )
    return group


def take_in(
    session: Session, intake: Intake, *, settings: IntakeConfig, storage: Storage | None = None
) -> Intaken:
    """Resolve the group, then store the photos and create the items, all or none
    (models.intake.batches.add_batch: InvalidInput names every problem; BudgetExceeded when a
    named provider is at a cap)."""
    group = resolve_group(session, intake)
    items = add_batch(
        session,
        group_id=group.id,
        settings=settings,
        tasks=intake.tasks,
        photo_tasks=intake.photo_tasks,
        storage=storage,
    )
    return Intaken(group, items)


@dataclass(frozen=True)
class Answer:
    """What a request answers: its status and JSON body; `replayed` when it is the first
    answer to its Idempotency-Key, sent again."""

    status_code: int
    body: Any
    replayed: bool = False


def run_once(
    session: Session,
    *,
    key: str | None,
    scope: str,
    fingerprint: str,
    settings: IntakeConfig,
    work: Callable[[], Any],
    status_code: int = 200,
) -> Answer:
    """`work()` (which returns the JSON body of the answer), once per Idempotency-Key: a repeat
    of the same request gets the first answer again and `work` is not run; the same key with
    another request is refused (Conflict). Without a key, `work` simply runs. All in the
    caller's transaction: a request that fails keeps nothing, not even its key."""
    if key is None:
        return Answer(status_code, work())
    replay = idempotency.begin(
        session, key=key, scope=scope, fingerprint=fingerprint, hours=settings.api.idempotency_hours
    )
    if replay is not None:
        return Answer(replay.status_code, replay.body, replayed=True)
    body = work()
    idempotency.finish(session, key=key, status_code=status_code, body=body)
    return Answer(status_code, body)
