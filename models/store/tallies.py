"""Counters kept by the writers, in the same transaction as the change they count, so that the
metrics read a few rows at any size and a crash can neither lose a count nor invent one:

- failed attempts per provider and failure class (`failure_tallies`);
- webhook delivery attempts per outcome (`delivery_tallies`);
- videos kept and made again per group, provider and Wan preset (`verdict_tallies`);
- Wan videos, GPU seconds and their cost per GPU class (`gpu_tallies`);
- a latency histogram per provider and measure (`latency_buckets`): `created` (created to
  completed: what a caller waits) and `claimed` (the attempt that made the video, claimed to
  completed), in buckets that fit jobs of seconds to hours.

One upsert per count (`INSERT … ON CONFLICT DO UPDATE`, on both databases).
"""

from __future__ import annotations

import bisect
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, select

from reelroute.models.core.enums import DeliveryOutcome
from reelroute.models.store.tables import (
    DeliveryStatusCount,
    DeliveryTally,
    FailureTally,
    GpuTally,
    LatencyBucket,
    MoveTally,
    VerdictTally,
)

LATENCY_BUCKETS = (
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 5400.0,
    7200.0, 14400.0, 28800.0, 86400.0,
)  # fmt: skip
"""Upper bounds in seconds (then +Inf): a Runway video takes a few minutes, a Wan video tens of
minutes, and a queue can hold one for hours."""
MEASURES = ("created", "claimed")

COUNT_FAILURE = """
INSERT INTO failure_tallies (provider, failure_class, count) VALUES (:provider, :kind, 1)
ON CONFLICT (provider, failure_class) DO UPDATE SET count = failure_tallies.count + 1
"""

DELIVERY_OUTCOMES = tuple(DeliveryOutcome)
COUNT_DELIVERIES = """
INSERT INTO delivery_tallies (outcome, count) VALUES (:outcome, :times)
ON CONFLICT (outcome) DO UPDATE SET count = delivery_tallies.count + :times
"""

COUNT_VERDICT = """
INSERT INTO verdict_tallies (group_key, provider, wan_preset, accepted, rejected)
VALUES (:group_key, :provider, :wan_preset, :accepted, :rejected)
ON CONFLICT (group_key, provider, wan_preset) DO UPDATE
SET accepted = verdict_tallies.accepted + :accepted, rejected = verdict_tallies.rejected + :rejected
"""

OBSERVE = """
INSERT INTO latency_buckets (provider, measure, le, count, sum_seconds)
VALUES (:provider, :measure, :le, 1, :seconds)
ON CONFLICT (provider, measure, le) DO UPDATE
SET count = latency_buckets.count + 1, sum_seconds = latency_buckets.sum_seconds + :seconds
"""


def bucket_of(seconds: float) -> str:
    """The label of the bucket a latency falls in (its upper bound, or `inf`)."""
    index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
    return f"{LATENCY_BUCKETS[index]:g}" if index < len(LATENCY_BUCKETS) else "inf"


def count_failure(session: Session, *, provider: str, failure_class: str, times: int = 1) -> None:
    """Count `times` failed attempts of `provider` in `failure_class`."""
    for _ in range(times):
        session.execute(sa.text(COUNT_FAILURE), {"provider": provider, "kind": failure_class})


def count_deliveries(session: Session, outcome: DeliveryOutcome, times: int = 1) -> None:
    """Count `times` webhook delivery attempts that ended in `outcome`."""
    outcome = DeliveryOutcome(outcome)  # a bare string is refused with the outcomes named
    if times > 0:
        session.execute(sa.text(COUNT_DELIVERIES), {"outcome": outcome.value, "times": times})


def delivery_tallies(session: Session) -> dict[str, int]:
    """Outcome -> webhook delivery attempts."""
    return {row.outcome: row.count for row in session.exec(select(DeliveryTally)).all()}


def group_key(group_id: uuid.UUID | None) -> str:
    """A group's key in verdict_tallies: its id as 32 hex digits ('' for no group)."""
    return group_id.hex if group_id is not None else ""


