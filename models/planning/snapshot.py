"""What the routing policy decides from: the lanes of every provider (its items at work and
waiting, replayed on its slots), service-time estimates, what the budgets have left, and
Runway's own limits. A plain value: built from the database in production, on a simulated
clock by `reelroute replay`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from sqlmodel import Session
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models.core.catalogue import CATALOGUE
from reelroute.models.core.enums import POOL_OF, BudgetScope, InferenceProvider, ItemStatus, Pool
from reelroute.models.core.tables import PENDING
from reelroute.models.core.workers import host_of
from reelroute.models.health.breakers import unavailable
from reelroute.models.money.budgets import Spend, spend
from reelroute.models.money.gpu import GpuPrices
from reelroute.models.money.limits import (
    RunwayLimits,
    last_limits,
    paid_ledger_credits,
    unsettled_credits,
)
from reelroute.models.planning.acceptance import Acceptance, preset_name, read_acceptance
from reelroute.models.planning.estimates import DEFAULT_WAN_AREA, Estimates, read_estimates
from reelroute.models.planning.eta import Lane, Slot, Working
from reelroute.models.planning.hosts import live_hosts
from reelroute.models.planning.settings import PlanningConfig
from reelroute.models.planning.tables import GpuHost
from reelroute.models.store.copy import chunks, columns, numbers
from reelroute.models.store.queries.planning import (
    ITEMS_AT_WORK,
    ITEMS_IN_LANES,
    WAITING_PACKED,
    WAITING_SAMPLES,
    WAITING_WIDTHS,
)
from reelroute.models.store.sql import sql


@dataclass
class Caps:
    """Credits the budgets have left, per budget, as decisions use them up."""

    spends: list[Spend] = field(default_factory=list)
    runway_left: int | None = None
    """Runway's own cap: the credit balance and the monthly limit, less what was charged since
    Runway said so and what our unsettled items reserved (`RunwayLimits.credits_left`)."""
    used: dict[uuid.UUID, int] = field(default_factory=dict)
    runway_used: int = 0
    gpu_used: float = 0.0
    """GPU credits the decisions so far expect to spend (routing's own count: nothing is
    reserved for GPU time)."""

    def gpu_left(self) -> float | None:
        """Credits the `gpu` budgets have left for GPU time (None: no such budget)."""
        lefts = [e.left for e in self.spends if e.budget.scope is BudgetScope.gpu]
        return min(lefts) - self.gpu_used if lefts else None

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
    unavailable: dict[InferenceProvider, str] = field(default_factory=dict)
    """Runway models whose breaker is open, with why (routing skips them, their waiting
    auto-routed items move)."""
    wan_full_slots: int | None = None
    """Wan slots of hosts whose preset keeps the model card's quality (None: no host reports
    itself, REELROUTE_GPU_SLOTS are taken as full quality)."""
    wan_full_presets: frozenset[str] = frozenset()
    """The names of the presets the live full-quality hosts run (`full`, `compiled`)."""
    wan_fast_presets: frozenset[str] = frozenset()
    """The names of the presets the other live hosts run (`fast`, `fast-compiled`): where an
    item that does not require full quality may be made."""
    acceptance: Acceptance = field(default_factory=Acceptance)
    """How often each group keeps each option's videos (models.planning.acceptance)."""
    count_redos: bool = False
    """REELROUTE_ROUTING_COUNT_REDOS: the deadline policy weighs a redo's chance."""
    wan_second_credits: float = 0.0
    """What a second of Wan's reference service time adds to the bill, in credits: 0 for
    always-on GPU hosts; with per-second billing, the price of the live hosts' GPUs (averaged
    over their slots, each at its speed: a faster slot takes fewer seconds)."""

    def wan_credits(self, frame_num: int | None, duration_s: int | None) -> float:
        """What one Wan video of this length is expected to add to the bill (GPU time)."""
        if not self.wan_second_credits:
            return 0.0
        p50, _ = self.estimates.seconds(InferenceProvider.wan_local, frame_num, duration_s)
        return p50 * self.wan_second_credits

    def lane(self, provider: InferenceProvider) -> Lane:
        """The lane of `provider`."""
        return self.lanes[provider]


def lane_slots(
    provider: InferenceProvider, settings: PlanningConfig, limits: RunwayLimits | None, model: str
) -> int:
    """How many items of `provider` run at once: the GPUs for Wan; Runway's per-model
    concurrency when known (never more than the cloud pool's slots), else the pool's slots."""
    if POOL_OF[provider] is Pool.gpu:
        return settings.dispatch.gpu_slots
    if limits is not None:
        concurrent = limits.model(model).max_concurrent
        if concurrent is not None:
            return max(1, min(concurrent, settings.dispatch.cloud_slots))
    return settings.dispatch.cloud_slots


