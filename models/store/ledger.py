"""The count ledger: items (and credits) per provider and status, kept by triggers on
`video_items` (installed by the migrations), summed on read and folded back now and then. So
counts cost the same for a thousand items or ten million, and no writer waits on a shared
counter row. Statistics, Runway's spend books and (later) metrics read it here.
"""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session, col

from reelroute.models.core.enums import InferenceProvider, ItemStatus
from reelroute.models.store.db import is_postgres
from reelroute.models.store.queries import ledger as ledger_sql
from reelroute.models.store.tables import ItemStatusCount

COMPACT_AFTER_ROWS = 500  # ledger rows read by count_ledger before it folds them


class StatusCounts(BaseModel):
    """Items of one provider per status (the seed's counts, plus cancelled), and credits."""

    total: int = 0
    pending: int = 0
    processing: int = 0
    review: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    credits: int = Field(default=0, description="Runway credits spent (1 credit = $0.01).")

    def add(self, status: ItemStatus, items: int, credits: int) -> None:
        """Count `items` more items in `status` (negative: fewer) and their credits."""
        setattr(self, status.value, getattr(self, status.value) + items)
        self.total += items
        self.credits += credits


def count_ledger(session: Session) -> dict[InferenceProvider, StatusCounts]:
    """Per provider, the items in each status and the credits spent, read from the count
    ledger: the cost does not grow with the table."""
    counts = {provider: StatusCounts() for provider in InferenceProvider}
    ledger_rows = 0
    for provider, status, items, credits, rows in session.execute(sa.text(ledger_sql.COUNTS)):
        counts[InferenceProvider(provider)].add(ItemStatus(status), int(items), int(credits))
        ledger_rows += int(rows)
    if ledger_rows > COMPACT_AFTER_ROWS:
        compact_counts(session)
    return counts


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
            session.execute(sa.text(ledger_sql.COMPACT_COUNTS_PG))
        return
    sums: dict[tuple[str, str], list[int]] = {}
    for provider, status, items, credits in session.execute(
        sa.text(ledger_sql.COMPACT_COUNTS_DELETE_SQLITE)
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
        session.execute(sa.text(ledger_sql.INSERT_COUNT), rows)
