"""How often each option's videos are kept: per provider, Wan preset and group, with a 95 %
Wilson interval and the rate routing works with (models.planning.acceptance), and its blind A/B
comparisons (won, lost, tied, with the interval of the share not lost). Read from the few rows
of `verdict_tallies` and the comparisons (a sample of the items): the API's
`GET /api/admin/stats/acceptance` and the Statistics page."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session, col

from reelroute.models.core.enums import InferenceProvider
from reelroute.models.items.tables import AbComparison
from reelroute.models.planning.acceptance import Acceptance, Verdicts, preset_name, wilson
from reelroute.models.planning.settings import PlanningConfig
from reelroute.models.store.tallies import group_key, verdict_tallies


@dataclass(frozen=True)
class Duels:
    """Blind A/B comparisons of one option's videos against another's."""

    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def count(self) -> int:
        """Comparisons."""
        return self.wins + self.losses + self.ties

    def __add__(self, other: Duels) -> Duels:
        return Duels(self.wins + other.wins, self.losses + other.losses, self.ties + other.ties)


def _duels_of(winner: str, side: str, count: int) -> Duels:
    """`count` comparisons with `winner`, seen from `side` (`item` or `shadow`)."""
    if winner == "tie":
        return Duels(ties=count)
    return Duels(wins=count) if winner == side else Duels(losses=count)


class AcceptanceRow(BaseModel):
    """The videos of one provider (and Wan preset), for one group or for all of them."""

    provider: InferenceProvider
    wan_preset: str | None = Field(description="null: every preset (or a Runway model).")
    group_id: uuid.UUID | None = Field(description="null: every group.")
    kept: int = Field(description="Videos kept (the item completed with them).")
    judged: int = Field(description="Videos kept or made again.")
    share: float | None = Field(description="kept / judged; null before any was judged.")
    low: float = Field(description="The share's 95 % Wilson interval, low end.")
    high: float = Field(description="The share's 95 % Wilson interval, high end.")
    routing: float = Field(
        description="The share routing expects (the count weighed against the prior); on a "
        "preset's row, the provider's."
    )
    ab_wins: int = Field(default=0, description="Blind A/B comparisons its video won.")
    ab_losses: int = Field(default=0, description="Blind A/B comparisons its video lost.")
    ab_ties: int = Field(default=0, description="Blind A/B comparisons judged both fine.")
    ab_low: float = Field(
        default=0.0,
        description="The 95 % Wilson interval of the share of comparisons it did not lose "
        "((wins + ties) / comparisons), low end.",
    )
    ab_high: float = Field(default=1.0, description="The same interval's high end.")


def _row(
    provider: InferenceProvider,
    preset: str | None,
    group_id: uuid.UUID | None,
    verdicts: Verdicts,
    routing: float,
    duels: Duels,
) -> AcceptanceRow:
    low, high = wilson(verdicts.accepted, verdicts.judged)
    ab_low, ab_high = wilson(duels.wins + duels.ties, duels.count)
    return AcceptanceRow(
        provider=provider,
        wan_preset=preset,
        group_id=group_id,
        kept=verdicts.accepted,
        judged=verdicts.judged,
        share=verdicts.accepted / verdicts.judged if verdicts.judged else None,
        low=round(low, 4),
        high=round(high, 4),
        routing=round(routing, 4),
        ab_wins=duels.wins,
        ab_losses=duels.losses,
        ab_ties=duels.ties,
        ab_low=round(ab_low, 4),
        ab_high=round(ab_high, 4),
    )


def _duels(session: Session) -> tuple[dict[tuple[str, str], Duels], dict[tuple[str, str], Duels]]:
    """A/B comparisons per (provider, preset) and per (provider, group key), both sides."""
    rows = session.execute(
        sa.select(
            col(AbComparison.group_id),
            col(AbComparison.item_provider),
            col(AbComparison.item_preset),
            col(AbComparison.shadow_provider),
            col(AbComparison.shadow_preset),
            col(AbComparison.winner),
            sa.func.count(),
        ).group_by(
            col(AbComparison.group_id),
            col(AbComparison.item_provider),
            col(AbComparison.item_preset),
            col(AbComparison.shadow_provider),
            col(AbComparison.shadow_preset),
            col(AbComparison.winner),
        )
    ).all()
    by_preset: dict[tuple[str, str], Duels] = defaultdict(Duels)
    by_group: dict[tuple[str, str], Duels] = defaultdict(Duels)
    for group_id, item_provider, item_preset, shadow_provider, shadow_preset, winner, n in rows:
        for provider, preset, side in (
            (item_provider, item_preset, "item"),
            (shadow_provider, shadow_preset, "shadow"),
        ):
            duels = _duels_of(winner, side, n)
            by_preset[(provider, preset or "")] += duels
            by_group[(provider, group_key(group_id))] += duels
    return by_preset, by_group


def acceptance_table(session: Session, settings: PlanningConfig) -> list[AcceptanceRow]:
    """Per provider: a row for every group, then one per Wan preset, then one per group (and,
    for Wan, one per group and preset: what routing weighs); each with its videos kept and its
    blind A/B comparisons."""
    known = {provider.value: provider for provider in InferenceProvider}
    by_preset: dict[tuple[str, str], Verdicts] = defaultdict(Verdicts)
    by_group: dict[tuple[str, str], Verdicts] = defaultdict(Verdicts)
    by_group_preset: dict[tuple[str, str, str], Verdicts] = defaultdict(Verdicts)
    for row in verdict_tallies(session):
        verdicts = Verdicts(row.accepted, row.rejected)
        by_preset[(row.provider, row.wan_preset)] += verdicts
        by_group[(row.provider, row.group_key)] += verdicts
        if row.wan_preset:
            by_group_preset[(row.group_key, row.provider, preset_name(row.wan_preset))] += verdicts
    estimate = Acceptance.of(
        {(key, name): v for (name, key), v in by_group.items()}, settings, dict(by_group_preset)
    )
    duels_preset, duels_group = _duels(session)
    rows = []
    names = {name for name, _ in [*by_group, *duels_group]} & set(known)
    for name in sorted(names):
        provider = known[name]
        overall = estimate.provider_rate(provider)
        every = sum((d for (of, _), d in duels_group.items() if of == name), Duels())
        rows.append(_row(provider, None, None, estimate.of_provider(provider), overall, every))
        presets = {p for of, p in [*by_preset, *duels_preset] if of == name and p}
        for preset in sorted(presets):
            verdicts = by_preset.get((name, preset), Verdicts())
            duels = duels_preset.get((name, preset), Duels())
            rows.append(_row(provider, preset, None, verdicts, overall, duels))
        keys = {key for of, key in [*by_group, *duels_group] if of == name and key}
        for key in sorted(keys):
            group_id = uuid.UUID(hex=key)
            verdicts = by_group.get((name, key), Verdicts())
            duels = duels_group.get((name, key), Duels())
            rate = estimate.rate(group_id, provider)
            rows.append(_row(provider, None, group_id, verdicts, rate, duels))
            for of_group, of, preset in sorted(by_group_preset):
                if of_group == key and of == name:
                    verdicts = by_group_preset[(of_group, of, preset)]
                    rate = estimate.rate(group_id, provider, frozenset({preset}))
                    rows.append(_row(provider, preset, group_id, verdicts, rate, Duels()))
    return rows
