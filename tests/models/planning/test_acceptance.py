"""Acceptance per group and option, and the deadline policy that counts redos (hand-built
snapshots, no database)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from reelroute.models.core.enums import RoutedBy
from reelroute.models.planning.acceptance import Acceptance, Verdicts, wilson
from reelroute.models.store.tallies import group_key
from tests.models.planning.test_routing import GEN45, NOW, TURBO, WAN, decide, request, snapshot

GROUP = uuid.UUID("00000000-0000-0000-0000-00000000a0a0")
OTHER = uuid.UUID("00000000-0000-0000-0000-00000000b0b0")


def acceptance(**counts: tuple[int, int]) -> Acceptance:
    """Verdicts of GROUP per provider name, (accepted, rejected)."""
    return Acceptance(
        counts={(group_key(GROUP), name): Verdicts(*pair) for name, pair in counts.items()},
        prior=0.9,
        weight=10,
        max_wan_rejection=0.5,
        min_verdicts=10,
    )


def test_with_nothing_judged_every_option_has_the_prior():
    empty = Acceptance(prior=0.8, weight=10)
    assert empty.rate(GROUP, WAN) == pytest.approx(0.8)
    assert empty.rate(None, TURBO) == pytest.approx(0.8)


def test_a_groups_rate_moves_from_the_providers_to_its_own_count():
    seen = acceptance(wan_local=(10, 30))
    provider = (10 + 0.9 * 10) / (40 + 10)
    assert seen.provider_rate(WAN) == pytest.approx(provider)
    # the group's own verdicts count once: against the other groups' rate (here the prior),
    # not against a provider's rate that holds them too
    assert seen.rate(GROUP, WAN) == pytest.approx((10 + 0.9 * 10) / (40 + 10))
    # another group starts from what the provider does for everyone
    assert seen.rate(OTHER, WAN) == pytest.approx(provider)
    # and a provider nobody judged from the prior
    assert seen.rate(GROUP, TURBO) == pytest.approx(0.9)


def test_many_verdicts_outweigh_the_prior():
    seen = acceptance(wan_local=(500, 500))
    assert seen.rate(GROUP, WAN) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((2, 7), None),  # 9 judged: fewer than min_verdicts
        ((5, 5), None),  # 50 %: not more than the share
        ((4, 6), "6 of the group's 10 judged Wan videos were made again (60%, more than 50%)"),
    ],
)
def test_a_group_whose_wan_videos_are_redone_too_often_is_named(counts, expected):
    assert acceptance(wan_local=counts).too_often_redone(GROUP) == expected
    assert acceptance(wan_local=counts).too_often_redone(OTHER) is None


def test_the_wilson_interval():
    low, high = wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(0, 20)
    assert low == 0.0 and 0.15 < high < 0.17
    low, high = wilson(800, 1000)
    assert 0.77 < low < 0.8 < high < 0.83


# --- routing ---------------------------------------------------------------------------------


def counted(snap=None, **counts: tuple[int, int]):
    snap = snap or snapshot()
    return dataclasses.replace(snap, acceptance=acceptance(**counts), count_redos=True)


def test_the_reason_gives_the_expected_redo():
    decision = decide(request(group_id=GROUP), counted(wan_local=(8, 2)))
    assert decision.provider is WAN
    assert "kept (10 judged), redo on Gen-4: expected" in decision.reason, decision.reason
    assert decision.credits == 0


def test_a_group_whose_wan_videos_are_redone_too_often_goes_to_a_paid_option():
    req = request(group_id=GROUP)
    assert decide(req, counted(wan_local=(5, 5))).provider is WAN
    decision = decide(req, counted(wan_local=(4, 6)))
    assert decision.provider is TURBO
    assert decision.routed_by is RoutedBy.deadline
    assert "WAN skipped: 6 of the group's 10 judged Wan videos were made again (60%" in (
        decision.reason
    )
    # the rule is the group's: another group still gets Wan
    assert decide(request(group_id=OTHER), counted(wan_local=(4, 6))).provider is WAN
    # and without counting redos it does not apply
    assert (
        decide(req, dataclasses.replace(counted(wan_local=(4, 6)), count_redos=False)).provider
        is WAN
    )


def test_a_group_that_allows_only_wan_keeps_wan_however_often_it_is_redone():
    decision = decide(request(group_id=GROUP, allowed=(WAN,)), counted(wan_local=(0, 20)))
    assert decision.provider is WAN


def test_the_chance_of_a_redo_can_make_wan_too_late():
    """Wan's p90 is 40 min; a redo on Gen-4 Turbo adds its p90 (5 min) times the chance."""
    due = request(group_id=GROUP, due_at=NOW + timedelta(minutes=41))
    assert decide(due, counted(wan_local=(9, 0))).provider is WAN  # ~0.5 min expected
    late = decide(due, counted(wan_local=(0, 9)))  # ~2.7 min expected: 42.7 > 41
    assert late.provider is TURBO, late.reason
    without = dataclasses.replace(counted(wan_local=(0, 9)), count_redos=False)
    assert decide(due, without).provider is WAN


