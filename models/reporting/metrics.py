"""What `GET /metrics` says, read from the database at each scrape, so that every process and
host agrees and a restart loses nothing. Every figure comes from a ledger or a small table
(the count ledger, the writers' tallies of failures and latencies, budgets, Runway's last
answer, breakers, GPU hosts, the loops' heartbeats and leaders) or from an index range
of rows that stay few (the head of each queue and of the outbox): never a count of items,
moves or deliveries (the planner's late counts, the move and delivery ledgers), so a scrape
costs about the same at 10M items as at 1,000.

Names follow Prometheus's conventions (`reelroute_…`, base units, `_total` for counters,
`_seconds`); labels stay bounded: provider, status, model, breaker, GPU host, budget. The web
app renders them in the Prometheus text format (ui.api.metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models.core.enums import BreakerState, DeliveryStatus, ItemStatus, Pool
from reelroute.models.core.tables import PENDING, POOL_PREDICATE, utcnow
from reelroute.models.health.breakers import label
from reelroute.models.health.leadership import read_roles
from reelroute.models.health.loops import read_beats
from reelroute.models.health.tables import Breaker
from reelroute.models.money.budgets import describe, spend
from reelroute.models.money.limits import last_limits
from reelroute.models.planning.hosts import ALIVE_WITHIN
from reelroute.models.planning.tables import GpuDemand, GpuHost
from reelroute.models.reporting.statistics import provider_stats
from reelroute.models.store.queries.reporting import OUTBOX_HEAD, QUEUE_HEAD
from reelroute.models.store.sql import sql
from reelroute.models.store.tallies import (
    DELIVERY_OUTCOMES,
    delivery_counts,
    delivery_tallies,
    failure_tallies,
    gpu_tallies,
    latency_histograms,
)

Kind = Literal["gauge", "counter"]

BREAKER_STATES = {BreakerState.closed: 0, BreakerState.half_open: 1, BreakerState.open: 2}


@dataclass
class Family:
    """One metric: its name (without `_total` for a counter), kind, help and samples (labels,
    value)."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def add(self, value: float, *labels: str) -> None:
        """One sample, its label values in the order of `labels`."""
        self.samples.append((labels, float(value)))


