"""How often each option's videos are kept: per provider, Wan preset and group, with a 95 %
Wilson interval, and the rate routing works with (models.planning.acceptance). Read from the
few rows of `verdict_tallies`, at any table size: the API's `GET /api/admin/stats/acceptance`
and the Statistics page."""

from __future__ import annotations

import uuid
from collections import defaultdict

from pydantic import BaseModel, Field
from sqlmodel import Session

from reelroute.models.core.enums import InferenceProvider
from reelroute.models.core.settings import Settings
from reelroute.models.planning.acceptance import Verdicts, read_acceptance, wilson
from reelroute.models.store.tallies import verdict_tallies


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


def _row(
    provider: InferenceProvider,
    preset: str | None,
    group_id: uuid.UUID | None,
    verdicts: Verdicts,
    routing: float,
) -> AcceptanceRow:
    low, high = wilson(verdicts.accepted, verdicts.judged)
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
    )


def acceptance_table(session: Session, settings: Settings) -> list[AcceptanceRow]:
    """Per provider: a row for every group, then one per Wan preset, then one per group."""
    known = {provider.value: provider for provider in InferenceProvider}
    estimate = read_acceptance(session, settings)
    by_preset: dict[tuple[str, str], Verdicts] = defaultdict(Verdicts)
    by_group: dict[tuple[str, str], Verdicts] = defaultdict(Verdicts)
    for row in verdict_tallies(session):
        if row.provider in known:
            verdicts = Verdicts(row.accepted, row.rejected)
            by_preset[(row.provider, row.wan_preset)] += verdicts
            by_group[(row.provider, row.group_key)] += verdicts
    rows = []
    for name in sorted({provider for provider, _ in by_group}):
        provider = known[name]
        overall = estimate.provider_rate(provider)
        rows.append(_row(provider, None, None, estimate.of_provider(provider), overall))
        for (of, preset), verdicts in sorted(by_preset.items()):
            if of == name and preset:
                rows.append(_row(provider, preset, None, verdicts, overall))
        for (of, key), verdicts in sorted(by_group.items()):
            if of == name and key:
                group_id = uuid.UUID(hex=key)
                rows.append(
                    _row(provider, None, group_id, verdicts, estimate.rate(group_id, provider))
                )
    return rows