def count_verdict(
    session: Session,
    *,
    group_id: uuid.UUID | None,
    provider: str,
    wan_preset: str | None,
    accepted: bool,
) -> None:
    """Count one video of `provider` (and `wan_preset`) in `group_id`: kept, or made again."""
    session.execute(
        sa.text(COUNT_VERDICT),
        {
            "group_key": group_key(group_id),
            "provider": provider,
            "wan_preset": wan_preset or "",
            "accepted": int(accepted),
            "rejected": int(not accepted),
        },
    )


def verdict_tallies(session: Session) -> list[VerdictTally]:
    """Every (group, provider, preset)'s videos kept and made again."""
    return list(session.exec(select(VerdictTally)).all())


COUNT_GPU = """
INSERT INTO gpu_tallies (gpu_class, videos, seconds, dollars)
VALUES (:gpu_class, 1, :seconds, :dollars)
ON CONFLICT (gpu_class) DO UPDATE SET videos = gpu_tallies.videos + 1,
    seconds = gpu_tallies.seconds + :seconds, dollars = gpu_tallies.dollars + :dollars
"""


def count_gpu_time(session: Session, *, gpu_class: str, seconds: float, dollars: float) -> None:
    """Count one Wan video of `gpu_class` that took `seconds` of a GPU costing `dollars`."""
    session.execute(
        sa.text(COUNT_GPU), {"gpu_class": gpu_class, "seconds": seconds, "dollars": dollars}
    )


def gpu_tallies(session: Session) -> list[GpuTally]:
    """Every GPU class's Wan videos, GPU seconds and their cost."""
    return list(session.exec(select(GpuTally)).all())


def observe_latency(session: Session, *, provider: str, measure: str, seconds: float) -> None:
    """Count one completion of `provider` that took `seconds` by `measure`."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; one of {', '.join(MEASURES)}")
    seconds = max(0.0, seconds)
    session.execute(
        sa.text(OBSERVE),
        {"provider": provider, "measure": measure, "le": bucket_of(seconds), "seconds": seconds},
    )


def failure_tallies(session: Session) -> dict[tuple[str, str], int]:
    """(provider, failure class) -> failed attempts."""
    rows = session.exec(select(FailureTally)).all()
    return {(row.provider, row.failure_class): row.count for row in rows}


@dataclass
class Histogram:
    """One provider's and measure's histogram: cumulative counts per upper bound (the last is
    +Inf), and the sum of the seconds."""

    buckets: list[tuple[float, int]] = field(default_factory=list)
    sum_seconds: float = 0.0

    @property
    def count(self) -> int:
        """Completions observed."""
        return self.buckets[-1][1] if self.buckets else 0


def latency_histograms(session: Session) -> dict[tuple[str, str], Histogram]:
    """(provider, measure) -> its histogram, every bucket present (cumulative, as Prometheus
    wants them)."""
    counts: dict[tuple[str, str], dict[str, tuple[int, float]]] = {}
    for row in session.exec(select(LatencyBucket)).all():
        counts.setdefault((row.provider, row.measure), {})[row.le] = (row.count, row.sum_seconds)
    found = {}
    for key, per_bucket in counts.items():
        histogram = Histogram(sum_seconds=sum(total for _, total in per_bucket.values()))
        running = 0
        for bound in [*LATENCY_BUCKETS, float("inf")]:
            label = "inf" if bound == float("inf") else f"{bound:g}"
            running += per_bucket.get(label, (0, 0.0))[0]
            histogram.buckets.append((bound, running))
        found[key] = histogram
    return found


COUNT_MOVE = """
INSERT INTO move_tallies (from_provider, to_provider, moves) VALUES (:origin, :to, 1)
ON CONFLICT (from_provider, to_provider) DO UPDATE SET moves = move_tallies.moves + 1
"""


def count_move(session: Session, origin: str, to: str) -> None:
    """One waiting item moved from provider `origin` to `to` (by the planner)."""
    session.execute(sa.text(COUNT_MOVE), {"origin": origin, "to": to})


def move_tallies(session: Session) -> dict[tuple[str, str], int]:
    """(from provider, to provider) -> moves made."""
    rows = session.exec(select(MoveTally)).all()
    return {(row.from_provider, row.to_provider): row.moves for row in rows}


def delivery_counts(session: Session) -> dict[str, int]:
    """Webhook deliveries per status, from the ledger its triggers keep."""
    rows = session.exec(select(DeliveryStatusCount)).all()
    return {row.status: row.deliveries for row in rows}