@dataclass
class HistogramFamily:
    """One histogram metric: per label values, its cumulative buckets (upper bound, count; the
    last is +Inf) and the sum of the observations."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    series: list[tuple[tuple[str, ...], list[tuple[float, int]], float]] = field(
        default_factory=list
    )


def _tallies(session: Session) -> list[Family | HistogramFamily]:
    failures = Family(
        "reelroute_failed_attempts",
        "counter",
        "Failed attempts by provider and failure class (input, provider_transient, "
        "provider_exhausted, provider_config, gpu_host, infra, unknown).",
        ("provider", "failure_class"),
    )
    for (provider, kind), count in sorted(failure_tallies(session).items()):
        failures.add(count, provider, kind)
    histograms = {
        "created": HistogramFamily(
            "reelroute_created_to_completed_seconds",
            "Seconds from an item's creation to its video, per provider.",
            ("provider",),
        ),
        "claimed": HistogramFamily(
            "reelroute_claimed_to_completed_seconds",
            "Seconds from the claim of the attempt that made the video to the video, per provider.",
            ("provider",),
        ),
    }
    for (provider, measure), histogram in sorted(latency_histograms(session).items()):
        if measure in histograms:
            histograms[measure].series.append(
                ((provider,), histogram.buckets, histogram.sum_seconds)
            )
    return [failures, *histograms.values()]


def _items(session: Session) -> list[Family]:
    items = Family(
        "reelroute_items", "gauge", "Items by provider and status.", ("provider", "status")
    )
    spent = Family(
        "reelroute_spent_credits",
        "counter",
        "Runway credits spent on items, by provider (1 credit = $0.01).",
        ("provider",),
    )
    late = Family(
        "reelroute_items_predicted_late",
        "gauge",
        "Waiting items whose p90 finish is past their due time, as the dispatcher last "
        "replayed the queues.",
        ("provider",),
    )
    for provider, stats in provider_stats(session).root.items():
        for status in ItemStatus:
            items.add(getattr(stats, status.value), provider.value, status.value)
        spent.add(stats.credits, provider.value)
        late.add(stats.predicted_late, provider.value)
    return [items, spent, late]


def _budgets(session: Session, now: datetime) -> list[Family]:
    cap = Family(
        "reelroute_budget_cap_credits",
        "gauge",
        "Each budget's cap in its current period.",
        ("budget", "scope", "period"),
    )
    used = Family(
        "reelroute_budget_used_credits",
        "gauge",
        "Each budget's credits spent and reserved in its current period.",
        ("budget", "scope", "period"),
    )
    for entry in spend(session, now=now):
        budget = entry.budget
        names = (describe(budget), budget.scope.value, budget.period.value)
        cap.add(budget.cap_credits, *names)
        used.add(entry.spent + entry.reserved, *names)
    return [cap, used]


def _runway(session: Session, now: datetime) -> list[Family]:
    concurrency = Family(
        "reelroute_runway_concurrency_limit",
        "gauge",
        "Generations Runway runs at once per model, as it last said.",
        ("model",),
    )
    daily = Family(
        "reelroute_runway_daily_generations_left",
        "gauge",
        "Generations Runway still allows in the rolling day per model, as it last said.",
        ("model",),
    )
    balance = Family(
        "reelroute_runway_credit_balance", "gauge", "Runway's credit balance, as it last said."
    )
    age = Family(
        "reelroute_runway_limits_age_seconds", "gauge", "Seconds since Runway's limits were read."
    )
    limits = last_limits(session)
    if limits is not None:
        for model, entry in sorted(limits.models.items()):
            if entry.max_concurrent is not None:
                concurrency.add(entry.max_concurrent, model)
            if entry.daily_left is not None:
                daily.add(entry.daily_left, model)
        balance.add(limits.credit_balance)
        age.add((now - limits.fetched_at).total_seconds())
    return [concurrency, daily, balance, age]


def _breakers(session: Session, now: datetime) -> list[Family]:
    state = Family(
        "reelroute_breaker_state",
        "gauge",
        "Circuit breaker per Runway model, GPU host and pool: 0 closed, 1 half-open, 2 open.",
        ("breaker", "name"),
    )
    opened = Family(
        "reelroute_breaker_open_seconds",
        "gauge",
        "Seconds since an open or half-open breaker opened (0 while closed).",
        ("breaker", "name"),
    )
    for breaker in session.exec(select(Breaker).order_by(col(Breaker.name))).all():
        names = (breaker.name, label(breaker.name))
        state.add(BREAKER_STATES[breaker.state], *names)
        since = breaker.opened_at if breaker.state is not BreakerState.closed else None
        opened.add((now - since).total_seconds() if since is not None else 0.0, *names)
    return [state, opened]


def _hosts(session: Session, now: datetime) -> list[Family]:
    up = Family(
        "reelroute_gpu_host_up",
        "gauge",
        f"1 while a GPU host reports itself (within {ALIVE_WITHIN.seconds} s).",
        ("host",),
    )
    heartbeat = Family(
        "reelroute_gpu_host_heartbeat_age_seconds",
        "gauge",
        "Seconds since a GPU host last reported itself.",
        ("host",),
    )
    slots = Family(
        "reelroute_gpu_host_slots", "gauge", "Pipeline processes per GPU host.", ("host",)
    )
    loads = Family(
        "reelroute_gpu_host_pipeline_loads",
        "counter",
        "Pipeline loads per GPU host since it started.",
        ("host",),
    )
    videos = Family(
        "reelroute_gpu_host_videos",
        "counter",
        "Videos made per GPU host since it started.",
        ("host",),
    )
    for host in session.exec(select(GpuHost).order_by(col(GpuHost.name))).all():
        seen = (now - host.seen_at).total_seconds()
        up.add(1.0 if seen <= ALIVE_WITHIN.total_seconds() else 0.0, host.name)
        heartbeat.add(seen, host.name)
        slots.add(host.slots, host.name)
        loads.add(host.loads, host.name)
        videos.add(host.videos, host.name)
    return [up, heartbeat, slots, loads, videos]


def _gpu_spend(session: Session, now: datetime) -> list[Family]:
    seconds = Family(
        "reelroute_gpu_seconds",
        "counter",
        "GPU seconds of the Wan attempts that made a video (claim to video), per GPU class.",
        ("gpu_class",),
    )
    dollars = Family(
        "reelroute_gpu_spent_dollars",
        "counter",
        "What those GPU seconds cost at REELROUTE_GPU_HOUR_COST, per GPU class: Wan's share "
        "of the spend beside Runway's reelroute_spent_credits_total.",
        ("gpu_class",),
    )
    videos = Family(
        "reelroute_gpu_videos",
        "counter",
        "Wan attempts that made a video, per GPU class.",
        ("gpu_class",),
    )
    wanted = Family(
        "reelroute_gpu_hosts_wanted",
        "gauge",
        "GPU hosts the waiting Wan work wants to meet its due times at the measured speeds, as "
        "the dispatcher last computed (an autoscaler's target: docs/operations.md).",
    )
    slots = Family(
        "reelroute_gpu_slots_wanted",
        "gauge",
        "GPUs (pipeline slots) the waiting Wan work wants, as reelroute_gpu_hosts_wanted.",
    )
    age = Family(
        "reelroute_gpu_demand_age_seconds",
        "gauge",
        "Seconds since the dispatcher last computed the GPUs wanted.",
    )
    for tally in sorted(gpu_tallies(session), key=lambda t: t.gpu_class):
        seconds.add(tally.seconds, tally.gpu_class)
        dollars.add(tally.dollars, tally.gpu_class)
        videos.add(tally.videos, tally.gpu_class)
    demand = session.get(GpuDemand, 1)
    if demand is not None:
        wanted.add(demand.hosts)
        slots.add(demand.slots)
        age.add(max(0.0, (now - demand.computed_at).total_seconds()))
    return [seconds, dollars, videos, wanted, slots, age]


def _webhooks(session: Session, now: datetime) -> list[Family]:
    deliveries = Family(
        "reelroute_webhook_deliveries",
        "gauge",
        "Webhook deliveries waiting to be sent (pending) and given up (dead).",
        ("status",),
    )
    ledger = delivery_counts(session)  # kept by the table's triggers
    for status in (DeliveryStatus.pending, DeliveryStatus.dead):
        deliveries.add(ledger.get(status.value, 0), status.value)
    lag = Family(
        "reelroute_outbox_lag_seconds",
        "gauge",
        "Age of the oldest item event not yet turned into webhook deliveries (0: none waits).",
    )
    oldest = session.execute(
        sql(OUTBOX_HEAD).columns(sa.column("created_at", UTCDateTime()))
    ).scalar_one_or_none()
    lag.add(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
    attempts = Family(
        "reelroute_webhook_attempts",
        "counter",
        "Webhook delivery attempts by outcome: delivered (2xx), failed (to be tried again), "
        "dead (given up).",
        ("outcome",),
    )
    counted = delivery_tallies(session)
    for outcome in DELIVERY_OUTCOMES:
        attempts.add(counted.get(outcome, 0), outcome)
    return [deliveries, attempts, lag]


def _queues(session: Session, now: datetime) -> list[Family]:
    """The head of each pool's queue (the item the dispatcher sends next: earliest due, then
    oldest), read through the pool's claim index: one row, at any size."""
    overdue = Family(
        "reelroute_queue_head_overdue_seconds",
        "gauge",
        "Seconds the next waiting item of a pool is past its due time (negative: still due "
        "later); no sample while the pool's queue is empty.",
        ("pool",),
    )
    age = Family(
        "reelroute_queue_head_age_seconds",
        "gauge",
        "Seconds since the next waiting item of a pool was created.",
        ("pool",),
    )
    for pool in Pool:
        statement = sql(QUEUE_HEAD.format(pending=PENDING, pool=POOL_PREDICATE[pool])).columns(
            sa.column("due_at", UTCDateTime()), sa.column("created_at", UTCDateTime())
        )
        head = session.execute(statement).first()
        if head is not None:
            due_at, created_at = head
            overdue.add((now - due_at).total_seconds(), pool.value)
            age.add((now - created_at).total_seconds(), pool.value)
    return [overdue, age]