def test_the_expected_cost_orders_the_paid_options():
    """Gen-4 Turbo (25 credits for 5 s) is dearer in expectation than Gen-4.5 (60 credits,
    kept 90 % by the prior: 62.5) once it is redone on Gen-4.5 more than 5 times in 8."""
    req = request(group_id=GROUP, allowed=(TURBO, GEN45))
    assert decide(req, counted(runway_gen4_turbo=(20, 0))).provider is TURBO
    low = decide(req, counted(runway_gen4_turbo=(0, 200)))
    assert low.provider is GEN45, low.reason


def by_preset(**counts: tuple[int, int]) -> Acceptance:
    """GROUP's Wan verdicts per preset name, (accepted, rejected)."""
    presets = {
        (group_key(GROUP), WAN.value, name): Verdicts(*pair) for name, pair in counts.items()
    }
    summed = Verdicts()
    for verdicts in presets.values():
        summed += verdicts
    return Acceptance(
        counts={(group_key(GROUP), WAN.value): summed},
        by_preset=presets,
        prior=0.9,
        weight=10,
        max_wan_rejection=0.5,
        min_verdicts=10,
    )


def test_acceptance_is_known_per_wan_preset():
    seen = by_preset(fast=(4, 16), full=(19, 1))
    fast, full = frozenset({"fast"}), frozenset({"full", "compiled"})
    assert seen.rate(GROUP, WAN, fast) == pytest.approx((4 + 9) / (20 + 10))
    assert seen.rate(GROUP, WAN, full) == pytest.approx((19 + 9) / (20 + 10))
    assert seen.too_often_redone(GROUP, fast) == (
        "16 of the group's 20 judged Wan fast videos were made again (80%, more than 50%)"
    )
    assert seen.too_often_redone(GROUP, full) is None
    assert seen.of_group(GROUP, WAN) == Verdicts(23, 17)  # every preset


def test_a_group_whose_fast_videos_are_redone_goes_to_the_full_quality_hosts_first():
    """GPU hosts run `fast` and `full`: the group's fast videos are redone 80 % of the time, its
    full ones 5 %; it goes to the full-quality hosts (Wan still, free), with the figures in
    the reason. When its full videos are redone too often as well, to a paid model."""
    mixed = dataclasses.replace(
        snapshot(wan_slots=2),
        wan_full_slots=1,
        wan_full_presets=frozenset({"full"}),
        wan_fast_presets=frozenset({"fast"}),
        count_redos=True,
    )
    req = request(group_id=GROUP)
    decision = decide(req, dataclasses.replace(mixed, acceptance=by_preset(fast=(4, 16))))
    assert decision.provider is WAN and decision.wan_full_quality
    assert (
        "on full-quality GPU hosts: 16 of the group's 20 judged Wan fast videos were made "
        "again (80%, more than 50%)" in decision.reason
    ), decision.reason
    both = by_preset(fast=(4, 16), full=(3, 9))
    paid = decide(req, dataclasses.replace(mixed, acceptance=both))
    assert paid.provider is TURBO and not paid.wan_full_quality
    # a group whose fast videos are kept stays where any host may make it
    fine = decide(req, dataclasses.replace(mixed, acceptance=by_preset(fast=(18, 2))))
    assert fine.provider is WAN and not fine.wan_full_quality
