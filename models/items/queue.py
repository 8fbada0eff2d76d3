"""The queue as the admin reads it: items newest first, filtered, a page at a time."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.core.enums import InferenceProvider, ItemStatus
from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.tables import ItemEta, VideoItem


@dataclass
class QueuePage:
    """One page of the queue, newest first; `next_cursor` fetches the next (None at the end)."""

    items: list[VideoItem] = field(default_factory=list)
    next_cursor: str | None = None


def _encode_cursor(item: VideoItem) -> str:
    raw = f"{item.created_at.isoformat()}|{item.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, item_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(item_id)
    except ValueError:
        raise InvalidInput([f"cursor: {cursor!r} is not a cursor from a previous page"]) from None


def list_queue(
    session: Session,
    *,
    provider: InferenceProvider | None = None,
    status: ItemStatus | None = None,
    group_id: uuid.UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> QueuePage:
    """Items newest first, optionally of one provider, status and group, a page at a time.

    Keyset pagination on (created_at, id): a page costs the same at the end of a million
    items as at the start (indexes `ix_video_items_*created`, see models.core.tables).
    """
    if not 1 <= limit <= 500:
        raise InvalidInput([f"limit: {limit} is out of range; use 1 to 500"])
    query = select(VideoItem)
    if provider is not None:
        query = query.where(VideoItem.inference_provider == provider)
    if status is not None:
        query = query.where(col(VideoItem.status) == status)
        if status is ItemStatus.processing:
            # Only processing items hold a lease: lets the planner use ix_video_items_leases.
            query = query.where(col(VideoItem.leased_until).is_not(None))
    if group_id is not None:
        query = query.where(VideoItem.group_id == group_id)
    if cursor is not None:
        created, item_id = _decode_cursor(cursor)
        query = query.where(
            sa.tuple_(col(VideoItem.created_at), col(VideoItem.id)) < sa.tuple_(created, item_id)
        )
    query = query.order_by(col(VideoItem.created_at).desc(), col(VideoItem.id).desc())
    items = list(session.exec(query.limit(limit + 1)).all())
    next_cursor = _encode_cursor(items[limit - 1]) if len(items) > limit else None
    return QueuePage(items=items[:limit], next_cursor=next_cursor)


def etas_of(session: Session, item_ids: list[uuid.UUID]) -> dict[uuid.UUID, ItemEta]:
    """The stored ETAs of these items (those that have one)."""
    if not item_ids:
        return {}
    query = select(ItemEta).where(col(ItemEta.item_id).in_(item_ids))
    return {eta.item_id: eta for eta in session.exec(query).all()}