def _loops(session: Session, now: datetime) -> list[Family]:
    age = Family(
        "reelroute_loop_last_pass_age_seconds",
        "gauge",
        "Seconds since a background loop (dispatcher, reconciler, webhooks) last recorded a pass.",
        ("loop", "host"),
    )
    took = Family(
        "reelroute_loop_pass_duration_seconds",
        "gauge",
        "How long a background loop's last recorded pass took.",
        ("loop", "host"),
    )
    ok = Family(
        "reelroute_loop_last_pass_ok",
        "gauge",
        "1 when a background loop's last recorded pass went through, 0 when it failed.",
        ("loop", "host"),
    )
    for row in read_beats(session):
        names = (row.name, row.host)
        age.add((now - row.beat_at).total_seconds(), *names)
        took.add(row.took_seconds, *names)
        ok.add(1.0 if row.ok else 0.0, *names)
    return [age, took, ok, *_leaders(session, now)]


def _leaders(session: Session, now: datetime) -> list[Family]:
    members = Family(
        "reelroute_loop_members",
        "gauge",
        "Processes seen in the last minute that run a led loop (dispatcher, webhooks), by state: "
        "leader (1 when all is well, 0 while nobody leads) and standby.",
        ("loop", "state"),
    )
    term = Family(
        "reelroute_loop_leader_seconds",
        "gauge",
        "How long the current leader of a led loop has led; no sample while nobody leads.",
        ("loop",),
    )
    for role in read_roles(session, now=now):
        members.add(1 if role.leader else 0, role.role, "leader")
        members.add(role.standbys, role.role, "standby")
        if role.leading_since is not None:
            term.add(max(0.0, (now - role.leading_since).total_seconds()), role.role)
    return [members, term]


def read_metrics(
    session: Session, *, now: datetime | None = None
) -> list[Family | HistogramFamily]:
    """Every metric, as the database says now."""
    now = now or utcnow()
    return [
        *_items(session),
        *_tallies(session),
        *_queues(session, now),
        *_budgets(session, now),
        *_runway(session, now),
        *_breakers(session, now),
        *_hosts(session, now),
        *_gpu_spend(session, now),
        *_webhooks(session, now),
        *_loops(session, now),
    ]
