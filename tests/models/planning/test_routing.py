"""The routing policies, decision by decision, on hand-built snapshots (no database)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from reelroute.models.core.catalogue import CATALOGUE, VEO_FAMILY
from reelroute.models.core.enums import (
    BudgetPeriod,
    BudgetScope,
    GroupPriority,
    InferenceProvider,
    RoutedBy,
)
from reelroute.models.money.budgets import Spend
from reelroute.models.money.gpu import GpuPrices
from reelroute.models.money.limits import ModelLimits, RunwayLimits
from reelroute.models.money.tables import Budget
from reelroute.models.planning.estimates import Estimates, catalogue_time
from reelroute.models.planning.eta import Lane, Waiting, Working
from reelroute.models.planning.routing import (
    Policy,
    RouteRequest,
    RoutingOptions,
    default_allowed,
    route,
)
from reelroute.models.planning.snapshot import Caps, Snapshot

WAN, TURBO, GEN45, VEO, FAST = (
    InferenceProvider.wan_local,
    InferenceProvider.runway_gen4_turbo,
    InferenceProvider.runway_gen4_5,
    InferenceProvider.runway_veo3_1,
    InferenceProvider.runway_veo3_1_fast,
)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PIXELS = 1280 * 704
MIN = 60.0


def snapshot(*, wan_slots=1, caps=None, limits=None, lanes=None) -> Snapshot:
    """Empty queues (Wan on `wan_slots` GPUs, each Runway model 5 at once), catalogue times:
    Wan p50 30 min / p90 40 min, Gen-4 Turbo 3.5 / 5 min, Veo 7.5 / 10 min, ..."""
    estimates = Estimates(
        times={p: catalogue_time(p, entry.minutes, PIXELS) for p, entry in CATALOGUE.items()},
        pixels=PIXELS,
    )
    built = {p: Lane(slots=wan_slots if p is WAN else 5, now=NOW) for p in CATALOGUE}
    built.update(lanes or {})
    return Snapshot(now=NOW, lanes=built, estimates=estimates, caps=caps or Caps(), limits=limits)


def request(**changes) -> RouteRequest:
    base = RouteRequest(
        requested=None,
        group_id=None,
        priority=GroupPriority.normal,
        group_default=None,
        allowed=default_allowed(GroupPriority.normal),
        due_at=NOW + timedelta(hours=4),
        duration_s=5,
    )
    return dataclasses.replace(base, **changes)


def decide(req=None, snap=None, policy=Policy.deadline, **options):
    return route(
        req or request(),
        snap or snapshot(),
        RoutingOptions(
            policy=policy,
            default_provider=options.get("default_provider", TURBO),
            fallback_threshold=options.get("fallback_threshold", 50),
        ),
        exclude=options.get("exclude", frozenset()),
    )


def wan_queue(count: int, *, due=NOW + timedelta(hours=10), working_until=None) -> Lane:
    lane = Lane(slots=1, now=NOW)
    if working_until is not None:
        lane.working.append(
            Working(uuid.uuid4(), working_until - timedelta(seconds=30 * MIN), 30 * MIN)
        )
    for _ in range(count):
        lane.add(Waiting(uuid.uuid4(), due, 30 * MIN, 40 * MIN))
    return lane


def cap(provider=None, *, left, scope=BudgetScope.provider) -> Caps:
    budget = Budget(
        id=uuid.uuid4(), scope=scope, period=BudgetPeriod.day, provider=provider, cap_credits=left
    )
    return Caps(spends=[Spend(budget, date(2026, 11, 28), reserved=0, spent=0)])


# --- the deadline policy ---------------------------------------------------------------------

DEADLINE_CASES = [
    # (what, request changes, snapshot, expected provider, words in the reason)
    ("free Wan meets a 4 h deadline", {}, snapshot(), WAN, "WAN predicted 12:40, due 16:00"),
    (
        "an urgent 20 min deadline is too short for Wan: the cheapest Runway model",
        {"due_at": NOW + timedelta(minutes=20), "priority": GroupPriority.urgent},
        snapshot(),
        TURBO,
        "Gen-4 predicted 12:05",
    ),
    (
        "Wan's queue, due before it, is hours long: Gen-4 Turbo",
        {},
        snapshot(lanes={WAN: wan_queue(10, due=NOW + timedelta(hours=3))}),
        TURBO,
        "Gen-4 predicted",
    ),
    (
        "the same queue on 8 GPUs is short enough",
        {},
        snapshot(
            lanes={
                WAN: Lane(
                    slots=8, now=NOW, waiting=wan_queue(10, due=NOW + timedelta(hours=3)).waiting
                )
            }
        ),
        WAN,
        "WAN predicted",
    ),
    (
        "high quality allows the Veo family only: the cheaper Veo Fast",
        {"priority": GroupPriority.high_quality, "allowed": VEO_FAMILY},
        snapshot(),
        FAST,
        "Veo Fast predicted",
    ),
    (
        "nothing meets the deadline: the earliest finish",
        {"due_at": NOW + timedelta(minutes=3), "allowed": (WAN, VEO)},
        snapshot(),
        VEO,
        "nothing allowed meets due 12:03",
    ),
    (
        "a group that allows only Wan gets Wan, late or not",
        {"due_at": NOW + timedelta(minutes=20), "allowed": (WAN,)},
        snapshot(),
        WAN,
        "earliest finish is WAN",
    ),
]


@pytest.mark.parametrize(("what", "changes", "snap", "expected", "reason"), DEADLINE_CASES)
def test_the_deadline_policy(what, changes, snap, expected, reason):
    decision = decide(request(**changes), snap)
    assert decision.provider is expected, (what, decision.reason)
    assert decision.routed_by is RoutedBy.deadline
    assert reason in decision.reason, decision.reason


def test_adding_to_wan_must_not_make_an_item_already_queued_there_late():
    def lane(due_of_queued: timedelta) -> Lane:
        # One video at work until 12:10; item A (an hour's work, 75 min at p90) waits: it would
        # start at 12:10 and be done by 13:25.
        queue = wan_queue(0, working_until=NOW + timedelta(minutes=10))
        queue.add(Waiting(uuid.uuid4(), NOW + due_of_queued, 60 * MIN, 75 * MIN))
        return queue

    # The new item is due before A, so it goes first: done (p90) by 12:50, and A 30 min later.
    new = request(due_at=NOW + timedelta(minutes=80))
    roomy = decide(new, snapshot(lanes={WAN: lane(timedelta(minutes=120))}))
    assert roomy.provider is WAN, roomy.reason  # A has 35 min of slack
    tight = decide(new, snapshot(lanes={WAN: lane(timedelta(minutes=90))}))
    assert tight.provider is TURBO, tight.reason  # A has 5 min of slack: it would be late


def test_a_cap_is_reached_exactly_at_its_limit():
    turbo_cost = CATALOGUE[TURBO].credits_for(5, None)  # 25 credits
    urgent = request(due_at=NOW + timedelta(minutes=20))
    at_cap = decide(urgent, snapshot(caps=cap(TURBO, left=turbo_cost)))
    assert at_cap.provider is TURBO and at_cap.credits == turbo_cost
    over = decide(urgent, snapshot(caps=cap(TURBO, left=turbo_cost - 1)))
    assert over.provider is GEN45  # the next cheapest that is on time


def test_with_every_paid_option_at_a_cap_the_item_goes_to_wan():
    urgent = request(due_at=NOW + timedelta(minutes=20))
    decision = decide(urgent, snapshot(caps=cap(left=0, scope=BudgetScope.total)))
    assert decision.provider is WAN
    assert "Gen-4 skipped: at a cap" in decision.reason and "Veo 3.1 skipped" in decision.reason


def test_a_model_whose_daily_limit_is_used_up_is_routed_around():
    limits = RunwayLimits(
        credit_balance=10_000,
        max_monthly_credits=100_000,
        models={"gen4_turbo": ModelLimits(max_concurrent=2, max_daily=50, used_today=50)},
    )
    urgent = request(due_at=NOW + timedelta(minutes=20))
    assert decide(urgent, snapshot(limits=limits)).provider is GEN45


def test_runways_credit_balance_acts_as_a_cap():
    urgent = request(due_at=NOW + timedelta(minutes=20))
    poor = snapshot()
    poor.caps.runway_left = 10
    assert decide(urgent, poor).provider is WAN


def test_a_batch_sees_its_own_items_in_the_queues():
    snap = snapshot()
    providers = [decide(request(), snap).provider for _ in range(10)]
    # Wan takes what it can finish by the 4 h deadline (the 8th would be done at 16:10).
    assert providers == [WAN] * 7 + [TURBO] * 3


def test_the_tie_between_equal_prices_goes_to_the_faster():
    both = (FAST, VEO)
    decision = decide(request(allowed=both, duration_s=8))
    assert decision.provider is FAST


def test_an_excluded_provider_is_skipped():
    urgent = request(due_at=NOW + timedelta(minutes=20))
    assert decide(urgent, exclude=frozenset({TURBO})).provider is GEN45


# --- explicit choices, group defaults and the seed's threshold policy ------------------------


@pytest.mark.parametrize("provider", list(InferenceProvider))
@pytest.mark.parametrize("policy", list(Policy))
def test_an_explicit_choice_wins_over_everything(provider, policy):
    decision = decide(request(requested=provider, priority=GroupPriority.urgent), policy=policy)
    assert (decision.provider, decision.routed_by) == (provider, RoutedBy.explicit)


def test_a_groups_default_provider_comes_before_the_deadline_policy():
    decision = decide(request(group_default=VEO))
    assert (decision.provider, decision.routed_by) == (VEO, RoutedBy.default)


@pytest.mark.parametrize(
    ("priority", "provider"),
    [(GroupPriority.urgent, TURBO), (GroupPriority.high_quality, VEO)],
)
def test_threshold_group_priority(priority, provider):
    decision = decide(request(priority=priority), policy=Policy.threshold)
    assert (decision.provider, decision.routed_by) == (provider, RoutedBy.group_priority)


@pytest.mark.parametrize("default", [WAN, TURBO, VEO])
def test_threshold_configured_default(default):
    decision = decide(policy=Policy.threshold, default_provider=default)
    assert (decision.provider, decision.routed_by) == (default, RoutedBy.default)


def test_threshold_group_default_comes_before_configured_default():
    decision = decide(request(group_default=VEO), policy=Policy.threshold, default_provider=WAN)
    assert decision.provider is VEO and "group's default" in decision.reason


@pytest.mark.parametrize(("pending", "expected"), [(50, WAN), (51, TURBO)])
def test_threshold_fallback_counts_waiting_wan_items(pending, expected):
    snap = snapshot()
    snap.pending_wan = pending
    decision = decide(snap=snap, policy=Policy.threshold, default_provider=WAN)
    assert decision.provider is expected
    if expected is TURBO:
        assert decision.routed_by is RoutedBy.fallback
        assert f"{pending} Wan items are pending" in decision.reason


def test_threshold_zero_falls_back_from_the_first_pending_item():
    snap = snapshot()
    first = decide(snap=snap, policy=Policy.threshold, default_provider=WAN, fallback_threshold=0)
    second = decide(snap=snap, policy=Policy.threshold, default_provider=WAN, fallback_threshold=0)
    assert (first.provider, second.provider) == (WAN, TURBO)


def test_replay_only_policies_send_everything_one_way():
    assert decide(policy=Policy.all_gen4).provider is TURBO
    assert decide(policy=Policy.all_wan).provider is WAN


def test_an_item_that_requires_full_quality_skips_wan_when_no_host_runs_such_a_preset():
    on_wan = decide()
    assert on_wan.provider is WAN
    hosts_fast_only = dataclasses.replace(snapshot(), wan_full_slots=0)
    moved = decide(request(full_quality=True), hosts_fast_only)
    assert moved.provider is not WAN
    assert "no GPU host runs a full-quality preset" in moved.reason
    # Other items still go to those hosts; and with one full-quality slot it stays on Wan.
    assert decide(request(), dataclasses.replace(snapshot(), wan_full_slots=0)).provider is WAN
    one = dataclasses.replace(snapshot(), wan_full_slots=1)
    assert decide(request(full_quality=True), one).provider is WAN


# --- what a Wan video costs when GPUs bill per second --------------------------------------


def priced(snap: Snapshot, dollars_per_hour: float, *, per_second: bool) -> Snapshot:
    prices = GpuPrices({"*": dollars_per_hour}, per_second_billing=per_second)
    return dataclasses.replace(snap, wan_second_credits=prices.marginal_credits_per_second(None))


def test_a_wan_video_dearer_than_gen4_turbo_on_per_second_gpus_goes_to_gen4_turbo():
    # Wan's reference p50 is 30 min: at $2.50 an hour its GPU time costs $1.25 > Turbo's $0.25
    decision = decide(snap=priced(snapshot(), 2.5, per_second=True))
    assert decision.provider is TURBO
    assert decision.routed_by is RoutedBy.deadline


def test_always_on_gpus_cost_nothing_more_per_video_so_wan_keeps_it():
    decision = decide(snap=priced(snapshot(), 2.5, per_second=False))
    assert decision.provider is WAN
    assert "GPU time" not in decision.reason


def test_a_wan_video_cheaper_than_gen4_turbo_stays_on_wan_and_says_what_it_costs():
    # at $0.20 an hour, 30 min cost $0.10 < $0.25
    decision = decide(snap=priced(snapshot(), 0.2, per_second=True))
    assert decision.provider is WAN
    assert "GPU time about 0.10 $" in decision.reason


def test_a_group_that_allows_only_wan_gets_wan_whatever_its_gpu_time_costs():
    decision = decide(request(allowed=(WAN,)), priced(snapshot(), 2.5, per_second=True))
    assert decision.provider is WAN


def test_a_spent_gpu_budget_keeps_items_off_per_second_gpus():
    snap = priced(snapshot(caps=cap(left=10, scope=BudgetScope.gpu)), 0.2, per_second=True)
    decision = decide(snap=snap)  # 10 credits left, a Wan video expected to cost 10.0: fits
    assert decision.provider is WAN
    again = decide(snap=snap)  # the batch's first took them
    assert again.provider is TURBO
    assert "GPU budget is spent" in again.reason
