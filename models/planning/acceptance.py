"""How often each option's videos are kept, per group: what routing counts a redo's chance by.

Each completed item's video counts as kept and each video made again (a reviewer's rejection,
a failed check escalated) as rejected, per group, provider and Wan preset (`verdict_tallies`,
counted by the writers); an A/B sample's video counts when it is compared (kept unless the
item's was better). An option's acceptance in a group is a Beta-binomial estimate that
starts from a prior and moves to the group's own count as its videos are judged:

    others' rate  = (kept by the other groups + prior * weight) / (judged by them + weight)
    group's rate  = (kept by the group + others' rate * weight) / (judged by it + weight)

so a new group starts from what the option does for everyone else (a group's own verdicts are
counted once, in its own count, never in its prior too), and the option from
REELROUTE_QUALITY_PRIOR_ACCEPTANCE, worth REELROUTE_QUALITY_PRIOR_WEIGHT judged videos.

An option is a provider, and for Wan also a set of presets (`presets`: the names before `@`,
e.g. the full-quality presets that some GPU hosts run): routing can then learn that a group's
`fast` videos are made again more often than its `full` ones.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlmodel import Session

from reelroute.models.core.enums import InferenceProvider
from reelroute.models.planning.settings import PlanningConfig
from reelroute.models.store.tallies import group_key, verdict_tallies


@dataclass(frozen=True)
class Verdicts:
    """Videos kept and made again."""

    accepted: int = 0
    rejected: int = 0

    @property
    def judged(self) -> int:
        """Videos counted either way."""
        return self.accepted + self.rejected

    def __add__(self, other: Verdicts) -> Verdicts:
        return Verdicts(self.accepted + other.accepted, self.rejected + other.rejected)


Presets = frozenset[str] | None
"""Wan presets by name (`fast`, `full`), or None: every preset (and every Runway video)."""


@dataclass
class Acceptance:
    """Verdicts per (group key, provider), per (group key, provider, preset name), and the
    prior they are weighed against."""

    counts: dict[tuple[str, str], Verdicts] = field(default_factory=dict)
    by_preset: dict[tuple[str, str, str], Verdicts] = field(default_factory=dict)
    prior: float = 0.9
    weight: float = 10.0
    max_wan_rejection: float = 0.5
    min_verdicts: int = 10

    @classmethod
    def of(
        cls,
        counts: dict[tuple[str, str], Verdicts],
        settings: PlanningConfig,
        by_preset: dict[tuple[str, str, str], Verdicts] | None = None,
    ) -> Acceptance:
        """`counts` with the settings' prior and Wan rule."""
        quality = settings.quality
        return cls(
            counts=counts,
            by_preset=by_preset or {},
            prior=quality.prior_acceptance,
            weight=quality.prior_weight,
            max_wan_rejection=quality.max_wan_rejection,
            min_verdicts=quality.min_verdicts,
        )

    def of_group(
        self, group_id: uuid.UUID | None, provider: InferenceProvider, presets: Presets = None
    ) -> Verdicts:
        """The group's own verdicts on `provider`'s videos (of `presets` only, when given)."""
        key = group_key(group_id)
        if presets is None:
            return self.counts.get((key, provider.value), Verdicts())
        total = Verdicts()
        for (group, name, preset), verdicts in self.by_preset.items():
            if group == key and name == provider.value and preset in presets:
                total += verdicts
        return total

    def of_provider(
        self,
        provider: InferenceProvider,
        presets: Presets = None,
        *,
        excluding: str | None = None,
    ) -> Verdicts:
        """Every group's verdicts on `provider`'s videos (of `presets`), but those of the group
        whose key (`group_key`) is `excluding`, when one is given."""
        left_out = excluding
        total = Verdicts()
        if presets is None:
            for (group, name), verdicts in self.counts.items():
                if name == provider.value and group != left_out:
                    total += verdicts
            return total
        for (group, name, preset), verdicts in self.by_preset.items():
            if name == provider.value and preset in presets and group != left_out:
                total += verdicts
        return total

    def provider_rate(self, provider: InferenceProvider, presets: Presets = None) -> float:
        """The share of `provider`'s videos (of `presets`) kept, over every group, against the
        prior."""
        return _blend(self.of_provider(provider, presets), self.prior, self.weight)

    def rate(
        self, group_id: uuid.UUID | None, provider: InferenceProvider, presets: Presets = None
    ) -> float:
        """The share of `provider`'s videos (of `presets`) that `group_id` is expected to keep:
        its own verdicts against the other groups' rate (its verdicts counted once)."""
        others = _blend(
            self.of_provider(provider, presets, excluding=group_key(group_id)),
            self.prior,
            self.weight,
        )
        return _blend(self.of_group(group_id, provider, presets), others, self.weight)

    def too_often_redone(self, group_id: uuid.UUID | None, presets: Presets = None) -> str | None:
        """Why the group's Wan videos (of `presets`) should not be routed there (they are made
        again more often than REELROUTE_QUALITY_MAX_WAN_REJECTION), or None."""
        verdicts = self.of_group(group_id, InferenceProvider.wan_local, presets)
        if verdicts.judged < self.min_verdicts:
            return None
        share = verdicts.rejected / verdicts.judged
        if share <= self.max_wan_rejection:
            return None
        which = f"{'/'.join(sorted(presets))} " if presets else ""
        return (
            f"{verdicts.rejected} of the group's {verdicts.judged} judged Wan {which}videos were "
            f"made again ({share:.0%}, more than {self.max_wan_rejection:.0%})"
        )


def _blend(verdicts: Verdicts, prior: float, weight: float) -> float:
    total = verdicts.judged + weight
    return (verdicts.accepted + prior * weight) / total if total else prior


def preset_name(label: str | None) -> str:
    """A preset's name from what an item records (`fast@1` -> `fast`; '' for none)."""
    return (label or "").split("@", 1)[0]


def read_acceptance(session: Session, settings: PlanningConfig) -> Acceptance:
    """Every group's verdicts per provider (the presets summed) and per preset name, with the
    settings' prior."""
    counts: dict[tuple[str, str], Verdicts] = defaultdict(Verdicts)
    by_preset: dict[tuple[str, str, str], Verdicts] = defaultdict(Verdicts)
    for row in verdict_tallies(session):
        verdicts = Verdicts(row.accepted, row.rejected)
        counts[(row.group_key, row.provider)] += verdicts
        by_preset[(row.group_key, row.provider, preset_name(row.wan_preset))] += verdicts
    return Acceptance.of(dict(counts), settings, dict(by_preset))


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share (95 % by default); (0, 1) when nothing was counted."""
    if total <= 0:
        return 0.0, 1.0
    share = successes / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    spread = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - spread), min(1.0, centre + spread)
