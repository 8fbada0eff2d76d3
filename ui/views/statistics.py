"""The Statistics page without Gradio: the per-provider table and the rows of its charts, from
the same figures as `GET /api/admin/stats` (models.reporting.statistics.provider_stats)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reelroute.models.assembly import Settings
from reelroute.models.core import BudgetScope, InferenceProvider, ItemStatus, duration, info
from reelroute.models.items import list_groups, redo_stats
from reelroute.models.money import dollars, spend
from reelroute.models.reporting import ProviderStats, Statistics, acceptance_table, provider_stats
from reelroute.models.store import count_ledger, session_scope
from reelroute.ui.views.queue import PROVIDER_BADGES, STATUS_COLOURS

TABLE_COLUMNS = [
    "Inference method",
    "Total",
    "Pending",
    "Processing",
    "In review",
    "Completed",
    "Failed",
    "Cancelled",
    "Success rate",
    "Median to finish",
    "p90 to finish",
    "On time",
    "Late risk (waiting)",
    "Moved away / here",
    "Spent",
]

MEASURES = (("median", "median_seconds_to_finish"), ("p90", "p90_seconds_to_finish"))
STATUS_COLOUR_MAP = {status.value: colour for status, colour in STATUS_COLOURS.items()}
"""The "Items by status" chart's colours: the badges' (completed green, failed red, …)."""
MEASURE_COLOUR_MAP = {"median": "#2563eb", "p90": "#93c5fd"}


def fingerprint(engine: sa.Engine) -> str:
    """A cheap digest of the counts (the ledger only): the page recomputes everything else
    only when it changes."""
    with session_scope(engine) as session:
        counts = count_ledger(session)
    return repr(sorted((p.value, sorted(c.model_dump().items())) for p, c in counts.items()))


def read(engine: sa.Engine) -> Statistics:
    """The figures of every provider."""
    with session_scope(engine) as session:
        return provider_stats(session)


def table(stats: Statistics) -> list[list[Any]]:
    """One row per provider, in TABLE_COLUMNS' order."""
    rows = []
    for provider, entry in stats.items():
        rate = entry.success_rate
        rows.append(
            [
                info(provider).label,
                entry.total,
                entry.pending,
                entry.processing,
                entry.review,
                entry.completed,
                entry.failed,
                entry.cancelled,
                "-" if rate is None else f"{rate:.0%}",
                duration(entry.median_seconds_to_finish),
                duration(entry.p90_seconds_to_finish),
                "-" if entry.on_time_rate is None else f"{entry.on_time_rate:.0%}",
                entry.predicted_late,
                f"{entry.moved_away} / {entry.moved_here}",
                spent_cell(entry),
            ]
        )
    return rows


def spent_cell(entry: ProviderStats) -> str:
    """Runway's dollars and credits; Wan's GPU time and what it cost (REELROUTE_GPU_HOUR_COST)."""
    if entry.gpu_seconds:
        hours = entry.gpu_seconds / 3600
        return f"GPUs ${entry.gpu_dollars:,.2f} ({hours:,.1f} GPU-hours)"
    return f"${entry.dollars:,.2f} ({entry.credits:,} credits)"


def _short(provider: InferenceProvider) -> str:
    return PROVIDER_BADGES[provider][0]


def status_rows(stats: Statistics) -> list[dict[str, Any]]:
    """Items by status per provider (a stacked bar chart)."""
    return [
        {
            "provider": _short(provider),
            "status": status.value,
            "items": getattr(entry, status.value),
        }
        for provider, entry in stats.items()
        for status in ItemStatus
    ]


def spend_rows(stats: Statistics) -> list[dict[str, Any]]:
    """Dollars spent per provider (Wan's: its GPU time)."""
    return [
        {"provider": _short(p), "dollars": round(entry.dollars + entry.gpu_dollars, 2)}
        for p, entry in stats.items()
    ]


def finish_rows(stats: Statistics) -> list[dict[str, Any]]:
    """Median and p90 minutes from created to finished, per provider (only those with data): a
    bar each, side by side (`bar`), never stacked."""
    rows = []
    for provider, entry in stats.items():
        for measure, key in MEASURES:
            seconds = getattr(entry, key)
            if seconds is not None:
                rows.append(
                    {
                        "provider": _short(provider),
                        "bar": f"{_short(provider)} {measure}",
                        "measure": measure,
                        "minutes": round(seconds / 60, 2),
                    }
                )
    return rows


BUDGET_COLUMNS = ["Budget", "Period", "Cap", "Spent", "Reserved", "Left", "Used"]


