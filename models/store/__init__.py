"""Where things are kept: database engines and sessions (errors translated), typed SQL and the
named queries that matter, the count ledger, the file store for photos and videos, and the
Alembic migrations. It knows tables, not rules: what an item may do is `items`' business."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelroute.models.core.lazy import load

if TYPE_CHECKING:
    from reelroute.models.store import tables
    from reelroute.models.store.copy import chunks, columns, numbers, write_rows
    from reelroute.models.store.db import is_postgres, make_engine, session_scope
    from reelroute.models.store.files import Storage, photo_path, staged_video_path, video_path
    from reelroute.models.store.ledger import StatusCounts, compact_counts, count_ledger
    from reelroute.models.store.migrate import upgrade
    from reelroute.models.store.sql import returning_items, rowcount, sql
    from reelroute.models.store.tallies import (
        DELIVERY_OUTCOMES,
        count_deliveries,
        count_failure,
        count_gpu_time,
        count_verdict,
        delivery_tallies,
        failure_tallies,
        gpu_tallies,
        group_key,
        latency_histograms,
        observe_latency,
        verdict_tallies,
    )

__all__ = [
    "DELIVERY_OUTCOMES",
    "StatusCounts",
    "Storage",
    "chunks",
    "columns",
    "compact_counts",
    "count_deliveries",
    "count_failure",
    "count_gpu_time",
    "count_ledger",
    "count_verdict",
    "delivery_tallies",
    "failure_tallies",
    "gpu_tallies",
    "group_key",
    "is_postgres",
    "latency_histograms",
    "make_engine",
    "numbers",
    "observe_latency",
    "photo_path",
    "returning_items",
    "rowcount",
    "session_scope",
    "sql",
    "staged_video_path",
    "tables",
    "upgrade",
    "verdict_tallies",
    "video_path",
    "write_rows",
]

_WHERE = {
    "DELIVERY_OUTCOMES": "reelroute.models.store.tallies",
    "StatusCounts": "reelroute.models.store.ledger",
    "Storage": "reelroute.models.store.files",
    "chunks": "reelroute.models.store.copy",
    "columns": "reelroute.models.store.copy",
    "compact_counts": "reelroute.models.store.ledger",
    "count_deliveries": "reelroute.models.store.tallies",
    "count_failure": "reelroute.models.store.tallies",
    "count_gpu_time": "reelroute.models.store.tallies",
    "count_ledger": "reelroute.models.store.ledger",
    "count_verdict": "reelroute.models.store.tallies",
    "delivery_tallies": "reelroute.models.store.tallies",
    "failure_tallies": "reelroute.models.store.tallies",
    "gpu_tallies": "reelroute.models.store.tallies",
    "group_key": "reelroute.models.store.tallies",
    "is_postgres": "reelroute.models.store.db",
    "latency_histograms": "reelroute.models.store.tallies",
    "make_engine": "reelroute.models.store.db",
    "numbers": "reelroute.models.store.copy",
    "observe_latency": "reelroute.models.store.tallies",
    "photo_path": "reelroute.models.store.files",
    "returning_items": "reelroute.models.store.sql",
    "rowcount": "reelroute.models.store.sql",
    "session_scope": "reelroute.models.store.db",
    "sql": "reelroute.models.store.sql",
    "staged_video_path": "reelroute.models.store.files",
    "tables": "reelroute.models.store.tables",
    "upgrade": "reelroute.models.store.migrate",
    "verdict_tallies": "reelroute.models.store.tallies",
    "video_path": "reelroute.models.store.files",
    "write_rows": "reelroute.models.store.copy",
}
"""Each public name's module, imported when the name is first used."""


def __getattr__(name: str) -> object:
    """A public name, loaded on first use (models.core.lazy)."""
    return load(__name__, _WHERE, name)
