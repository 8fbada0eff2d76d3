"""How often each option's videos are kept, per group: what routing counts a redo's chance by.

Each completed item's video counts as kept and each video made again (a reviewer's rejection,
a failed check escalated) as rejected, per group, provider and Wan preset (`verdict_tallies`,
counted by the writers); an A/B sample's video counts when it is compared (kept unless the
item's was better). An option's acceptance in a group is a Beta-binomial estimate that
starts from a prior and moves to the group's own count as its videos are judged:

    provider's rate  = (kept by every group + prior * weight) / (judged by every group + weight)
    group's rate     = (kept by the group + provider's rate * weight) / (judged by it + weight)

so a new group starts from what the provider does for everyone, and the provider from
REELROUTE_QUALITY_PRIOR_ACCEPTANCE, worth REELROUTE_QUALITY_PRIOR_WEIGHT judged videos.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlmodel import Session

from reelroute.models.core.enums import InferenceProvider
from reelroute.models.core.settings import Settings
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


@dataclass
class Acceptance:
    """Verdicts per (group key, provider), and the prior they are weighed against."""

    counts: dict[tuple[str, str], Verdicts] = field(default_factory=dict)
    prior: float = 0.9
    weight: float = 10.0
    max_wan_rejection: float = 0.5
    min_verdicts: int = 10

    @classmethod
    def of(cls, counts: dict[tuple[str, str], Verdicts], settings: Settings) -> Acceptance:
        """`counts` with the settings' prior and Wan rule."""
        quality = settings.quality
        return cls(
            counts=counts,
            prior=quality.prior_acceptance,
            weight=quality.prior_weight,
            max_wan_rejection=quality.max_wan_rejection,
            min_verdicts=quality.min_verdicts,
        )

    def of_group(self, group_id: uuid.UUID | None, provider: InferenceProvider) -> Verdicts:
        """The group's own verdicts on `provider`'s videos."""
        return self.counts.get((group_key(group_id), provider.value), Verdicts())

    def of_provider(self, provider: InferenceProvider) -> Verdicts:
        """Every group's verdicts on `provider`'s videos."""
        total = Verdicts()
        for (_, name), verdicts in self.counts.items():
            if name == provider.value:
                total += verdicts
        return total

    def provider_rate(self, provider: InferenceProvider) -> float:
        """The share of `provider`'s videos kept, over every group, against the prior."""
        return _blend(self.of_provider(provider), self.prior, self.weight)

    def rate(self, group_id: uuid.UUID | None, provider: InferenceProvider) -> float:
        """The share of `provider`'s videos that `group_id` is expected to keep."""
        return _blend(self.of_group(group_id, provider), self.provider_rate(provider), self.weight)

    def too_often_redone(self, group_id: uuid.UUID | None) -> str | None:
        """Why the group's Wan videos should not be routed to Wan (they are made again more
        often than REELROUTE_QUALITY_MAX_WAN_REJECTION), or None."""
        verdicts = self.of_group(group_id, InferenceProvider.wan_local)
        if verdicts.judged < self.min_verdicts:
            return None
        share = verdicts.rejected / verdicts.judged
        if share <= self.max_wan_rejection:
            return None
        return (
            f"{verdicts.rejected} of the group's {verdicts.judged} judged Wan videos were made "
            f"again ({share:.0%}, more than {self.max_wan_rejection:.0%})"
        )


def _blend(verdicts: Verdicts, prior: float, weight: float) -> float:
    total = verdicts.judged + weight
    return (verdicts.accepted + prior * weight) / total if total else prior


def read_acceptance(session: Session, settings: Settings) -> Acceptance:
    """Every group's verdicts per provider (the presets summed), with the settings' prior."""
    counts: dict[tuple[str, str], Verdicts] = defaultdict(Verdicts)
    for row in verdict_tallies(session):
        counts[(row.group_key, row.provider)] += Verdicts(row.accepted, row.rejected)
    return Acceptance.of(dict(counts), settings)


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share (95 % by default); (0, 1) when nothing was counted."""
    if total <= 0:
        return 0.0, 1.0
    share = successes / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    spread = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - spread), min(1.0, centre + spread)
