"""The routing policy: which provider makes an item, and why.

Two policies (REELROUTE_ROUTING_POLICY):
- `deadline` (the default): the cheapest provider the group allows whose predicted finish meets
  the item's due time without making anything already queued there late; if none, the earliest
  finish within budget; with every paid option at a cap or its daily limit, Wan.
- `threshold`: the seed's rules (SEED.md §8): group priority, default provider, Gen-4 Turbo when
  more than REELROUTE_WAN_FALLBACK_THRESHOLD Wan items wait. Kept to compare.
`all-gen4` and `all-wan` exist for `reelroute replay` only.

A choice the task names (or its group's default provider) is explicit and always wins. Every
decision is a function of a Snapshot (models.planning.snapshot): production builds it from the
database, `reelroute replay` on a simulated clock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from reelroute.models.core.catalogue import CATALOGUE, VEO_FAMILY, info
from reelroute.models.core.enums import GroupPriority, InferenceProvider, RoutedBy
from reelroute.models.core.formats import clock
from reelroute.models.core.tables import Group
from reelroute.models.planning.eta import Waiting
from reelroute.models.planning.settings import PlanningConfig
from reelroute.models.planning.snapshot import Snapshot

PRIORITY_PROVIDERS: dict[GroupPriority, InferenceProvider] = {
    GroupPriority.urgent: InferenceProvider.runway_gen4_turbo,
    GroupPriority.high_quality: InferenceProvider.runway_veo3_1,
}
FALLBACK_PROVIDER = InferenceProvider.runway_gen4_turbo
WAN = InferenceProvider.wan_local


class Policy(StrEnum):
    """How auto-routed items are routed."""

    deadline = "deadline"
    threshold = "threshold"
    all_gen4 = "all-gen4"
    all_wan = "all-wan"


@dataclass(frozen=True)
class RoutingOptions:
    """How auto-routed items are routed: the policy, and the seed's rule's two settings."""

    policy: Policy
    default_provider: InferenceProvider
    """REELROUTE_DEFAULT_PROVIDER (the `threshold` policy's default)."""
    fallback_threshold: int
    """REELROUTE_WAN_FALLBACK_THRESHOLD (the `threshold` policy's Wan fallback)."""

    @classmethod
    def of(cls, settings: PlanningConfig, policy: Policy | None = None) -> RoutingOptions:
        """The options the settings ask for (`policy` instead of theirs: `reelroute replay`)."""
        return cls(
            policy=policy or Policy(settings.routing.policy),
            default_provider=settings.routing.default_provider,
            fallback_threshold=settings.routing.wan_fallback_threshold,
        )


def default_allowed(priority: GroupPriority) -> tuple[InferenceProvider, ...]:
    """Who may make the items of a group that names none: the Veo family for high-quality
    groups (their point is the picture), everyone for the others."""
    if priority is GroupPriority.high_quality:
        return VEO_FAMILY
    return tuple(CATALOGUE)


def allowed_for(group: Group) -> tuple[InferenceProvider, ...]:
    """Who may make the group's items: its `allowed_providers`, else its priority's default."""
    named = tuple(InferenceProvider(p) for p in group.allowed_providers or ())
    return named or default_allowed(group.priority)


@dataclass(frozen=True)
class RouteRequest:
    """One item to route."""

    requested: InferenceProvider | None
    """The provider the task names; None for `auto`."""
    group_id: uuid.UUID | None
    priority: GroupPriority
    group_default: InferenceProvider | None
    allowed: tuple[InferenceProvider, ...]
    due_at: datetime
    frame_num: int | None = None
    duration_s: int | None = None
    item_id: uuid.UUID | None = None
    full_quality: bool = False
    """Its group takes Wan videos only from a preset that keeps the model card's quality."""

    def credits(self, provider: InferenceProvider) -> int:
        """What this item is expected to cost with `provider`."""
        return info(provider).credits_for(self.duration_s, self.frame_num)


@dataclass(frozen=True)
class RoutingDecision:
    """The chosen provider, the rule that chose it, a sentence for the admin, and what the
    item is expected to cost and when it should be done."""

    provider: InferenceProvider
    routed_by: RoutedBy
    reason: str
    credits: int = 0
    eta: datetime | None = None
    wan_full_quality: bool = False
    """Routing sent it to the full-quality GPU hosts (its group's videos of the others are made
    again too often): the item is made there only."""


def route(
    request: RouteRequest,
    snapshot: Snapshot,
    options: RoutingOptions,
    *,
    exclude: frozenset[InferenceProvider] = frozenset(),
) -> RoutingDecision:
    """Decide the provider of one item, and count it in the snapshot (its lane and the caps),
    so that the next decision of a batch sees it. `exclude` leaves out providers found at a cap
    when reserving (a concurrent batch took the rest)."""
    decision = _decide(request, snapshot, options, exclude)
    p50, p90 = snapshot.estimates.seconds(
        decision.provider, request.frame_num, request.duration_s, request.item_id
    )
    snapshot.lane(decision.provider).add(
        Waiting(request.item_id or uuid.uuid4(), request.due_at, p50, p90)
    )
    snapshot.caps.take(decision.provider, request.group_id, decision.credits)
    if decision.provider is WAN:
        snapshot.pending_wan += 1
        snapshot.caps.gpu_used += snapshot.wan_credits(request.frame_num, request.duration_s)
    return decision


def option_credits(request: RouteRequest, snapshot: Snapshot, provider: InferenceProvider) -> float:
    """What making the item with `provider` adds to the bill, in credits: Runway's price, or
    (Wan) its GPU time when the GPUs bill per second (0 for always-on hosts)."""
    if provider is WAN:
        return snapshot.wan_credits(request.frame_num, request.duration_s)
    return float(request.credits(provider))


def _decide(
    request: RouteRequest,
    snapshot: Snapshot,
    options: RoutingOptions,
    exclude: frozenset[InferenceProvider],
) -> RoutingDecision:
    policy = options.policy
    if request.requested is not None:
        return RoutingDecision(
            request.requested,
            RoutedBy.explicit,
            f"{request.requested.value} was chosen",
            request.credits(request.requested),
        )
    if policy is Policy.threshold:
        return _threshold(request, snapshot, options.default_provider, options.fallback_threshold)
    if policy in (Policy.all_gen4, Policy.all_wan):
        provider = InferenceProvider.runway_gen4_turbo if policy is Policy.all_gen4 else WAN
        return RoutingDecision(
            provider, RoutedBy.default, f"policy {policy.value}", request.credits(provider)
        )
    if request.group_default is not None and request.group_default not in exclude:
        provider = request.group_default
        left = snapshot.caps.left(provider, request.group_id)
        if left is None or request.credits(provider) <= left:
            return RoutingDecision(
                provider,
                RoutedBy.default,
                f"the group's default provider is {provider.value}",
                request.credits(provider),
            )
    return deadline_choice(request, snapshot, exclude=exclude)


def _threshold(
    request: RouteRequest,
    snapshot: Snapshot,
    default_provider: InferenceProvider,
    fallback_threshold: int,
) -> RoutingDecision:
    """SEED.md §8: group priority, default provider, the Wan fallback on a queue length."""
    if request.priority in PRIORITY_PROVIDERS:
        provider = PRIORITY_PROVIDERS[request.priority]
        return RoutingDecision(
            provider,
            RoutedBy.group_priority,
            f"the group's priority is {request.priority.value}",
            request.credits(provider),
        )
    if request.group_default is not None:
        provider, source = request.group_default, "the group's default provider"
    else:
        provider, source = default_provider, "the configured default (REELROUTE_DEFAULT_PROVIDER)"
    pending_wan = snapshot.pending_wan
    if provider is WAN and pending_wan > fallback_threshold:
        return RoutingDecision(
            FALLBACK_PROVIDER,
            RoutedBy.fallback,
            f"{source} is wan_local, but {pending_wan} Wan items are pending "
            f"(more than the threshold of {fallback_threshold})",
            request.credits(FALLBACK_PROVIDER),
        )
    return RoutingDecision(
        provider, RoutedBy.default, f"{source} is {provider.value}", request.credits(provider)
    )


def usable(
    request: RouteRequest,
    snapshot: Snapshot,
    provider: InferenceProvider,
    exclude: frozenset[InferenceProvider] = frozenset(),
) -> str | None:
    """Why `provider` cannot take the item (its daily limit, a cap), or None when it can."""
    if provider in exclude:
        return "at a cap"
    if provider in snapshot.unavailable:
        return snapshot.unavailable[provider]
    if provider is WAN and request.full_quality and snapshot.wan_full_slots == 0:
        return "no GPU host runs a full-quality preset (the group requires one)"
    if snapshot.limits is not None and info(provider).paid:
        limits = snapshot.limits.model(info(provider).model)
        if limits.max_concurrent == 0:
            return "Runway allows it no tasks at once (concurrency 0)"
        left = limits.daily_left
        if left is not None and left <= 0:
            return "its daily limit at Runway is used up"
    cap = snapshot.caps.left(provider, request.group_id)
    if cap is not None and request.credits(provider) > cap:
        return "at a cap"
    if provider is WAN and snapshot.wan_second_credits:
        gpu_left = snapshot.caps.gpu_left()
        if gpu_left is not None and option_credits(request, snapshot, WAN) > gpu_left:
            return "the GPU budget is spent"
    return None


@dataclass(frozen=True)
class RedoOutlook:
    """An option counted with the chance that its video is made again: on the next option
    (the cheapest other usable one), which costs its credits and adds its time."""

    acceptance: float
    """The share of the option's videos the group is expected to keep."""
    credits: float
    """Expected credits: the option's, and the next option's times the chance of a redo."""
    delay: float
    """Expected seconds a redo adds: the next option's p90 times the chance of a redo."""
    redo_on: InferenceProvider | None

    def text(self, judged: int) -> str:
        """The figures for the item's reason ('' when no redo is expected)."""
        if self.redo_on is None or self.acceptance >= 1:
            return ""
        seen = f"{judged} judged" if judged else "the prior"
        return (
            f"; {self.acceptance:.0%} kept ({seen}), redo on {info(self.redo_on).badge}: "
            f"expected {self.credits / 100:.2f} $"
        )


def redo_outlook(
    request: RouteRequest,
    snapshot: Snapshot,
    provider: InferenceProvider,
    others: list[InferenceProvider],
) -> RedoOutlook:
    """`provider`'s option counted with its chance of a redo (none when REELROUTE_ROUTING_
    COUNT_REDOS is off, or no other option could make it again)."""
    credits = option_credits(request, snapshot, provider)
    rest = [p for p in others if p is not provider]
    if not snapshot.count_redos or not rest:
        return RedoOutlook(1.0, credits, 0.0, None)
    redo_on = min(
        rest,
        key=lambda p: (
            option_credits(request, snapshot, p),
            snapshot.estimates.seconds(p, None, None)[0],
        ),
    )
    presets = None
    if provider is WAN and snapshot.wan_full_presets and snapshot.wan_fast_presets:
        presets = snapshot.wan_full_presets if request.full_quality else snapshot.wan_fast_presets
    kept = snapshot.acceptance.rate(request.group_id, provider, presets)
    _, p90 = snapshot.estimates.seconds(redo_on, request.frame_num, request.duration_s)
    chance = 1 - kept
    redo_credits = option_credits(request, snapshot, redo_on)
    return RedoOutlook(kept, credits + chance * redo_credits, chance * p90, redo_on)


def wan_redone(request: RouteRequest, snapshot: Snapshot) -> tuple[str | None, str | None]:
    """Whether the group's Wan videos are made again too often: (why, for the Wan hosts the
    item may go to; why, when the full-quality hosts would take it instead). Where GPU hosts
    run different presets, a group whose videos of the fast presets are redone too often goes
    to the full-quality hosts, unless those are redone too often as well."""
    acceptance = snapshot.acceptance
    full, fast = snapshot.wan_full_presets, snapshot.wan_fast_presets
    if request.full_quality:
        return acceptance.too_often_redone(request.group_id, full or None), None
    if not (full and fast and snapshot.wan_full_slots):
        return acceptance.too_often_redone(request.group_id), None
    redone = acceptance.too_often_redone(request.group_id, fast)
    if redone is None:
        return None, None
    if acceptance.too_often_redone(request.group_id, full) is None:
        return redone, redone
    return redone, None


def deadline_choice(
    request: RouteRequest,
    snapshot: Snapshot,
    *,
    exclude: frozenset[InferenceProvider] = frozenset(),
) -> RoutingDecision:
    """The deadline policy for one item (see the module's docstring). With
    REELROUTE_ROUTING_COUNT_REDOS each option is weighed by its expected cost and finish,
    counting the chance of a redo (docs/routing.md), and a group whose Wan videos are made
    again too often goes to a paid option."""
    now, due = snapshot.now, request.due_at
    skipped = {p: why for p in request.allowed if (why := usable(request, snapshot, p, exclude))}
    full_note = ""
    if snapshot.count_redos and WAN in request.allowed and WAN not in skipped:
        paid_left = [p for p in request.allowed if p is not WAN and p not in skipped]
        redone, to_full = wan_redone(request, snapshot)
        if to_full is not None:  # the full-quality hosts before a paid model
            request = replace(request, full_quality=True)
            full_note = f"; on full-quality GPU hosts: {to_full}"
        elif redone is not None and paid_left:
            skipped[WAN] = redone
    usable_here = [p for p in request.allowed if p not in skipped]
    redo_outlooks = {p: redo_outlook(request, snapshot, p, usable_here) for p in usable_here}
    candidates = sorted(
        usable_here,
        key=lambda p: (redo_outlooks[p].credits, snapshot.estimates.seconds(p, None, None)[0]),
    )
    note = full_note + "".join(f"; {info(p).badge} skipped: {why}" for p, why in skipped.items())
    earliest: tuple[datetime, InferenceProvider] | None = None
    for provider in candidates:
        p50, p90 = snapshot.estimates.seconds(
            provider, request.frame_num, request.duration_s, request.item_id
        )
        added = snapshot.lane(provider).if_added(due, p50, p90)
        seen = redo_outlooks[provider]
        expected = added.finish_p90 + timedelta(seconds=seen.delay)
        figures = seen.text(snapshot.acceptance.of_group(request.group_id, provider).judged)
        if provider is WAN and snapshot.wan_second_credits:
            gpu = option_credits(request, snapshot, WAN) / 100
            figures += f"; GPU time about {gpu:.2f} $"
        if added.meets(due) and expected <= due:
            return RoutingDecision(
                provider,
                RoutedBy.deadline,
                f"{info(provider).badge} predicted {clock(added.finish_p90, now)}, due "
                f"{clock(due, now)} (UTC){figures}{note}",
                request.credits(provider),
                added.finish,
                wan_full_quality=bool(full_note) and provider is WAN,
            )
        if earliest is None or expected < earliest[0]:
            earliest = (expected, provider)
    if earliest is not None:
        finish, provider = earliest
        return RoutingDecision(
            provider,
            RoutedBy.deadline,
            f"nothing allowed meets due {clock(due, now)} (UTC); the earliest finish is "
            f"{info(provider).badge} at {clock(finish, now)}{note}",
            request.credits(provider),
            finish,
            wan_full_quality=bool(full_note) and provider is WAN,
        )
    p50, _ = snapshot.estimates.seconds(WAN, request.frame_num, request.duration_s)
    added = snapshot.lane(WAN).if_added(due, p50, p50)
    return RoutingDecision(
        WAN,
        RoutedBy.deadline,
        "every allowed paid option is at a budget cap or its daily limit: Wan, predicted "
        f"{clock(added.finish, now)}{note}",
        0,
        added.finish,
    )
