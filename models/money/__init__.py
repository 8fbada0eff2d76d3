"""Money: spending caps (budgets reserved when an item is routed, settled when it ends) and
Runway's own limits on our organisation (concurrency, daily limits, balance)."""

from __future__ import annotations

from reelroute.models.money import tables
from reelroute.models.money.budgets import (
    BudgetExceeded,
    Spend,
    describe,
    dollars,
    lock_budgets,
    release,
    reserve,
    set_budget,
    settle,
    settle_item,
    spend,
    spend_gpu,
)
from reelroute.models.money.gpu import GpuPrices
from reelroute.models.money.limits import (
    ModelLimits,
    RunwayLimits,
    last_limits,
    paid_ledger_credits,
    store_limits,
    unsettled_credits,
)
from reelroute.models.money.tables import Budget

__all__ = [
    "Budget",
    "BudgetExceeded",
    "GpuPrices",
    "ModelLimits",
    "RunwayLimits",
    "Spend",
    "describe",
    "dollars",
    "last_limits",
    "lock_budgets",
    "paid_ledger_credits",
    "release",
    "reserve",
    "set_budget",
    "settle",
    "settle_item",
    "spend",
    "spend_gpu",
    "store_limits",
    "tables",
    "unsettled_credits",
]
