"""Service-time estimates per Wan preset and GPU class: a preset change shows on the items that
host makes and in the estimates, and the ETA lanes run each host at its own speed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from reelroute.models.core.catalogue import wan_preset_time
from reelroute.models.core.enums import InferenceProvider, Pool
from reelroute.models.core.tables import utcnow
from reelroute.models.items.lifecycle import MadeBy, complete_item
from reelroute.models.planning.eta import Lane, Slot, Waiting, Working
from reelroute.models.planning.snapshot import read_service_times
from tests.models.helpers import add_items, claim_next_item

WAN = InferenceProvider.wan_local
H200, RTX = "NVIDIA H200", "NVIDIA GeForce RTX 4090"


def made(session, settings, made_by: MadeBy, minutes: float, count: int) -> list:
    """`count` Wan videos (81 frames) each taking `minutes`, made as `made_by` says."""
    items = add_items(session, settings, count, provider=WAN)
    start = utcnow() - timedelta(hours=3)
    done = []
    for _ in items:
        claim = claim_next_item(session, settings, Pool.gpu, worker_id="w", now=start)
        assert claim is not None
        done.append(
            complete_item(
                session,
                item_id=claim.item_id,
                attempt=claim.attempt,
                worker_id="w",
                output_path="videos/x.mp4",
                made_by=made_by,
                now=start + timedelta(minutes=minutes),
            )
        )
        session.commit()
    return done


def estimates(session, settings):
    return read_service_times(session, settings)


def test_a_preset_change_shows_on_the_items_and_in_the_estimates(session, settings):
    before = made(session, settings, MadeBy("full@1", "gpu-a", H200), 30, 5)
    assert {(i.wan_preset, i.gpu_host, i.gpu_class) for i in before} == {("full@1", "gpu-a", H200)}
    after = made(session, settings, MadeBy("fast@1", "gpu-a", H200), 3, 5)
    assert {i.wan_preset for i in after} == {"fast@1"}
    found = estimates(session, settings)
    full, fast = found.wan_classes[("full@1", H200)], found.wan_classes[("fast@1", H200)]
    assert fast.p50 == pytest.approx(full.p50 / 10)
    # The lanes' speed of a host: its own figure over all recent Wan videos' median.
    assert found.wan_speed("fast@1", H200) < 1 < found.wan_speed("full@1", H200)
    assert found.wan_speed("fast@1", H200) == pytest.approx(fast.p50 / found.times[WAN].p50)


def test_hosts_of_two_gpu_classes_keep_their_own_figures(session, settings):
    made(session, settings, MadeBy("full@1", "h200-1", H200), 20, 5)
    made(session, settings, MadeBy("full@1", "rtx-1", RTX), 40, 5)
    found = estimates(session, settings)
    assert found.wan_classes[("full@1", RTX)].p50 == pytest.approx(
        2 * found.wan_classes[("full@1", H200)].p50
    )
    # A preset not yet measured on a class: the class's full-speed time times the preset's
    # prior (catalogue), not the fleet's blur.
    guess = found.wan_speed("cached@1", RTX)
    assert guess == pytest.approx(found.wan_speed("full@1", RTX) * wan_preset_time("cached"))


def test_the_wan_lane_runs_each_host_at_its_own_speed():
    now = utcnow()
    due = now + timedelta(hours=5)
    lane = Lane(
        slots=0,
        now=now,
        hosts=[Slot("h200-fast", 0.1), Slot("rtx-full", 1.0)],
        working=[Working(uuid.uuid4(), now - timedelta(seconds=500), 1000.0, host="rtx-full")],
        waiting=[Waiting(uuid.uuid4(), due, 1000.0, 1500.0) for _ in range(3)],
    )
    # rtx-full is busy until 500 s; h200-fast takes the queue at a tenth of the time each,
    # until rtx-full is free (500 s) and takes one at its own pace.
    finished = [(p.finish_s, p.speed) for p in lane.replay()]
    assert finished == [(100.0, 0.1), (200.0, 0.1), (300.0, 0.1)]
    longer = Lane(
        slots=0,
        now=now,
        hosts=lane.hosts,
        working=lane.working,
        waiting=[Waiting(uuid.uuid4(), due, 1000.0, 1500.0) for _ in range(7)],
    )
    ends = [p.finish_s for p in longer.replay()]
    assert ends[:5] == [100.0, 200.0, 300.0, 400.0, 500.0]
    assert sorted(ends[5:]) == [600.0, 1500.0]  # one more on the fast host, one on the other
    assert lane.end_of(lane.working[0]) == 500.0
