"""What the admin reads: statistics per provider (from the count ledger) and the queue,
newest first, a page at a time."""

from __future__ import annotations

import base64
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models import queries
from reelroute.models.db import is_postgres
from reelroute.models.enums import InferenceProvider, ItemStatus
from reelroute.models.errors import InvalidInput
from reelroute.models.tables import ItemStatusCount, VideoItem

COMPACT_AFTER_ROWS = 500  # ledger rows read by get_stats before it folds them
FINISH_TIME_WINDOW = 1000  # time-to-finish figures cover each provider's latest completions

STAT_STATUSES = tuple(ItemStatus)


def get_stats(session: Session) -> dict[str, dict[str, int]]:
    """Per provider: `total` and a count per status (the seed's shape, plus `cancelled`), and
    `credits` spent. Read from the count ledger: the cost does not grow with the table."""
    stats = {
        provider.value: {"total": 0, **{s.value: 0 for s in STAT_STATUSES}, "credits": 0}
        for provider in InferenceProvider
    }
    ledger_rows = 0
    for provider, status, items, credits, rows in session.execute(sa.text(queries.COUNTS)):
        entry = stats[InferenceProvider(provider).value]
        entry[ItemStatus(status).value] += int(items)
        entry["total"] += int(items)
        entry["credits"] += int(credits)
        ledger_rows += int(rows)
    if ledger_rows > COMPACT_AFTER_ROWS:
        compact_counts(session)
    return stats


def finish_times(session: Session, provider: InferenceProvider) -> list[float]:
    """Seconds from created to finished of the provider's latest completed items (at most
    FINISH_TIME_WINDOW, read through ix_video_items_finished_created)."""
    query = (
        select(VideoItem.created_at, VideoItem.finished_at)
        .where(col(VideoItem.status) == ItemStatus.completed)
        .where(col(VideoItem.inference_provider) == provider)
        .order_by(col(VideoItem.created_at).desc())
        .limit(FINISH_TIME_WINDOW)
    )
    return [(done - created).total_seconds() for created, done in session.exec(query) if done]


def provider_stats(session: Session) -> dict[str, dict[str, Any]]:
    """What `GET /api/admin/stats` and the statistics page show, per provider: get_stats'
    counts and credits, plus success rate, median and p90 seconds to finish, dollars spent,
    and (for wan_local) the backlog of pending items."""
    data: dict[str, dict[str, Any]] = {}
    for provider, counts in get_stats(session).items():
        ended = counts["completed"] + counts["failed"]
        times = sorted(finish_times(session, InferenceProvider(provider)))
        data[provider] = {
            **counts,
            "success_rate": round(counts["completed"] / ended, 4) if ended else None,
            "median_seconds_to_finish": statistics.median(times) if times else None,
            "p90_seconds_to_finish": times[int(0.9 * (len(times) - 1))] if times else None,
            "dollars": counts["credits"] / 100,
        }
    wan = data[InferenceProvider.wan_local.value]
    wan["backlog"] = wan["pending"]
    return data


def count_items(session: Session, provider: InferenceProvider, status: ItemStatus) -> int:
    """How many items of `provider` are in `status`, from the count ledger."""
    total = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(ItemStatusCount.items), 0)).where(
            col(ItemStatusCount.inference_provider) == provider,
            col(ItemStatusCount.status) == status,
        )
    ).scalar_one()
    return int(total)


def compact_counts(session: Session) -> None:
    """Fold the count ledger to one row per (provider, status)."""
    if is_postgres(session):
        # One compaction at a time; a concurrent caller skips (the ledger stays correct).
        if session.execute(sa.text("SELECT pg_try_advisory_xact_lock(7246001)")).scalar_one():
            session.execute(sa.text(queries.COMPACT_COUNTS_PG))
        return
    sums: dict[tuple[str, str], list[int]] = {}
    for provider, status, items, credits in session.execute(
        sa.text(queries.COMPACT_COUNTS_DELETE_SQLITE)
    ):
        entry = sums.setdefault((provider, status), [0, 0])
        entry[0] += items
        entry[1] += credits
    rows = [
        {"provider": p, "status": s, "items": n, "credits": c}
        for (p, s), (n, c) in sums.items()
        if n or c
    ]
    if rows:
        session.execute(sa.text(queries.INSERT_COUNT), rows)


# --- the queue ----------------------------------------------------------------------------


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
    items as at the start (indexes `ix_video_items_*created`, see models.tables).
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
