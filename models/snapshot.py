"""What the routing policy decides from: the lanes of every provider (its items at work and
waiting, replayed on its slots), service-time estimates, what the budgets have left, and
Runway's own limits. A plain value: built from the database in production, on a simulated
clock by `reelroute replay`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models.budgets import Spend, spend
from reelroute.models.catalogue import CATALOGUE
from reelroute.models.enums import POOL_OF, BudgetScope, InferenceProvider, Pool
from reelroute.models.estimates import DEFAULT_WAN_AREA, Estimates, read_estimates
from reelroute.models.eta import Lane, Waiting, Working, lane_of
from reelroute.models.limits import (
    RunwayLimits,
    last_limits,
    paid_ledger_credits,
    unsettled_credits,
)
from reelroute.models.settings import Settings
from reelroute.models.sql import sql


@dataclass
class Caps:
    """Credits the budgets have left, per budget, as decisions use them up."""

    spends: list[Spend] = field(default_factory=list)
    runway_left: int | None = None
    """Runway's own cap: the credit balance and the monthly limit, less what was charged since
    Runway said so and what our unsettled items reserved (`RunwayLimits.credits_left`)."""
    used: dict[uuid.UUID, int] = field(default_factory=dict)
    runway_used: int = 0

    def left(self, provider: InferenceProvider, group_id: uuid.UUID | None) -> int | None:
        """Credits an item of `provider` in `group_id` may still reserve (None: no cap)."""
        if provider is InferenceProvider.wan_local:
            return None
        lefts = []
        for entry in self.spends:
            budget = entry.budget
            applies = (
                budget.scope is BudgetScope.total
                or (budget.scope is BudgetScope.provider and budget.provider is provider)
                or (budget.scope is BudgetScope.group and budget.group_id == group_id)
            )
            if applies:
                lefts.append(entry.left - self.used.get(budget.id, 0))
        if self.runway_left is not None:
            lefts.append(self.runway_left - self.runway_used)
        return min(lefts) if lefts else None

    def take(self, provider: InferenceProvider, group_id: uuid.UUID | None, credits: int) -> None:
        """A decision spent `credits` of every cap that applies."""
        if provider is InferenceProvider.wan_local:
            return
        for entry in self.spends:
            budget = entry.budget
            if (
                budget.scope is BudgetScope.total
                or (budget.scope is BudgetScope.provider and budget.provider is provider)
                or (budget.scope is BudgetScope.group and budget.group_id == group_id)
            ):
                self.used[budget.id] = self.used.get(budget.id, 0) + credits
        self.runway_used += credits


@dataclass
class Snapshot:
    """Everything a routing decision looks at, at `now`."""

    now: datetime
    lanes: dict[InferenceProvider, Lane]
    estimates: Estimates
    caps: Caps
    limits: RunwayLimits | None = None
    pending_wan: int = 0
    """Wan items waiting (the seed's threshold rule counts them)."""

    def lane(self, provider: InferenceProvider) -> Lane:
        """The lane of `provider`."""
        return self.lanes[provider]


ITEMS_IN_LANES = """
SELECT id, inference_provider, status, due_at, started_at, frame_num, duration_s,
       CASE WHEN routed_by <> 'explicit' AND rerouted_at IS NULL AND retry_count = 0
            THEN 1 ELSE 0 END AS movable
FROM video_items
WHERE status = 'pending' OR leased_until IS NOT NULL
ORDER BY due_at, created_at
"""


def lane_slots(
    provider: InferenceProvider, settings: Settings, limits: RunwayLimits | None, model: str
) -> int:
    """How many items of `provider` run at once: the GPUs for Wan; Runway's per-model
    concurrency when known (never more than the cloud pool's slots), else the pool's slots."""
    if POOL_OF[provider] is Pool.gpu:
        return settings.gpu_slots
    if limits is not None:
        concurrent = limits.model(model).max_concurrent
        if concurrent is not None:
            return max(1, min(concurrent, settings.cloud_slots))
    return settings.cloud_slots


def read_service_times(session: Session, settings: Settings) -> Estimates:
    """Every provider's service times, from history or the catalogue."""
    return read_estimates(
        session,
        defaults={provider: entry.minutes for provider, entry in CATALOGUE.items()},
        pixels=settings.wan_max_area or DEFAULT_WAN_AREA,
    )


def build_snapshot(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    estimates: Estimates | None = None,
) -> Snapshot:
    """The snapshot at `now` from the database (`estimates` replaces the measured service
    times: `reelroute replay` feeds the true ones for its hindsight line)."""
    estimates = estimates or read_service_times(session, settings)
    limits = last_limits(session)
    working: dict[InferenceProvider, list[Working]] = {p: [] for p in CATALOGUE}
    waiting: dict[InferenceProvider, list[Waiting]] = {p: [] for p in CATALOGUE}
    statement = sql(ITEMS_IN_LANES).columns(
        sa.column("id", sa.Uuid()),
        sa.column("inference_provider", sa.String()),
        sa.column("status", sa.String()),
        sa.column("due_at", UTCDateTime()),
        sa.column("started_at", UTCDateTime()),
        sa.column("frame_num", sa.Integer()),
        sa.column("duration_s", sa.Integer()),
        sa.column("movable", sa.Integer()),
    )
    providers = {provider.value: provider for provider in CATALOGUE}
    seconds: dict[tuple[str, int | None, int | None], tuple[float, float]] = {}
    known = estimates.known
    # One fetch of plain tuples: at 100,000 waiting items, row by row costs more than the SQL.
    rows = session.execute(statement).all()
    for item_id, name, status, due_at, started_at, frame_num, duration_s, movable in rows:
        provider = providers.get(name)
        if provider is None:
            continue
        key = (name, frame_num, duration_s)
        if known and (item_id, provider) in known:
            p50, p90 = estimates.seconds(provider, frame_num, duration_s, item_id)
        elif key in seconds:
            p50, p90 = seconds[key]
        else:
            p50, p90 = seconds[key] = estimates.seconds(provider, frame_num, duration_s)
        if status == "pending":
            waiting[provider].append(Waiting(item_id, due_at, p50, p90, bool(movable)))
        else:
            working[provider].append(Working(item_id, started_at or now, p50))
    lanes = {
        provider: lane_of(
            slots=lane_slots(provider, settings, limits, entry.model),
            now=now,
            working=working[provider],
            waiting=waiting[provider],
            ordered=True,
        )
        for provider, entry in CATALOGUE.items()
    }
    caps = Caps(spends=spend(session, now=now))
    if limits is not None:
        caps.runway_left = limits.credits_left(
            paid_ledger_credits(session), unsettled_credits(session)
        )
    return Snapshot(
        now=now,
        lanes=lanes,
        estimates=estimates,
        caps=caps,
        limits=limits,
        pending_wan=len(waiting.get(InferenceProvider.wan_local, [])),
    )
