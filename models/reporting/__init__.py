"""What the admin and the API read back: statistics per provider from the count ledger and the
latest completions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelroute.models.core.lazy import load

if TYPE_CHECKING:
    from reelroute.models.reporting.acceptance import AcceptanceRow, acceptance_table
    from reelroute.models.reporting.health import ProviderHealth, provider_health
    from reelroute.models.reporting.metrics import Family, HistogramFamily, read_metrics
    from reelroute.models.reporting.statistics import ProviderStats, Statistics, provider_stats

__all__ = [
    "AcceptanceRow",
    "Family",
    "HistogramFamily",
    "ProviderHealth",
    "ProviderStats",
    "Statistics",
    "acceptance_table",
    "provider_health",
    "provider_stats",
    "read_metrics",
]

_WHERE = {
    "AcceptanceRow": "reelroute.models.reporting.acceptance",
    "Family": "reelroute.models.reporting.metrics",
    "HistogramFamily": "reelroute.models.reporting.metrics",
    "ProviderHealth": "reelroute.models.reporting.health",
    "ProviderStats": "reelroute.models.reporting.statistics",
    "Statistics": "reelroute.models.reporting.statistics",
    "acceptance_table": "reelroute.models.reporting.acceptance",
    "provider_health": "reelroute.models.reporting.health",
    "provider_stats": "reelroute.models.reporting.statistics",
    "read_metrics": "reelroute.models.reporting.metrics",
}
"""Each public name's module, imported when the name is first used."""


def __getattr__(name: str) -> object:
    """A public name, loaded on first use (models.core.lazy)."""
    return load(__name__, _WHERE, name)
