"""What the admin and the API read back: statistics per provider from the count ledger and the
latest completions."""

from __future__ import annotations

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