def budget_rows(engine: sa.Engine) -> list[list[Any]]:
    """Spend against every cap, in its current period."""
    with session_scope(engine) as session:
        entries = spend(session)
        names = {g.id: g.name for g in list_groups(session, limit=1000)}
    rows = []
    for entry in entries:
        budget = entry.budget
        if budget.scope is BudgetScope.provider and budget.provider is not None:
            what = info(budget.provider).label
        elif budget.scope is BudgetScope.group and budget.group_id is not None:
            what = f"group {names.get(budget.group_id, str(budget.group_id))}"
        elif budget.scope is BudgetScope.shadow:
            what = "the A/B samples (shadow budget)"
        elif budget.scope is BudgetScope.gpu:
            what = "GPU time"
        else:
            what = "all paid providers"
        used = entry.reserved + entry.spent
        share = f"{used / budget.cap_credits:.0%}" if budget.cap_credits else "cap 0: closed"
        rows.append(
            [
                what,
                f"{budget.period.value} from {entry.period_start}",
                dollars(budget.cap_credits),
                dollars(entry.spent),
                dollars(entry.reserved),
                dollars(entry.left),
                share,
            ]
        )
    return rows


def summary(stats: Statistics) -> str:
    """One line above the table."""
    total = sum(entry.total for _, entry in stats.items())
    dollars = sum(entry.dollars for _, entry in stats.items())
    gpus = sum(entry.gpu_dollars for _, entry in stats.items())
    backlog = stats[InferenceProvider.wan_local].backlog
    late = sum(entry.predicted_late for _, entry in stats.items())
    spent = f"**${dollars:,.2f} spent**"
    if gpus:
        spent = f"**${dollars + gpus:,.2f} spent** (Runway ${dollars:,.2f}, GPUs ${gpus:,.2f})"
    return (
        f"**{total:,} items** · {spent} · Wan backlog: **{backlog:,}** "
        f"pending · **{late:,}** waiting items at risk of being late"
    )


ACCEPTANCE_COLUMNS = [
    "Made by", "Wan preset", "Group", "Kept", "Share kept (95 % interval)", "Routing expects",
    "A/B won / lost / tied", "A/B not lost (95 % interval)",
]  # fmt: skip


def acceptance_rows(engine: sa.Engine, settings: Settings) -> list[list[Any]]:
    """How often each option's videos are kept (models.reporting.acceptance): per provider, its
    presets, then its groups."""
    with session_scope(engine) as session:
        found = acceptance_table(session, settings)
        names = {g.id: g.name for g in list_groups(session, limit=1000)}
    rows: list[list[Any]] = []
    for entry in found:
        compared = entry.ab_wins + entry.ab_losses + entry.ab_ties
        share = (
            f"{entry.share:.0%} ({entry.low:.0%}-{entry.high:.0%})"
            if entry.share is not None
            else "-"
        )
        rows.append(
            [
                info(entry.provider).label,
                entry.wan_preset or "all",
                names.get(entry.group_id, "-") if entry.group_id else "all",
                f"{entry.kept} of {entry.judged}",
                share,
                f"{entry.routing:.0%}",
                f"{entry.ab_wins} / {entry.ab_losses} / {entry.ab_ties}" if compared else "-",
                f"{entry.ab_low:.0%}-{entry.ab_high:.0%}" if compared else "-",
            ]
        )
    return rows


REDO_COLUMNS = ["Made by", "Wan preset", "Group", "Videos made again", "By a check", "Their cost"]


def redo_rows(engine: sa.Engine) -> list[list[Any]]:
    """Videos made again (rejected by a reviewer, or escalated by a failed check), per provider,
    Wan preset and group, with what the videos not kept cost; a first row per provider gives
    its redo rate (videos made again of the videos it made)."""
    with session_scope(engine) as session:
        stats = redo_stats(session)
        counts = provider_stats(session)
        names = {g.id: g.name for g in list_groups(session, limit=1000)}
    redone: dict[str, int] = {}
    for entry in stats:
        redone[entry.provider] = redone.get(entry.provider, 0) + entry.redos
    rows: list[list[Any]] = []
    for provider, count in sorted(redone.items()):
        made = count + counts.root[InferenceProvider(provider)].completed
        made += counts.root[InferenceProvider(provider)].review
        rows.append(
            [info(InferenceProvider(provider)).label, "all", "all", f"{count} of {made} "
             f"({count / made:.0%})", "", ""]
        )  # fmt: skip
    for entry in stats:
        rows.append(
            [
                info(InferenceProvider(entry.provider)).label,
                entry.wan_preset or "-",
                names.get(entry.group_id, "-") if entry.group_id else "-",
                entry.redos,
                entry.by_check,
                f"${entry.credits / 100:,.2f}",
            ]
        )
    return rows
