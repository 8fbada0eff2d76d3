"""What each Wan video's GPU time costs, written where it ends (the item, the tallies, the `gpu`
budgets), read by the statistics and the metrics; and what routing sees of the live hosts'
prices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from reelroute.models.core.enums import BudgetPeriod, BudgetScope, InferenceProvider, Pool
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.items.lifecycle import MadeBy, complete_item
from reelroute.models.money.budgets import set_budget, spend
from reelroute.models.planning.hosts import report_host
from reelroute.models.planning.snapshot import build_snapshot
from reelroute.models.reporting.metrics import read_metrics
from reelroute.models.reporting.statistics import provider_stats
from tests.models.helpers import add_items, claim_next_item
from tests.models.reporting.test_metrics import values

WAN = InferenceProvider.wan_local
H100 = "NVIDIA H100 80GB HBM3"


def make_one(session, settings, provider, seconds: float, made_by: MadeBy | None = None):
    (item,) = add_items(session, settings, 1, provider=provider)
    # Done a minute ago: in today's budget period (an hour back failed in the first hour of a day)
    start = utcnow() - timedelta(seconds=seconds + 60)
    pool = Pool.gpu if provider is WAN else Pool.cloud
    claim = claim_next_item(session, settings, pool, worker_id="w", now=start)
    assert claim is not None and claim.item_id == item.id
    done = complete_item(
        session,
        item_id=item.id,
        attempt=claim.attempt,
        worker_id="w",
        output_path="videos/x.mp4",
        cost_credits=0 if provider is WAN else 25,
        made_by=made_by,
        now=start + timedelta(seconds=seconds),
    )
    session.commit()
    return done


def test_a_wan_video_records_its_gpu_seconds_and_what_they_cost(engine, session, settings):
    gpu = set_budget(session, scope=BudgetScope.gpu, period=BudgetPeriod.day, cap_dollars=5)
    session.commit()
    made_by = MadeBy("fast@1", "gpu-a", H100, hour_cost=2.5)
    item = make_one(session, settings, WAN, 130, made_by)
    with Session(engine) as fresh:
        stored = fresh.get(VideoItem, item.id)
        assert stored is not None
        assert stored.gpu_seconds == pytest.approx(130)
        assert stored.gpu_dollars == pytest.approx(130 * 2.5 / 3600)  # $0.09
        [entry] = [e for e in spend(fresh) if e.budget.id == gpu.id]
        assert entry.spent == 9  # credits: round($0.0903 * 100)
        stats = provider_stats(fresh)
        assert stats[WAN].gpu_seconds == pytest.approx(130)
        assert stats[WAN].gpu_dollars == pytest.approx(0.0903, abs=1e-4)
        found = values(read_metrics(fresh))
    assert found["reelroute_gpu_seconds"] == {(H100,): pytest.approx(130)}
    assert found["reelroute_gpu_spent_dollars"] == {(H100,): pytest.approx(130 * 2.5 / 3600)}
    assert found["reelroute_gpu_videos"] == {(H100,): 1.0}


def test_a_runway_video_uses_no_gpu_time(session, settings):
    item = make_one(session, settings, InferenceProvider.runway_gen4_turbo, 200)
    assert item.gpu_seconds is None and item.gpu_dollars is None
    stats = provider_stats(session)
    assert stats[InferenceProvider.runway_gen4_turbo].gpu_seconds == 0
    assert stats[InferenceProvider.runway_gen4_turbo].dollars == 0.25
    assert values(read_metrics(session))["reelroute_gpu_seconds"] == {}


def test_the_gpu_time_of_owned_gpus_is_counted_at_no_cost(session, settings):
    item = make_one(session, settings, WAN, 600, MadeBy("full@1", "gpu-a", H100))
    assert item.gpu_seconds == pytest.approx(600)
    assert item.gpu_dollars == 0


@pytest.mark.parametrize(
    ("billing", "expected"), [("always-on", 0.0), ("per-second", 2.5 * 100 / 3600)]
)
def test_routing_sees_the_live_hosts_price_only_when_they_bill_per_second(
    session, settings, billing, expected
):
    settings = settings.replaced(gpu_hour_cost="h100=2.5,*=9", gpu_billing=billing)
    report_host(session, name="gpu-a", gpu_class=H100, preset="full@1", slots=2)
    session.commit()
    snapshot = build_snapshot(session, settings, now=utcnow())
    # one reference-speed host: a second of work costs its class's price
    assert snapshot.wan_second_credits == pytest.approx(expected, rel=0.01)


def test_without_a_reporting_host_routing_takes_the_price_of_every_class(session, settings):
    settings = settings.replaced(gpu_hour_cost="h100=2.5,*=1.8", gpu_billing="per-second")
    snapshot = build_snapshot(session, settings, now=utcnow())
    assert snapshot.wan_second_credits == pytest.approx(180 / 3600)
