"""How many GPUs the waiting Wan work wants: `reelroute_gpu_hosts_wanted`, a target an
autoscaler (KEDA, a cloud's instance group) can follow.

The dispatcher's planner computes it at each replan from the same snapshot that gives the ETAs:
Wan's items at work and waiting, their due times, and the measured speed of the live GPU slots.
The count is the fewest slots that finish every waiting item by its due time when the work is
shared out as a fluid, earliest due first (a lower bound the real queue meets closely when the
items are many and short against their deadlines):

    slots = max over k of  (work due by the k-th due time) / (time until it),

never fewer than the items at work (a host that stops mid-video throws the video away), and 0
when nothing waits or runs. The planner stores it in `gpu_demand` (one row) for the metrics to
read; how many GPUs pay for themselves over a day is `reelroute replay --plan`'s question.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from reelroute.models.core.enums import InferenceProvider
from reelroute.models.core.tables import utcnow
from reelroute.models.planning.hosts import live_hosts
from reelroute.models.planning.snapshot import Snapshot
from reelroute.models.planning.tables import GpuDemand

MIN_HORIZON_S = 60.0
"""An item due within a minute (or overdue) is counted as wanting a slot of its own now."""


@dataclass(frozen=True)
class Demand:
    """GPU slots and hosts the Wan work wants now."""

    slots: int
    hosts: int
    waiting: int
    """Wan items waiting or at work."""


def slots_wanted(snapshot: Snapshot) -> tuple[int, int]:
    """(slots wanted, Wan items waiting or at work) for the snapshot's Wan lane."""
    lane = snapshot.lane(InferenceProvider.wan_local)
    speeds = lane.speeds
    speed = sum(speeds) / len(speeds) if speeds else 1.0
    working = len(lane.working)
    ends = sorted(lane.end_of(work) for work in lane.working)
    wanted = float(working)
    load = 0.0
    for due_s, p50 in zip(lane.due_s, lane.p50, strict=True):  # earliest due first
        seconds = p50 * speed
        load += seconds
        horizon = max(due_s, MIN_HORIZON_S, seconds)
        # the slots busy with work at hand until it ends, within the horizon
        busy = sum(min(end, horizon) for end in ends)
        wanted = max(wanted, (load + busy) / horizon)
    return math.ceil(wanted - 1e-9), working + len(lane.due_s)


def demand_of(session: Session, snapshot: Snapshot) -> Demand:
    """The snapshot's demand, in hosts of the live hosts' usual size (their median GPUs; one
    GPU a host when none reports itself)."""
    slots, waiting = slots_wanted(snapshot)
    sizes = sorted(host.slots for host in live_hosts(session, now=snapshot.now) if host.slots)
    per_host = sizes[len(sizes) // 2] if sizes else 1
    return Demand(slots, math.ceil(slots / per_host), waiting)


def store_demand(session: Session, demand: Demand, now: datetime | None = None) -> None:
    """Keep `demand` as the latest (the one row of gpu_demand)."""
    row = session.get(GpuDemand, 1) or GpuDemand(
        id=1, slots=0, hosts=0, waiting=0, computed_at=now or utcnow()
    )
    row.slots, row.hosts, row.waiting = demand.slots, demand.hosts, demand.waiting
    row.computed_at = now or utcnow()
    session.add(row)
    session.flush()
