"""The Statistics page's logic: the table and chart rows match the API's figures."""

from __future__ import annotations

from reelroute.models.core.enums import ItemStatus
from reelroute.models.reporting.statistics import provider_stats
from reelroute.models.store.db import session_scope
from reelroute.ui.views import queue as queue_view
from reelroute.ui.views import statistics as view
from tests.ui.helpers import populate


def test_table_and_charts_show_the_counts_and_spend(engine, settings):
    populate(engine, settings)
    stats = view.read(engine)
    with session_scope(engine) as session:
        assert stats == provider_stats(session)
    rows = {row[0]: row for row in view.table(stats)}
    # Total, pending, processing, in review, completed, failed, cancelled, success rate.
    assert rows["WAN local (GPU server)"][1:8] == [2, 0, 1, 0, 1, 0, 0]
    assert rows["Runway Gen-4 Turbo (fast)"][1:9] == [2, 0, 0, 0, 1, 1, 0, "50%"]
    assert rows["Runway Veo 3.1 (best quality)"][1:9] == [2, 1, 0, 0, 1, 0, 0, "100%"]
    assert rows["Runway Veo 3.1 (best quality)"][11:] == ["100%", 0, "0 / 0", "$2.40 (240 credits)"]
    assert {r["provider"]: r["dollars"] for r in view.spend_rows(stats)} == {
        "WAN": 0.0,
        "Gen-4": 0.25,
        "Gen-4.5": 0.0,
        "Veo Fast": 0.0,
        "Veo 3.1": 2.4,
    }
    by_status = {(r["provider"], r["status"]): r["items"] for r in view.status_rows(stats)}
    assert by_status[("Veo 3.1", "pending")] == 1 and by_status[("Gen-4", "failed")] == 1
    assert len(by_status) == 5 * len(ItemStatus)  # 5 providers x every status, zeros included
    finish = view.finish_rows(stats)
    assert {(r["provider"], r["measure"]) for r in finish} == {
        (p, m) for p in ("WAN", "Gen-4", "Veo 3.1") for m in ("median", "p90")
    }
    # A bar of its own per provider and measure: the p90 stands beside the median, not on it.
    assert len({r["bar"] for r in finish}) == len(finish) == 6
    assert view.summary(stats) == (
        "**6 items** · **$2.65 spent** · Wan backlog: **0** pending"
        " · **0** waiting items at risk of being late"
    )


def test_the_fingerprint_changes_only_when_counts_change(engine, settings):
    before = view.fingerprint(engine)
    assert view.fingerprint(engine) == before
    populated = populate(engine, settings)
    after = view.fingerprint(engine)
    assert after != before and view.fingerprint(engine) == after
    queue_view.act_on(engine, settings, "cancel", [str(populated.by_state["pending"][0])])
    assert view.fingerprint(engine) != after


def test_status_colours_follow_meaning_on_charts_and_badges():
    green, red = "#15803d", "#b91c1c"
    assert view.STATUS_COLOUR_MAP["completed"] == green
    assert view.STATUS_COLOUR_MAP["failed"] == red
    cancelled = view.STATUS_COLOUR_MAP["cancelled"]
    red_, green_, blue_ = (int(cancelled[i : i + 2], 16) for i in (1, 3, 5))
    assert max(red_, green_, blue_) - min(red_, green_, blue_) < 24  # a grey
    assert len(set(view.STATUS_COLOUR_MAP.values())) == len(ItemStatus)  # each status its own
    for status, colour in queue_view.STATUS_COLOURS.items():  # the badges use the same
        assert f".rr-{status.value} {{ background: {colour}; }}" in queue_view.CSS
        assert view.STATUS_COLOUR_MAP[status.value] == colour


def test_wans_spend_is_its_gpu_time_beside_runways_credits(engine, settings):
    from reelroute.models.items.lifecycle import MadeBy
    from reelroute.ui.views import budgets as budgets_view
    from tests.models.planning.test_estimates import made

    with session_scope(engine) as session:  # one Wan video, 90 minutes at $2.00 an hour
        made(session, settings, MadeBy("full@1", "gpu-a", "NVIDIA H100", hour_cost=2.0), 90, 1)
    stats = view.read(engine)
    wan = next(row for row in view.table(stats) if row[0] == "WAN local (GPU server)")
    assert wan[-1] == "GPUs $3.00 (1.5 GPU-hours)"
    assert "(Runway $0.00, GPUs $3.00)" in view.summary(stats)
    assert {"provider": "WAN", "dollars": 3.0} in view.spend_rows(stats)
    assert ("GPU time (REELROUTE_GPU_HOUR_COST)", "gpu") in budgets_view.paid_choices()
    said = budgets_view.set_cap(engine, provider="gpu", group_id=None, period="day", dollars=10)
    assert said == "Cap set: **$10.00 per day** for GPU time (REELROUTE_GPU_HOUR_COST)."
    assert any(row[0] == "GPU time" for row in budgets_view.budget_rows(engine))
