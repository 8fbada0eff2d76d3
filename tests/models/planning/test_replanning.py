"""Waiting items moved when their prediction changes: late Wan items to Runway, Runway items to
an idle Wan, each at most once; and the ETAs the dispatcher stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from reelroute.models.core.enums import (
    BudgetPeriod,
    BudgetScope,
    GroupPriority,
    InferenceProvider,
    RoutedBy,
)
from reelroute.models.core.tables import VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.items.dispatch import mark_dispatched
from reelroute.models.items.lifecycle import cancel_item, claim_item
from reelroute.models.money.budgets import set_budget, spend
from reelroute.models.planning.replanning import (
    eta_of,
    moves_of,
    predicted_late,
    reroute_waiting,
    store_etas,
)
from reelroute.models.planning.snapshot import build_snapshot
from reelroute.models.reporting.statistics import provider_stats
from tests.models.helpers import add_group_with_photos

WAN, TURBO = InferenceProvider.wan_local, InferenceProvider.runway_gen4_turbo
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def one_gpu(settings):
    return settings.replaced(gpu_slots=1)


def add(session, settings, count, *, at=T0, provider=None, group=None):
    group_id, (photo_id,) = group or add_group_with_photos(session, 1, GroupPriority.normal)
    tasks = [
        TaskSpec(
            photo_id=photo_id,
            prompt=f"task {n}",
            duration_s=5,
            inference_provider=provider.value if provider else None,
        )
        for n in range(count)
    ]
    items = add_batch(session, group_id=group_id, tasks=tasks, settings=settings, now=at)
    session.commit()
    return items


def replan(session: Session, settings, at: datetime):
    snapshot = build_snapshot(session, settings, now=at)
    moves = reroute_waiting(session, snapshot)
    store_etas(session, snapshot)
    session.commit()
    return moves


def fresh(session: Session, item: VideoItem) -> VideoItem:
    found = session.get(VideoItem, item.id, populate_existing=True)
    assert found is not None
    return found


def test_a_wan_item_now_predicted_late_moves_to_the_cheapest_runway_model(session, one_gpu):
    set_budget(
        session,
        scope=BudgetScope.total,
        period=BudgetPeriod.day,
        cap_dollars=10,
    )
    [item] = add(session, one_gpu, 1)
    assert item.inference_provider is WAN  # 40 min at p90, due in 4 h
    assert replan(session, one_gpu, T0 + timedelta(hours=3)) == []  # still on time
    # Its GPU never took it: at 12:30 Wan would finish (p90) at 13:10, past 13:00.
    [move] = replan(session, one_gpu, T0 + timedelta(hours=3, minutes=30))
    item = fresh(session, item)
    assert (move.from_provider, move.to_provider) == (WAN, TURBO)
    assert item.inference_provider is TURBO and item.routed_by is RoutedBy.rerouted
    assert item.route_reason.startswith("moved from Wan: now predicted 13:10, due 13:00")
    assert "Gen-4 predicted 12:35" in item.route_reason
    [recorded] = moves_of(session, item.id)
    assert (recorded.from_provider, recorded.to_provider) == (WAN, TURBO)
    [entry] = spend(session, now=T0)
    assert entry.reserved == 25  # the move reserved Gen-4 Turbo's cost
    stats = provider_stats(session)
    assert (stats[WAN].moved_away, stats[TURBO].moved_here) == (1, 1)


def test_a_dispatched_wan_run_that_never_started_is_fenced_off_when_its_item_moves(
    session, one_gpu
):
    [item] = add(session, one_gpu, 1)
    run = uuid.uuid4()
    assert mark_dispatched(session, item_id=item.id, retry_count=0, flow_run_id=run, provider=WAN)
    session.commit()
    [move] = replan(session, one_gpu, T0 + timedelta(hours=3, minutes=30))
    assert move.abandoned_run == run  # the planner cancels it in Prefect
    assert fresh(session, item).flow_run_id is None  # the dispatcher sends it to the cloud
    late_run = claim_item(
        session, item_id=item.id, attempt=1, worker_id="gpu-0", settings=one_gpu, provider=WAN
    )
    assert late_run is None  # the GPU came back: its old run may no longer take the item
    cloud = claim_item(
        session, item_id=item.id, attempt=1, worker_id="cloud-0", settings=one_gpu, provider=TURBO
    )
    assert cloud is not None and cloud.inference_provider is TURBO


def test_runway_items_move_to_an_idle_wan_one_per_free_slot(session, one_gpu):
    items = add(session, one_gpu, 10)
    providers = [item.inference_provider for item in items]
    assert providers == [WAN] * 7 + [TURBO] * 3  # Wan's 4 h hold seven
    for item in items[:7]:  # the Wan videos were called off: Wan is idle
        cancel_item(session, item_id=item.id)
    session.commit()
    [move] = replan(session, one_gpu, T0 + timedelta(minutes=1))
    assert (move.from_provider, move.to_provider) == (TURBO, WAN)
    moved = fresh(session, items[7])
    assert moved.inference_provider is WAN
    assert moved.route_reason == (
        "moved to Wan, idle: predicted 09:41, due 13:00 (UTC), at no cost"
    )
    # The next pass sees Wan's queue holding that item: nothing more moves.
    assert replan(session, one_gpu, T0 + timedelta(minutes=2)) == []


def test_no_move_to_wan_without_a_quarter_of_the_time_to_spare(session, one_gpu):
    items = add(session, one_gpu, 8)
    assert [item.inference_provider for item in items] == [WAN] * 7 + [TURBO]
    for item in items[:7]:
        cancel_item(session, item_id=item.id)
    session.commit()
    # At 12:10 the Turbo item is due in 50 min: Wan (40 min at p90) would make it by 12:50, but
    # with less than a quarter of the time to spare (12.5 min); it stays.
    assert replan(session, one_gpu, T0 + timedelta(hours=3, minutes=10)) == []
    # At 11:00 there are two hours left: it moves.
    [move] = replan(session, one_gpu, T0 + timedelta(hours=2))
    assert move.item_id == items[7].id


def test_an_item_moves_at_most_once(session, one_gpu):
    [item] = add(session, one_gpu, 1)
    [to_runway] = replan(session, one_gpu, T0 + timedelta(hours=3, minutes=30))
    assert to_runway.to_provider is TURBO
    # Wan is idle and the item would now be on time there (Gen-4 Turbo is its home now): no
    # move back, however the predictions swing.
    assert replan(session, one_gpu, T0 + timedelta(hours=3, minutes=31)) == []
    assert len(moves_of(session, item.id)) == 1


def test_explicit_and_started_items_never_move(session, one_gpu):
    [explicit] = add(session, one_gpu, 1, provider=WAN)
    [started] = add(session, one_gpu, 1)
    claim = claim_item(session, item_id=started.id, attempt=1, worker_id="gpu-0", settings=one_gpu)
    assert claim is not None
    session.commit()
    assert replan(session, one_gpu, T0 + timedelta(hours=5)) == []
    assert fresh(session, explicit).inference_provider is WAN


def test_a_move_is_skipped_when_the_budget_says_no(session, one_gpu):
    set_budget(session, scope=BudgetScope.total, period=BudgetPeriod.day, cap_dollars=0.10)
    [item] = add(session, one_gpu, 1)
    assert replan(session, one_gpu, T0 + timedelta(hours=3, minutes=30)) == []
    assert fresh(session, item).inference_provider is WAN


def test_stored_etas_give_positions_times_and_late_risk(session, one_gpu):
    items = add(session, one_gpu, 3)
    replan(session, one_gpu, T0)
    etas = [eta_of(session, item.id) for item in items]
    assert [e.queue_position for e in etas] == [1, 2, 3]
    assert [e.start_at.strftime("%H:%M") for e in etas] == ["09:00", "09:30", "10:00"]
    assert [e.eta.strftime("%H:%M") for e in etas] == ["09:30", "10:00", "10:30"]
    assert sum(predicted_late(session).values()) == 0
    # Three hours later, with nothing started, the last two are at risk.
    snapshot = build_snapshot(session, one_gpu, now=T0 + timedelta(hours=3))
    store_etas(session, snapshot)
    session.commit()
    assert sum(predicted_late(session).values()) == 2
    assert eta_of(session, items[0].id).late_risk is False


def test_waiting_items_leave_a_model_whose_breaker_is_open_named_ones_wait(session, one_gpu):
    from reelroute.models.core.enums import FailureClass
    from reelroute.models.health.breakers import model_breaker, record_outcome

    items = add(session, one_gpu, 10)
    assert [item.inference_provider for item in items] == [WAN] * 7 + [TURBO] * 3
    [named] = add(session, one_gpu, 1, provider=TURBO)
    record_outcome(
        session,
        one_gpu,
        name=model_breaker(TURBO),
        ok=False,
        failure_class=FailureClass.provider_exhausted,
        reason="HTTP_429: daily limit",
        retry_after=3600,
        now=T0,
    )
    session.commit()
    moves = replan(session, one_gpu, T0 + timedelta(minutes=1))
    assert sorted(m.item_id for m in moves) == sorted(i.id for i in items[7:])
    for item in items[7:]:
        moved = fresh(session, item)
        assert moved.inference_provider not in (TURBO, WAN)
        assert moved.route_reason.startswith("moved: Gen-4 Turbo unavailable since 09:00:00 UTC")
    assert fresh(session, named).inference_provider is TURBO  # named: it waits for the model
    # A new auto-routed item does not go there while it is open.
    snapshot = build_snapshot(session, one_gpu, now=T0 + timedelta(minutes=2))
    assert TURBO in snapshot.unavailable
    [late] = add(session, one_gpu, 1, at=T0 + timedelta(minutes=2))
    assert late.inference_provider is not TURBO
    assert "Gen-4 skipped: Gen-4 Turbo unavailable" in (late.route_reason or "")


def test_an_item_with_an_ab_sample_never_moves(session, settings):
    """An auto-routed Gen-4 Turbo item whose A/B sample is made by Wan stays on Gen-4 Turbo when
    Wan goes idle: moved, the pair would have been Wan against Wan."""
    from reelroute.models.core.tables import Group

    two_gpus = settings.replaced(gpu_slots=2)
    group = add_group_with_photos(session, 1, GroupPriority.normal)
    sampled = session.get(Group, group[0])
    assert sampled is not None
    sampled.shadow_rate = 1.0  # no shadow budget: only the paid items get (Wan) samples
    session.add(sampled)
    session.commit()
    items = add(session, two_gpus, 15, group=group)
    paid = [item for item in items if item.inference_provider is TURBO]
    assert paid, [item.inference_provider for item in items]
    for item in items:  # the Wan videos were called off: Wan makes only the sample
        if item.inference_provider is WAN:
            cancel_item(session, item_id=item.id)
    sample = session.exec(select(VideoItem).where(col(VideoItem.shadow_of).is_not(None))).one()
    assert sample.inference_provider is WAN
    assert claim_item(session, item_id=sample.id, attempt=1, worker_id="gpu-0", settings=two_gpus)
    session.commit()  # one GPU makes the sample, the other is idle
    assert replan(session, two_gpus, T0 + timedelta(minutes=1)) == []
    assert all(fresh(session, item).inference_provider is TURBO for item in paid)
