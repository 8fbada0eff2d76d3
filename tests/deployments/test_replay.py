"""`reelroute replay`: a day through the real routing, dispatch order and budgets, on a simulated
clock; figures checked by hand on a small trace, and the same trace and seed give the same."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelroute.deployments.cli import app
from reelroute.deployments.replay import (
    OutageSpec,
    Outcome,
    ReplayOptions,
    TraceError,
    read_trace,
    reference_day,
    replay,
    write_trace,
)
from reelroute.models.core.catalogue import CATALOGUE
from reelroute.models.core.enums import InferenceProvider

SECONDS = {  # each provider's true time for every task of the small trace
    "wan_local": "1800",
    "runway_gen4_turbo": "240",
    "runway_gen4.5": "300",
    "runway_veo3.1_fast": "300",
    "runway_veo3.1": "400",
}


def small_trace(path: Path) -> Path:
    """Three tasks at 09:00: a normal one (due 13:00), an urgent one (due 09:20) and a
    high-quality one (due 12:00)."""
    rows = [
        {"created_at": "2026-11-27T09:00:00+00:00", "group": group, "priority": priority}
        | {"deadline_seconds": "", "provider": "auto", "duration_s": "5", "note": "ignored"}
        | {f"seconds_{name}": value for name, value in SECONDS.items()}
        for group, priority in (("a", "normal"), ("b", "urgent"), ("c", "high_quality"))
    ]
    write_trace(path, rows)
    return path


def outcomes(path: Path, policies: list[str], **options) -> dict[str, Outcome]:
    tasks = read_trace(path)
    found = replay(tasks, ReplayOptions(gpus=1, default_concurrency=1, **options), policies)
    return {outcome.policy: outcome for outcome in found}


def test_the_small_trace_figures_by_hand(tmp_path):
    results = outcomes(
        small_trace(tmp_path / "day.csv"),
        ["deadline", "threshold", "all-gen4", "all-wan", "hindsight"],
    )
    deadline = results["deadline"]
    # Wan makes the normal one (free); Gen-4 Turbo the urgent one (5 s: 25 credits); the
    # cheapest of the Veo family the high-quality one (Veo 3.1 Fast; Veo makes 4, 6 or 8 s:
    # 6 s at 15 credits a second, 90 credits).
    assert deadline.per_provider == {
        "wan_local": 1,
        "runway_gen4_turbo": 1,
        "runway_veo3.1_fast": 1,
    }
    assert (deadline.spend_dollars, deadline.late) == (1.15, 0)
    assert deadline.minutes_p50 == {"high_quality": 5.0, "normal": 30.0, "urgent": 4.0}
    # The seed's rule: Veo 3.1 (6 s at 40 credits a second) for high quality.
    assert results["threshold"].spend_dollars == 2.65 and results["threshold"].late == 0
    # Gen-4 Turbo, one at a time, earliest due first: done 09:04, 09:08, 09:12.
    gen4 = results["all-gen4"]
    assert (gen4.spend_dollars, gen4.late) == (0.75, 0)
    assert gen4.minutes_p50 == {"high_quality": 8.0, "normal": 12.0, "urgent": 4.0}
    # One GPU, earliest due first: the urgent one 09:00-09:30 (late), then 10:00, 10:30.
    wan = results["all-wan"]
    assert (wan.spend_dollars, wan.late, wan.on_time_rate) == (0.0, 1, 0.6667)
    assert wan.minutes_p50 == {"high_quality": 60.0, "normal": 90.0, "urgent": 30.0}
    assert results["hindsight"].spend_dollars == 1.15


def test_a_daily_budget_is_honoured_in_the_replay(tmp_path):
    path = small_trace(tmp_path / "day.csv")
    capped = outcomes(path, ["deadline"], budgets={InferenceProvider.runway_veo3_1_fast: 0.8})
    # No room for Veo 3.1 Fast: the next of the Veo family.
    assert capped["deadline"].per_provider["runway_veo3.1"] == 1


def test_the_same_trace_and_seed_give_the_same_figures(tmp_path):
    rows = reference_day(60, seed=3, day=datetime(2026, 11, 27, tzinfo=UTC))
    for row in rows:  # leave the true durations to the seed
        for provider in CATALOGUE:
            del row[f"seconds_{provider.value}"]
    path = tmp_path / "day.csv"
    write_trace(path, rows)
    runner = CliRunner()
    argv = ["replay", str(path), "--gpus", "2", "--policy", "deadline", "--policy", "threshold"]
    first = runner.invoke(app, [*argv, "--seed", "7", "--json"])
    second = runner.invoke(app, [*argv, "--seed", "7", "--json"])
    other = runner.invoke(app, [*argv, "--seed", "8", "--json"])
    assert first.exit_code == 0, first.output
    assert first.output == second.output
    assert first.output != other.output
    figures = json.loads(first.output)
    assert [f["policy"] for f in figures] == ["deadline", "threshold", "hindsight"]
    assert all(f["tasks"] == 60 for f in figures)


def test_the_table_names_every_policy(tmp_path):
    result = CliRunner().invoke(
        app, ["replay", str(small_trace(tmp_path / "t.csv")), "--runway-concurrency", "1"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "3 tasks, 4 GPU(s), Runway concurrency 1"
    assert lines[1].startswith("deadline   $    1.15  late   0/3 on time 100.0%")
    assert lines[2].startswith("hindsight  $    1.15")


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as file:
        csv.writer(file).writerows([["created_at", "group"], ["2026-11-27T09:00:00Z", "g"]])
    with pytest.raises(TraceError, match="missing column\\(s\\) priority, duration_s"):
        read_trace(path)
    result = CliRunner().invoke(app, ["replay", str(path)])
    assert result.exit_code == 2
    assert "cannot replay" in result.output and "priority, duration_s" in result.output


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("created_at", "2026-11-27T09:00:00", "row 2: created_at '2026-11-27T09:00:00' needs a"),
        ("priority", "soon", "row 2: 'soon' is not a valid GroupPriority"),
        ("provider", "veo9", "row 2: 'veo9' is not a valid InferenceProvider"),
    ],
)
def test_a_bad_row_is_named(tmp_path, field, value, problem):
    path = small_trace(tmp_path / "day.csv")
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    rows[0][field] = value
    write_trace(path, rows)
    with pytest.raises(TraceError, match=problem.replace("(", "\\(")):
        read_trace(path)


def reference(path: Path, tasks: int = 300) -> Path:
    write_trace(path, reference_day(tasks, seed=1, day=datetime(2026, 11, 27, tzinfo=UTC)))
    return path


def test_an_outage_fails_no_task_and_the_breaker_saves_the_deadlines(tmp_path):
    path = reference(tmp_path / "day.csv")
    outage = (OutageSpec.parse("gen4_turbo@12:00+45m"),)
    tasks = read_trace(path)
    run = {
        breakers: replay(tasks, ReplayOptions(outages=outage, breakers=breakers), ["deadline"])[0]
        for breakers in (True, False)
    }
    calm = replay(tasks, ReplayOptions(), ["deadline"])[0]
    assert calm.attempts_failed == 0
    for outcome in run.values():
        assert outcome.not_run == 0  # every task got its video
        assert outcome.attempts_failed > 0
    # With breakers a few attempts fail and the rest go elsewhere; without, every waiting item
    # keeps trying the model that is down.
    assert run[True].attempts_failed < run[False].attempts_failed
    assert run[True].late < run[False].late
    assert run[True].per_provider.get("runway_gen4_turbo", 0) > 0  # it came back after


def test_the_outage_option_is_checked(tmp_path):
    path = str(small_trace(tmp_path / "t.csv"))
    result = CliRunner().invoke(app, ["replay", path, "--outage", "gen4_turbo@12:00"])
    assert result.exit_code == 2
    assert "write MODEL@HH:MM+DURATION" in result.output
    result = CliRunner().invoke(
        app, ["replay", path, "--outage", "gen4_turbo@09:00+1h", "--no-breakers"]
    )
    assert result.exit_code == 0, result.output
    assert "gen4_turbo down 09:00+60 min, breakers off" in result.output.splitlines()[0]


def test_a_model_with_no_capacity_is_never_chosen(tmp_path):
    path = small_trace(tmp_path / "day.csv")
    results = outcomes(path, ["deadline", "all-gen4"], runway_concurrency={"gen4_turbo": 0})
    # Routing skips Gen-4 Turbo: the urgent task goes to the next model that is fast enough.
    assert "runway_gen4_turbo" not in results["deadline"].per_provider
    assert results["deadline"].not_run == 0
    # Tasks named for it never run, and say so.
    assert (results["all-gen4"].not_run, results["all-gen4"].late) == (3, 3)


# --- videos that are not kept ----------------------------------------------------------------


def test_a_rejected_wan_video_is_made_again_and_paid_for(tmp_path):
    """The small trace's normal task goes to Wan; with Wan kept 0 % its video is rejected and
    made again on the next option (Gen-4 Turbo, 25 credits), 4 minutes later."""
    path = small_trace(tmp_path / "day.csv")
    kept = outcomes(path, ["deadline"])["deadline"]
    redone = outcomes(path, ["deadline"], acceptance={InferenceProvider.wan_local: 0.0})
    day = redone["deadline"]
    assert (kept.redos, day.redos) == (0, 1)
    assert day.spend_dollars == round(kept.spend_dollars + 0.25, 2)
    assert day.per_provider == {"runway_gen4_turbo": 2, "runway_veo3.1_fast": 1}
    assert day.minutes_p50["normal"] == kept.minutes_p50["normal"] + 4  # 30 min, then 4 more
    assert "redone 1" in day.line()


def test_a_trace_gives_each_tasks_chance_of_being_kept(tmp_path):
    with small_trace(tmp_path / "day.csv").open() as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        row["kept_wan_local"] = "0"
    write_trace(tmp_path / "kept.csv", rows)
    assert outcomes(tmp_path / "kept.csv", ["deadline"])["deadline"].redos == 1
    rows[0]["kept_wan_local"] = "1.5"
    write_trace(tmp_path / "bad.csv", rows)
    with pytest.raises(TraceError, match=r"row 2: kept_wan_local 1.5 is not in 0-1"):
        read_trace(tmp_path / "bad.csv")


def test_routing_that_counts_redos_sends_the_groups_wan_does_badly_to_runway(tmp_path):
    """Twelve customers whose Wan videos are kept 50 % of the time on average (10 % to 90 %),
    each with 20 judged Wan videos before the day: counting redos, the customers whose Wan
    videos are mostly redone go straight to Runway, and Wan's GPUs make videos that are kept."""
    rows = reference_day(
        300, seed=1, day=datetime(2026, 11, 27, tzinfo=UTC), customers=12, wan_kept=0.5
    )
    write_trace(tmp_path / "day.csv", rows)
    tasks = read_trace(tmp_path / "day.csv")
    day = {
        counted: replay(tasks, ReplayOptions(count_redos=counted, history=20), ["deadline"])[0]
        for counted in (False, True)
    }
    assert day[True].redos < day[False].redos
    assert day[True].spend_dollars < day[False].spend_dollars
    assert day[True].late <= day[False].late
    assert day[True].per_provider["wan_local"] > day[False].per_provider["wan_local"]


