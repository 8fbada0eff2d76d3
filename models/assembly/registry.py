"""Every table of the schema, with the room that owns it: the one sub-package of `models` that
may write it (insert, update, delete). The migrations take their metadata from here
(`metadata`: every table registered), and `tools/ownership.py` (run by `make lint`) checks
that no module outside a table's owner writes it.

A table lives in its owner's `tables.py`, except the shared spine in `models/core/tables.py`:
`groups`, `photos`, `video_items`, and the two tables a room below their writer reads
(`item_etas`, `item_redos`). Reading another room's table is allowed (the layers of
pyproject.toml say which rooms may import which); writing it is not: call the owner.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from reelroute.models.core import tables as core
from reelroute.models.health import tables as health
from reelroute.models.intake import tables as intake
from reelroute.models.items import tables as items
from reelroute.models.money import tables as money
from reelroute.models.outbox import tables as outbox
from reelroute.models.planning import tables as planning
from reelroute.models.store import tables as store

__all__ = ["OWNERS", "TABLE_MODULES", "metadata"]

TABLE_MODULES = (core, health, intake, items, money, outbox, planning, store)
"""The modules that declare tables (importing them registers the tables on `metadata`)."""

metadata = SQLModel.metadata

OWNERS: dict[str, str] = {
    # the shared spine (models/core/tables.py)
    "groups": "items",
    "photos": "intake",
    "video_items": "items",
    "item_etas": "planning",
    "item_redos": "items",
    # each room's own tables (models/<room>/tables.py)
    "breakers": "health",
    "breaker_outcomes": "health",
    "loop_beats": "health",
    "loop_members": "health",
    "gpu_hosts": "planning",
    "gpu_demand": "planning",
    "item_reroutes": "planning",
    "predicted_late": "planning",
    "ab_comparisons": "items",
    "ab_pairs": "items",
    "failure_tallies": "store",
    "verdict_tallies": "store",
    "gpu_tallies": "store",
    "delivery_tallies": "store",
    "latency_buckets": "store",
    "item_status_counts": "store",
    "delivery_status_counts": "store",  # kept by triggers on webhook_deliveries
    "move_tallies": "store",
    "budgets": "money",
    "budget_usage": "money",
    "budget_reservations": "money",
    "runway_limits": "money",
    "idempotency_keys": "intake",
    "webhook_endpoints": "outbox",
    "item_events": "outbox",
    "webhook_deliveries": "outbox",
}
