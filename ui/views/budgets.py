"""The Budgets page without Gradio: the caps and what they have left, and setting one."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from reelroute.models.core import (
    CATALOGUE,
    BudgetPeriod,
    BudgetScope,
    InferenceProvider,
    InvalidInput,
)
from reelroute.models.money import set_budget
from reelroute.models.store import session_scope
from reelroute.ui.views.statistics import BUDGET_COLUMNS, budget_rows

ALL_PAID = "all paid providers"
SHADOW = "the A/B samples (shadow budget)"
GPU = "GPU time (REELROUTE_GPU_HOUR_COST)"
__all__ = ["BUDGET_COLUMNS", "budget_rows", "paid_choices", "set_cap"]


def paid_choices() -> list[tuple[str, str]]:
    """What a provider cap can cover: (label, value), every paid model, `all`, `shadow` (the
    A/B samples' second videos, paid from it alone) and `gpu` (what the GPU hosts' time costs:
    with per-second billing, routing keeps items off the GPUs once it is spent)."""
    paid = [(entry.label, p.value) for p, entry in CATALOGUE.items() if entry.paid]
    return [
        (ALL_PAID.capitalize(), "all"),
        *paid,
        (SHADOW.capitalize(), "shadow"),
        (GPU, "gpu"),
    ]


def set_cap(
    engine: sa.Engine,
    *,
    provider: str,
    group_id: str | None,
    period: str,
    dollars: float | None,
) -> str:
    """Create or change a cap: on one group when `group_id` is given, else on `provider` (or
    on all paid providers for `all`). Returns a sentence for the page; InvalidInput says what
    is wrong."""
    problems = []
    if dollars is None:
        problems.append("cap: give an amount in dollars (0 stops spending)")
    try:
        cycle = BudgetPeriod(period)
    except ValueError:
        problems.append(f"period: {period!r}; use day or month")
    if problems:
        raise InvalidInput(problems)
    assert dollars is not None
    if group_id:
        scope, target, group = BudgetScope.group, None, uuid.UUID(group_id)
    elif provider == "all":
        scope, target, group = BudgetScope.total, None, None
    elif provider == "shadow":
        scope, target, group = BudgetScope.shadow, None, None
    elif provider == "gpu":
        scope, target, group = BudgetScope.gpu, None, None
    else:
        scope, target, group = BudgetScope.provider, InferenceProvider(provider), None
    with session_scope(engine) as session:
        set_budget(
            session,
            scope=scope,
            period=cycle,
            cap_dollars=dollars,
            provider=target,
            group_id=group,
        )
    names = {BudgetScope.shadow: SHADOW, BudgetScope.gpu: GPU, BudgetScope.total: ALL_PAID}
    covered = "the group" if group else (names.get(scope, "") if target is None else target.value)
    return f"Cap set: **${dollars:,.2f} per {cycle.value}** for {covered}."
