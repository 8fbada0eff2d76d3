"""Groups: the admin's unit of work, with a priority that drives routing and ordering."""

from __future__ import annotations

from sqlmodel import Session, col, select

from reelroute.models.enums import GroupPriority, InferenceProvider
from reelroute.models.errors import InvalidInput
from reelroute.models.tables import Group


def create_group(
    session: Session,
    *,
    name: str,
    priority: GroupPriority = GroupPriority.normal,
    default_provider: InferenceProvider | None = None,
) -> Group:
    """A new group; its name must not be empty."""
    if not name.strip():
        raise InvalidInput(["name: is empty; give the group a name"])
    if len(name.strip()) > 200:
        raise InvalidInput(["name: is longer than 200 characters; shorten it"])
    group = Group(name=name.strip(), priority=priority, default_provider=default_provider)
    session.add(group)
    session.flush()
    return group


def list_groups(session: Session, limit: int = 200) -> list[Group]:
    """The newest groups first (what the admin picks from)."""
    query = select(Group).order_by(col(Group.created_at).desc()).limit(limit)
    return list(session.exec(query).all())
