"""The acceptance table: per provider, preset and group, and for Wan per group and preset (what
routing weighs), a group's verdicts counted once."""

from __future__ import annotations

import pytest

from reelroute.models.core.enums import InferenceProvider
from reelroute.models.reporting.acceptance import acceptance_table
from reelroute.models.store.tallies import count_verdict
from tests.models.helpers import add_group_with_photos


def test_a_groups_wan_videos_are_counted_per_preset(session, settings):
    group_id, _ = add_group_with_photos(session, 1)
    for preset, kept, redone in (("fast@1", 4, 16), ("full@1", 19, 1)):
        for accepted, times in ((True, kept), (False, redone)):
            for _ in range(times):
                count_verdict(
                    session, group_id=group_id, provider="wan_local", wan_preset=preset,
                    accepted=accepted,
                )  # fmt: skip
    session.commit()
    rows = [
        row
        for row in acceptance_table(session, settings)
        if row.provider is InferenceProvider.wan_local and row.group_id == group_id
    ]
    by_preset = {row.wan_preset: row for row in rows}
    assert set(by_preset) == {None, "fast", "full"}
    assert (by_preset["fast"].kept, by_preset["fast"].judged) == (4, 20)
    assert (by_preset[None].kept, by_preset[None].judged) == (23, 40)
    # against the other groups' rate (none here: the prior 0.9 worth 10), counted once
    prior, weight = settings.quality.prior_acceptance, settings.quality.prior_weight
    assert by_preset["fast"].routing == pytest.approx(
        (4 + prior * weight) / (20 + weight), abs=1e-4
    )
    assert by_preset["full"].routing == pytest.approx(
        (19 + prior * weight) / (20 + weight), abs=1e-4
    )