def wan_presets(hosts: list[GpuHost]) -> tuple[frozenset[str], frozenset[str]]:
    """The preset names the live GPU hosts run: (those of full-quality hosts, the others)."""
    full = frozenset(preset_name(host.preset) for host in hosts if host.full_quality)
    return full, frozenset(preset_name(host.preset) for host in hosts if not host.full_quality)


def wan_slots(hosts: list[GpuHost], estimates: Estimates) -> tuple[list[Slot] | None, int | None]:
    """Wan's slots: one per GPU of each GPU host seen lately, at its (preset, GPU class)'s
    speed, and how many of them run a full-quality preset; (None, None) when no host reports
    itself (REELROUTE_GPU_SLOTS slots, the reference speed)."""
    slots = [
        Slot(host.name, estimates.wan_speed(host.preset, host.gpu_class))
        for host in hosts
        for _ in range(host.slots)
    ]
    if not slots:
        return None, None
    return slots, sum(host.slots for host in hosts if host.full_quality)


def wan_second_credits(
    hosts: list[GpuHost], settings: PlanningConfig, estimates: Estimates
) -> float:
    """Snapshot.wan_second_credits: 0 unless GPUs bill per second; else the live hosts' price
    per second of reference work, averaged over their slots (the `*` price when none reports)."""
    prices = GpuPrices.of(settings)
    if not prices.per_second_billing or prices.free:
        return 0.0
    weighted = [
        (
            host.slots,
            estimates.wan_speed(host.preset, host.gpu_class)
            * prices.marginal_credits_per_second(host.gpu_class),
        )
        for host in hosts
        if host.slots > 0
    ]
    if not weighted:
        return prices.marginal_credits_per_second(None)
    return sum(slots * cost for slots, cost in weighted) / sum(slots for slots, _ in weighted)


def read_service_times(session: Session, settings: PlanningConfig) -> Estimates:
    """Every provider's service times, from history or the catalogue."""
    return read_estimates(
        session,
        defaults={provider: entry.minutes for provider, entry in CATALOGUE.items()},
        pixels=settings.wan.max_area or DEFAULT_WAN_AREA,
    )


@dataclass
class _Queue:
    """One lane's waiting items as columns, in the dispatcher's order."""

    keys: list[bytes] = field(default_factory=list)
    due_s: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p90: list[float] = field(default_factory=list)
    movable: list[bool] = field(default_factory=list)


Lanes = tuple[dict[InferenceProvider, list[Working]], dict[InferenceProvider, _Queue]]


def _read_rows(session: Session, estimates: Estimates, now: datetime) -> Lanes:
    """Every item at work or waiting, row by row (SQLite; `reelroute replay`'s known times)."""
    working: dict[InferenceProvider, list[Working]] = {p: [] for p in CATALOGUE}
    waiting: dict[InferenceProvider, _Queue] = {p: _Queue() for p in CATALOGUE}
    statement = sql(ITEMS_IN_LANES).columns(
        sa.column("id", sa.Uuid()),
        sa.column("inference_provider", sa.String()),
        sa.column("status", sa.String()),
        sa.column("due_at", UTCDateTime()),
        sa.column("started_at", UTCDateTime()),
        sa.column("frame_num", sa.Integer()),
        sa.column("duration_s", sa.Integer()),
        sa.column("movable", sa.Integer()),
        sa.column("worker_id", sa.String()),
    )
    providers = {provider.value: provider for provider in CATALOGUE}
    seconds: dict[tuple[str, int | None, int | None], tuple[float, float]] = {}
    known = estimates.known
    rows = session.execute(statement).all()
    for item_id, name, status, due_at, started_at, frame_num, duration_s, movable, holder in rows:
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
        if status == ItemStatus.pending:
            queue = waiting[provider]
            queue.keys.append(item_id.bytes)
            queue.due_s.append((due_at - now).total_seconds())
            queue.p50.append(p50)
            queue.p90.append(p90)
            queue.movable.append(bool(movable))
        else:
            working[provider].append(Working(item_id, started_at or now, p50, host_of(holder)))
    return working, waiting


def _seconds(estimates: Estimates, provider: InferenceProvider, kind: int) -> tuple[float, float]:
    """The service times of a kind of item, packed as WAITING_PACKED packs it."""
    frames, seconds = kind >> 24, (kind >> 1) & 0x7FFFFF
    return estimates.seconds(
        provider, frames - 1 if frames else None, seconds - 1 if seconds else None
    )


@lru_cache(maxsize=1)
def _waiting_packed() -> str:
    places = " ".join(
        f"WHEN '{provider.value}' THEN {place}" for place, provider in enumerate(CATALOGUE, 1)
    )
    return WAITING_PACKED.format(providers=places, pending=PENDING)


POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _read_columns(session: Session, estimates: Estimates, now: datetime) -> Lanes:
    """PostgreSQL: the items at work row by row (a few per slot), the waiting ones packed into
    one value, in the dispatcher's order (models.store.copy)."""
    working: dict[InferenceProvider, list[Working]] = {p: [] for p in CATALOGUE}
    waiting: dict[InferenceProvider, _Queue] = {p: _Queue() for p in CATALOGUE}
    providers = list(CATALOGUE)
    statement = sql(ITEMS_AT_WORK).columns(
        sa.column("id", sa.Uuid()),
        sa.column("inference_provider", sa.String()),
        sa.column("started_at", UTCDateTime()),
        sa.column("frame_num", sa.Integer()),
        sa.column("duration_s", sa.Integer()),
        sa.column("worker_id", sa.String()),
    )
    by_name = {provider.value: provider for provider in providers}
    for item_id, name, started_at, frame_num, duration_s, holder in session.execute(statement):
        if (provider := by_name.get(name)) is not None:
            p50, _ = estimates.seconds(provider, frame_num, duration_s)
            working[provider].append(Working(item_id, started_at or now, p50, host_of(holder)))
    session.execute(sa.text("SET LOCAL work_mem = '64MB'"))  # sort 100,000 items in memory
    packed = session.execute(sa.text(_waiting_packed())).scalar_one()
    _, (ids, dues, kinds, places) = columns(packed, WAITING_WIDTHS)
    keys, kind_of, place_of = chunks(ids, 16), numbers(kinds, "q"), numbers(places, "h")
    origin = (now - POSTGRES_EPOCH) // timedelta(microseconds=1)
    due_s = [(due - origin) / 1e6 for due in numbers(dues, "q")]
    present = set(place_of) - {0}  # 0: a provider this version does not know
    for place in present:
        provider = providers[place - 1]
        queue = waiting[provider]
        if len(present) == 1 and 0 not in place_of:  # every item is one provider's: as read
            queue.keys, queue.due_s, kinds_here = keys, due_s, kind_of
        else:
            chosen = [i for i, at in enumerate(place_of) if at == place]
            queue.keys = [keys[i] for i in chosen]
            queue.due_s = [due_s[i] for i in chosen]
            kinds_here = [kind_of[i] for i in chosen]
        times = {kind: _seconds(estimates, provider, kind) for kind in set(kinds_here)}
        queue.p50 = [times[kind][0] for kind in kinds_here]
        queue.p90 = [times[kind][1] for kind in kinds_here]
        queue.movable = [bool(kind & 1) for kind in kinds_here]
    return working, waiting


def build_snapshot(
    session: Session,
    settings: PlanningConfig,
    *,
    now: datetime,
    estimates: Estimates | None = None,
    packed: bool = True,
) -> Snapshot:
    """The snapshot at `now` from the database (`estimates` replaces the measured service
    times: `reelroute replay` feeds the true ones for its hindsight line). On PostgreSQL the
    waiting items come packed into one value (`packed`; False: row by row, as on SQLite, which
    bench.routing compares)."""
    estimates = estimates or read_service_times(session, settings)
    limits = last_limits(session)
    # At 100,000 waiting items, making an object per value costs ten times the SQL: PostgreSQL
    # sends the waiting items as columns.
    postgres = session.connection().dialect.name == "postgresql"
    fast = packed and postgres and not estimates.known
    working, waiting = (_read_columns if fast else _read_rows)(session, estimates, now)
    hosts = live_hosts(session, now=now)  # the GPU hosts seen lately, read once
    gpu_slots, full_slots = wan_slots(hosts, estimates)
    full_presets, fast_presets = wan_presets(hosts)
    lanes = {
        provider: Lane.of_columns(
            slots=lane_slots(provider, settings, limits, entry.model),
            now=now,
            working=working[provider],
            keys=waiting[provider].keys,
            due_s=waiting[provider].due_s,
            p50=waiting[provider].p50,
            p90=waiting[provider].p90,
            movable=waiting[provider].movable,
            hosts=gpu_slots if POOL_OF[provider] is Pool.gpu else None,
        )
        for provider, entry in CATALOGUE.items()
    }
    samples = frozenset(
        item_id.bytes
        for (item_id,) in session.execute(sql(WAITING_SAMPLES).columns(sa.column("id", sa.Uuid())))
    )
    for lane in lanes.values():
        lane.samples = samples
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
        pending_wan=len(waiting[InferenceProvider.wan_local].keys),
        wan_full_slots=full_slots,
        wan_full_presets=full_presets,
        wan_fast_presets=fast_presets,
        unavailable=unavailable(session, now),
        acceptance=read_acceptance(session, settings),
        count_redos=settings.routing.count_redos,
        wan_second_credits=wan_second_credits(hosts, settings, estimates),
    )
