"""Where things are kept: database engines and sessions (errors translated), typed SQL and the
named queries that matter, the count ledger, the file store for photos and videos, and the
Alembic migrations. It knows tables, not rules: what an item may do is `items`' business."""

from __future__ import annotations

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