def test_the_acceptance_options_are_checked_and_shown(tmp_path):
    path = str(small_trace(tmp_path / "t.csv"))
    bad = CliRunner().invoke(app, ["replay", path, "--acceptance", "wan_local=1.2"])
    assert bad.exit_code == 2 and "each share is between 0 and 1" in bad.output
    result = CliRunner().invoke(
        app, ["replay", path, "--acceptance", "wan_local=0", "--no-count-redos"]
    )
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.endswith("; kept wan_local 0%, redos not counted by routing"), first
    assert "redone 1" in result.output


def test_acceptance_per_wan_preset_in_the_replay(tmp_path):
    """Two GPU hosts, one `fast`, one `full`; fast videos are never kept, full ones always: only
    the videos a fast host made are made again, and routing learns it per preset."""
    from reelroute.deployments.replay import GpuHostSpec

    rows = reference_day(60, seed=2, day=datetime(2026, 11, 27, tzinfo=UTC), customers=2)
    for row in rows:
        row["priority"], row["provider"] = "normal", "auto"
    write_trace(tmp_path / "day.csv", rows)
    tasks = read_trace(tmp_path / "day.csv")
    hosts = (GpuHostSpec("fast-host", 1, "fast", 0.2), GpuHostSpec("full-host", 1, "full", 1.0))
    fast_bad = {
        (InferenceProvider.wan_local, "fast"): 0.0,
        (InferenceProvider.wan_local, "full"): 1.0,
    }
    day = replay(tasks, ReplayOptions(gpu_hosts=hosts, preset_acceptance=fast_bad), ["deadline"])[0]
    good = replay(tasks, ReplayOptions(gpu_hosts=hosts), ["deadline"])[0]
    assert good.redos == 0 and day.redos > 0
    # With every host on `fast`, foresight knows which videos would be made again: those go to
    # Gen-4 Turbo at once (what they would have cost anyway), and none is made twice.
    fast_only = ReplayOptions(
        gpu_hosts=(hosts[0],), preset_acceptance={(InferenceProvider.wan_local, "fast"): 0.5}
    )
    redone, foresight = replay(tasks, fast_only, ["deadline", "foresight"])
    assert foresight.policy == "foresight" and foresight.redos < redone.redos
    result = CliRunner().invoke(
        app,
        ["replay", str(tmp_path / "day.csv"), "--gpu-host", "fast-host:1:fast:0.2",
         "--gpu-host", "full-host:1:full:1", "--acceptance", "wan_local@fast=0,wan_local@full=1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "kept wan_local@fast 0%, wan_local@full 100%" in result.output.splitlines()[0]
