"""The GPUs the waiting Wan work wants (models.planning.demand): `reelroute_gpu_hosts_wanted`."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from reelroute.models.core.enums import InferenceProvider
from reelroute.models.core.tables import utcnow
from reelroute.models.planning.demand import demand_of, slots_wanted, store_demand
from reelroute.models.planning.eta import Waiting, Working
from reelroute.models.planning.hosts import report_host
from reelroute.models.planning.snapshot import build_snapshot
from reelroute.models.reporting.metrics import read_metrics
from tests.models.reporting.test_metrics import values

WAN = InferenceProvider.wan_local
H100 = "NVIDIA H100 80GB HBM3"


def test_the_gpus_wanted_follow_the_waiting_work_and_its_due_times(session, settings):
    now = utcnow()
    snapshot = build_snapshot(session, settings, now=now)
    assert slots_wanted(snapshot) == (0, 0)  # nothing waits: scale to zero
    lane = snapshot.lane(WAN)
    # ten 30-minute videos due in an hour: five GPUs make them in time, four do not
    for _ in range(10):
        lane.add(Waiting(uuid.uuid4(), now + timedelta(hours=1), 1800, 2400))
    assert slots_wanted(snapshot) == (5, 10)
    # one more due in 15 minutes wants a slot of its own at once (it cannot be on time)
    lane.add(Waiting(uuid.uuid4(), now + timedelta(minutes=15), 1800, 2400))
    assert slots_wanted(snapshot)[0] >= 6
    report_host(session, name="gpu-a", gpu_class=H100, preset="full@1", slots=4, now=now)
    demand = demand_of(session, snapshot)
    assert demand.hosts == -(-demand.slots // 4)  # hosts of four GPUs each
    store_demand(session, demand, now)
    session.commit()
    found = values(read_metrics(session, now=now + timedelta(seconds=5)))
    assert found["reelroute_gpu_hosts_wanted"] == {(): float(demand.hosts)}
    assert found["reelroute_gpu_slots_wanted"] == {(): float(demand.slots)}
    assert found["reelroute_gpu_demand_age_seconds"] == {(): pytest.approx(5)}


def test_videos_being_made_keep_their_gpus(session, settings):
    now = utcnow()
    snapshot = build_snapshot(session, settings, now=now)
    lane = snapshot.lane(WAN)
    for _ in range(3):  # three videos at work, nothing waiting: scaling below 3 would lose one
        lane.working.append(Working(uuid.uuid4(), now - timedelta(minutes=5), 1800))
    assert slots_wanted(snapshot) == (3, 3)
