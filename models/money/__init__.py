"""Money: spending caps (budgets reserved when an item is routed, settled when it ends) and
Runway's own limits on our organisation (concurrency, daily limits, balance)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelroute.models.core.lazy import load

if TYPE_CHECKING:
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

_WHERE = {
    "Budget": "reelroute.models.money.tables",
    "BudgetExceeded": "reelroute.models.money.budgets",
    "GpuPrices": "reelroute.models.money.gpu",
    "ModelLimits": "reelroute.models.money.limits",
    "RunwayLimits": "reelroute.models.money.limits",
    "Spend": "reelroute.models.money.budgets",
    "describe": "reelroute.models.money.budgets",
    "dollars": "reelroute.models.money.budgets",
    "last_limits": "reelroute.models.money.limits",
    "lock_budgets": "reelroute.models.money.budgets",
    "paid_ledger_credits": "reelroute.models.money.limits",
    "release": "reelroute.models.money.budgets",
    "reserve": "reelroute.models.money.budgets",
    "set_budget": "reelroute.models.money.budgets",
    "settle": "reelroute.models.money.budgets",
    "settle_item": "reelroute.models.money.budgets",
    "spend": "reelroute.models.money.budgets",
    "spend_gpu": "reelroute.models.money.budgets",
    "store_limits": "reelroute.models.money.limits",
    "tables": "reelroute.models.money.tables",
    "unsettled_credits": "reelroute.models.money.limits",
}
"""Each public name's module, imported when the name is first used."""


def __getattr__(name: str) -> object:
    """A public name, loaded on first use (models.core.lazy)."""
    return load(__name__, _WHERE, name)
