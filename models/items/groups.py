"""Groups: the admin's unit of work, with a priority that drives routing and ordering.

A group's name is unique per installation, ignoring case and spacing (`name_key`): `reelroute add
--group Summer` run three times adds to one group called Summer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.core.enums import GroupPriority, InferenceProvider, QualityAction
from reelroute.models.core.errors import Conflict, InvalidInput
from reelroute.models.core.tables import Group, VideoItem
from reelroute.models.core.tasks import MAX_DEADLINE_S, MIN_DEADLINE_S
from reelroute.models.core.text import control_problem
from reelroute.models.items.settings import THRESHOLDS

MAX_NAME_CHARS = 200


def name_key(name: str) -> str:
    """What makes two group names the same: case and runs of spaces do not count."""
    return " ".join(name.split()).casefold()


def _checked_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput(["name: is empty; give the group a name"])
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput([f"name: is longer than {MAX_NAME_CHARS} characters; shorten it"])
    if (control := control_problem(name)) is not None:
        raise InvalidInput([f"name: {control}"])
    return name


def find_group(session: Session, name: str) -> Group | None:
    """The group with this name (ignoring case and spacing), if there is one."""
    return session.exec(select(Group).where(Group.name_key == name_key(name))).first()


def _taken(group: Group) -> Conflict:
    return Conflict(
        f"name: a group named {group.name!r} already exists (id {group.id}); add to it, or "
        "choose another name"
    )


def create_group(
    session: Session,
    *,
    name: str,
    priority: GroupPriority = GroupPriority.normal,
    default_provider: InferenceProvider | None = None,
    deadline_seconds: int | None = None,
    allowed_providers: Sequence[InferenceProvider] | None = None,
    webhook_endpoint_id: uuid.UUID | None = None,
    wan_full_quality: bool = False,
    quality_action: QualityAction | None = None,
    quality_thresholds: Mapping[str, float] | None = None,
    review_share: float = 0.0,
    shadow_rate: float = 0.0,
    shadow_provider: InferenceProvider | None = None,
    keep_original_photos: bool = False,
) -> Group:
    """A new group. Conflict (naming the existing group) when the name is taken, even by a
    concurrent caller a moment earlier. `deadline_seconds` is its items' time-to-video target
    and `allowed_providers` who the routing policy may choose (None: by its priority);
    `wan_full_quality` keeps its Wan videos to presets that keep the model card's quality;
    `shadow_rate` is the share of its items also made by `shadow_provider` for a blind A/B
    comparison (models.intake.samples)."""
    name = _checked_name(name)
    if deadline_seconds is not None and not MIN_DEADLINE_S <= deadline_seconds <= MAX_DEADLINE_S:
        raise InvalidInput(
            [f"deadline_seconds: {deadline_seconds} is out of range; use 60 s to 30 days"]
        )
    if allowed_providers is not None and not allowed_providers:
        raise InvalidInput(["allowed_providers: is empty; allow at least one provider"])
    problems = [
        f"quality_thresholds: no threshold {name!r}; use {', '.join(THRESHOLDS)}"
        for name in quality_thresholds or {}
        if name not in THRESHOLDS
    ]
    if not 0 <= review_share <= 1:
        problems.append(f"review_share: {review_share} is not a share; use 0 to 1")
    if not 0 <= shadow_rate <= 1:
        problems.append(f"shadow_rate: {shadow_rate} is not a share; use 0 to 1 (0.05: 5 %)")
    if (
        shadow_provider is not None
        and allowed_providers
        and shadow_provider not in allowed_providers
    ):
        problems.append(
            f"shadow_provider: {shadow_provider.value} is not among the group's allowed providers"
        )
    if problems:
        raise InvalidInput(problems)
    existing = find_group(session, name)
    if existing is not None:
        raise _taken(existing)
    group = Group(
        name=name,
        name_key=name_key(name),
        priority=priority,
        default_provider=default_provider,
        deadline_seconds=deadline_seconds,
        webhook_endpoint_id=webhook_endpoint_id,
        allowed_providers=[p.value for p in allowed_providers] if allowed_providers else None,
        wan_full_quality=wan_full_quality,
        quality_action=quality_action,
        quality_thresholds=dict(quality_thresholds) if quality_thresholds else None,
        review_share=review_share,
        shadow_rate=shadow_rate,
        shadow_provider=shadow_provider.value if shadow_provider else None,
        keep_original_photos=keep_original_photos,
    )
    try:
        with session.begin_nested():  # a savepoint: losing the race leaves the session usable
            session.add(group)
    except sa.exc.IntegrityError:
        winner = find_group(session, name)
        if winner is None:
            raise
        raise _taken(winner) from None
    return group


def group_named(
    session: Session,
    *,
    name: str,
    priority: GroupPriority = GroupPriority.normal,
    wan_full_quality: bool = False,
) -> tuple[Group, bool]:
    """The group called `name`, made with `priority` (and `wan_full_quality`) when there is
    none; True when it is new."""
    existing = find_group(session, _checked_name(name))
    if existing is not None:
        return existing, False
    try:
        group = create_group(
            session, name=name, priority=priority, wan_full_quality=wan_full_quality
        )
        return group, True
    except Conflict:  # made by a concurrent caller since we looked
        winner = find_group(session, name)
        assert winner is not None
        return winner, False


def list_groups(session: Session, limit: int = 200) -> list[Group]:
    """The newest groups first (what the admin picks from)."""
    query = select(Group).order_by(col(Group.created_at).desc()).limit(limit)
    return list(session.exec(query).all())


def forget_endpoint(session: Session, endpoint_id: uuid.UUID) -> None:
    """Groups and items that named the webhook endpoint `endpoint_id` no longer do (before the
    outbox deletes it: `outbox.endpoints.delete`)."""
    for table in (Group, VideoItem):
        session.execute(
            sa.update(table)
            .where(col(table.webhook_endpoint_id) == endpoint_id)
            .values(webhook_endpoint_id=None)
            .execution_options(synchronize_session=False)
        )
