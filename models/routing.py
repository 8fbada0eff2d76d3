"""The routing policy (SEED.md §8 made a rule list): which provider makes an item, and why."""

from __future__ import annotations

from dataclasses import dataclass

from reelroute.models.enums import GroupPriority, InferenceProvider, RoutedBy
from reelroute.models.settings import Settings
from reelroute.models.tables import Group

PRIORITY_PROVIDERS: dict[GroupPriority, InferenceProvider] = {
    GroupPriority.urgent: InferenceProvider.runway_gen4_turbo,
    GroupPriority.high_quality: InferenceProvider.runway_veo3_1,
}
FALLBACK_PROVIDER = InferenceProvider.runway_gen4_turbo


@dataclass(frozen=True)
class RoutingDecision:
    """The chosen provider, the rule that chose it and a sentence for the admin."""

    provider: InferenceProvider
    routed_by: RoutedBy
    reason: str


def route(
    *,
    requested: InferenceProvider | None,
    group_priority: GroupPriority,
    group_default: InferenceProvider | None,
    configured_default: InferenceProvider,
    pending_wan: int,
    fallback_threshold: int,
) -> RoutingDecision:
    """Apply the rules in order: explicit choice, group priority, default, Wan fallback.

    `requested` is None for "no choice" and for `auto`: both mean "apply the rules".
    """
    if requested is not None:
        return RoutingDecision(requested, RoutedBy.explicit, f"{requested.value} was chosen")
    if group_priority in PRIORITY_PROVIDERS:
        provider = PRIORITY_PROVIDERS[group_priority]
        return RoutingDecision(
            provider, RoutedBy.group_priority, f"the group's priority is {group_priority.value}"
        )
    if group_default is not None:
        provider, source = group_default, "the group's default provider"
    else:
        provider, source = configured_default, "the configured default (REELROUTE_DEFAULT_PROVIDER)"
    if provider is InferenceProvider.wan_local and pending_wan > fallback_threshold:
        return RoutingDecision(
            FALLBACK_PROVIDER,
            RoutedBy.fallback,
            f"{source} is wan_local, but {pending_wan} Wan items are pending "
            f"(more than the threshold of {fallback_threshold})",
        )
    return RoutingDecision(provider, RoutedBy.default, f"{source} is {provider.value}")


def route_in_group(
    group: Group,
    settings: Settings,
    *,
    requested: InferenceProvider | None,
    pending_wan: int,
) -> RoutingDecision:
    """The routing rules for a new item of `group` while `pending_wan` Wan items wait (what a
    batch applies and the admin's New tasks page previews)."""
    return route(
        requested=requested,
        group_priority=group.priority,
        group_default=group.default_provider,
        configured_default=settings.default_provider,
        pending_wan=pending_wan,
        fallback_threshold=settings.wan_fallback_threshold,
    )
