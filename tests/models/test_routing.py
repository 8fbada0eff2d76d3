"""The routing policy, rule by rule."""

from __future__ import annotations

import pytest

from reelroute.models.enums import GroupPriority, InferenceProvider, RoutedBy
from reelroute.models.routing import route

WAN, TURBO, VEO = (
    InferenceProvider.wan_local,
    InferenceProvider.runway_gen4_turbo,
    InferenceProvider.runway_veo3_1,
)


def decide(**overrides):
    arguments = dict(
        requested=None,
        group_priority=GroupPriority.normal,
        group_default=None,
        configured_default=TURBO,
        pending_wan=0,
        fallback_threshold=50,
    )
    arguments.update(overrides)
    return route(**arguments)


@pytest.mark.parametrize("provider", list(InferenceProvider))
def test_explicit_choice_wins_over_everything(provider):
    decision = decide(
        requested=provider,
        group_priority=GroupPriority.urgent,
        pending_wan=10_000,
        configured_default=WAN,
    )
    assert (decision.provider, decision.routed_by) == (provider, RoutedBy.explicit)


def test_explicit_wan_is_never_moved_by_the_fallback():
    decision = decide(requested=WAN, pending_wan=51)
    assert decision.provider is WAN


@pytest.mark.parametrize(
    ("priority", "provider"), [(GroupPriority.urgent, TURBO), (GroupPriority.high_quality, VEO)]
)
def test_group_priority(priority, provider):
    decision = decide(group_priority=priority, configured_default=WAN)
    assert (decision.provider, decision.routed_by) == (provider, RoutedBy.group_priority)
    assert priority.value in decision.reason


@pytest.mark.parametrize("default", list(InferenceProvider))
def test_configured_default(default):
    decision = decide(configured_default=default)
    assert (decision.provider, decision.routed_by) == (default, RoutedBy.default)
    assert "REELROUTE_DEFAULT_PROVIDER" in decision.reason


def test_group_default_comes_before_configured_default():
    decision = decide(group_default=VEO, configured_default=WAN)
    assert (decision.provider, decision.routed_by) == (VEO, RoutedBy.default)


def test_fallback_not_at_the_threshold():
    assert decide(configured_default=WAN, pending_wan=50).provider is WAN


def test_fallback_above_the_threshold():
    decision = decide(configured_default=WAN, pending_wan=51)
    assert (decision.provider, decision.routed_by) == (TURBO, RoutedBy.fallback)
    assert "51 Wan items are pending" in decision.reason


def test_fallback_applies_to_a_group_default_of_wan():
    decision = decide(group_default=WAN, pending_wan=51)
    assert decision.routed_by is RoutedBy.fallback


def test_threshold_zero_falls_back_from_the_first_pending_item():
    assert decide(configured_default=WAN, pending_wan=0, fallback_threshold=0).provider is WAN
    assert decide(configured_default=WAN, pending_wan=1, fallback_threshold=0).provider is TURBO
