"""What a day costs with the GPUs priced: the replay's GPU bill under both billings, the sweep
over GPU counts (`reelroute replay --sweep-gpus`) and the hourly plan (`reelroute plan`), with
their arithmetic checked by hand on small traces."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelroute.deployments.cli import app
from reelroute.deployments.replay import Outcome, ReplayOptions, read_trace, replay, write_trace
from reelroute.deployments.sweep import (
    cheapest,
    hourly_schedule,
    parse_counts,
    plan_gpus,
    sweep_chart,
    sweep_gpus,
)
from reelroute.models.core.enums import GroupPriority, InferenceProvider
from tests.deployments.test_replay import small_trace

WAN = "wan_local"


def day(path: Path, arrivals: dict[str, int], wan_seconds: float = 360) -> Path:
    """Normal tasks (due in 4 h) arriving at each `HH:MM` of `arrivals`, that many at a time;
    Wan takes `wan_seconds` on each, Gen-4 Turbo 4 minutes."""
    rows = [
        {
            "created_at": f"2026-11-27T{at}:00+00:00",
            "group": f"g{at}",
            "priority": "normal",
            "deadline_seconds": "",
            "provider": "auto",
            "duration_s": "5",
            "seconds_wan_local": str(wan_seconds),
            "seconds_runway_gen4_turbo": "240",
            "seconds_runway_gen4.5": "300",
            "seconds_runway_veo3.1_fast": "300",
            "seconds_runway_veo3.1": "400",
        }
        for at, count in arrivals.items()
        for _ in range(count)
    ]
    write_trace(path, rows)
    return path


def one(path: Path, **options) -> Outcome:
    [outcome] = replay(
        read_trace(path), ReplayOptions(gpus=1, default_concurrency=1, **options), ["deadline"]
    )
    return outcome


def test_always_on_gpus_cost_every_hour_of_the_day_and_wan_videos_nothing_more(tmp_path):
    found = one(small_trace(tmp_path / "day.csv"), gpu_hour_cost=2.5)
    assert found.per_provider[WAN] == 1  # routing treats the Wan video as free
    assert found.gpu_hours_on == 24  # one GPU, one UTC day
    assert found.gpu_dollars == 24 * 2.5
    assert found.gpu_seconds == 1800  # the Wan video's 30 minutes, claim to video
    assert found.gpu_busy_dollars == pytest.approx(1800 * 2.5 / 3600)
    assert found.total_dollars == pytest.approx(found.spend_dollars + 60)


def test_per_second_gpus_dearer_than_gen4_turbo_get_no_video(tmp_path):
    # 30 minutes at $2.50 an hour is $1.25, Gen-4 Turbo $0.25: the normal task goes to Turbo
    found = one(small_trace(tmp_path / "day.csv"), gpu_hour_cost=2.5, gpu_billing="per-second")
    assert WAN not in found.per_provider
    assert found.per_provider["runway_gen4_turbo"] == 2
    assert found.gpu_seconds == 0 and found.gpu_dollars == 0
    assert found.late == 0


def test_per_second_gpus_cheaper_than_gen4_turbo_are_billed_their_seconds(tmp_path):
    # at $0.20 an hour the 30 minutes cost $0.10: Wan keeps the task
    found = one(small_trace(tmp_path / "day.csv"), gpu_hour_cost=0.2, gpu_billing="per-second")
    assert found.per_provider[WAN] == 1
    assert found.gpu_dollars == pytest.approx(round(1800 * 0.2 / 3600, 2))  # seconds x price
    assert found.total_dollars == pytest.approx(found.spend_dollars + 0.1)


@pytest.mark.parametrize(
    ("text", "counts"),
    [("0..3", [0, 1, 2, 3]), ("0..16/4", [0, 4, 8, 12, 16]), ("4,1,2,2", [1, 2, 4])],
)
def test_the_counts_to_sweep_are_read(text, counts):
    assert parse_counts(text) == counts


@pytest.mark.parametrize("text", ["", "a..b", "3..1", "-1..2", "1,x"])
def test_bad_counts_say_how_to_write_them(text):
    with pytest.raises(ValueError, match=r"FROM\.\.TO"):
        parse_counts(text)


def test_the_sweep_prices_each_count_under_both_billings(tmp_path):
    path = day(tmp_path / "day.csv", {"09:00": 6, "15:00": 3}, wan_seconds=600)
    options = ReplayOptions(default_concurrency=2, gpu_hour_cost=0.5)
    lines = sweep_gpus(read_trace(path), options, [0, 1, 2], workers=1)
    assert [(line.gpus, line.billing) for line in lines] == [
        (0, "always-on"), (1, "always-on"), (2, "always-on"),
        (0, "per-second"), (1, "per-second"), (2, "per-second"),
    ]  # fmt: skip
    for line in lines:
        found = line.outcome
        assert found.tasks == 9
        if line.billing == "always-on":  # hours x price: every hour of the day
            assert found.gpu_dollars == pytest.approx(line.gpus * 24 * 0.5)
        else:  # GPU seconds x price / 3,600
            assert found.gpu_dollars == pytest.approx(round(found.gpu_seconds * 0.5 / 3600, 2))
        assert found.total_dollars == pytest.approx(found.spend_dollars + found.gpu_dollars)
    by = {(line.gpus, line.billing): line.outcome for line in lines}
    # no GPU: every task on Gen-4 Turbo ($0.25 each)
    assert by[(0, "always-on")].per_provider == {"runway_gen4_turbo": 9}
    assert by[(0, "always-on")].spend_dollars == 9 * 0.25
    # per second, a 10-minute Wan video costs $0.08 < $0.25: the GPUs make what they can
    assert by[(2, "per-second")].per_provider.get(WAN, 0) > 0
    best = cheapest(lines, "always-on")
    assert best is not None and best.gpus == 0  # 12 GPU-hours a day cost more than 9 videos
    best = cheapest(lines, "per-second")
    assert best is not None
    assert best.outcome.total_dollars == min(
        line.outcome.total_dollars
        for line in lines
        if line.billing == "per-second" and line.outcome.late == 0
    )
    sweep_chart(lines, tmp_path / "sweep.png", "a small day")
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_plan_runs_a_gpu_in_the_hours_whose_work_pays_for_it(tmp_path):
    # ten 6-minute Wan videos at 09:00: one GPU-hour of work, and a GPU busy all hour makes
    # ten videos, saving 10 x $0.25 = $2.50 of Gen-4 Turbo
    path = day(tmp_path / "day.csv", {"09:00": 10, "14:00": 3})
    tasks = read_trace(path)
    schedule, value, seconds = hourly_schedule(tasks, ReplayOptions(), 2.0)
    assert (value, seconds) == (0.25, 360)
    assert schedule[9] == 1  # $2.50 saved > $2.00
    assert schedule[14] == 0  # 3 videos: a GPU 30 % busy saves $0.75 < $2.00
    assert sum(schedule) == 1
    assert hourly_schedule(tasks, ReplayOptions(), 3.0)[0] == (0,) * 24  # never pays
    # 90 % kept: each video saves $0.225, a full hour $2.25
    kept = ReplayOptions(acceptance={InferenceProvider.wan_local: 0.9})
    assert hourly_schedule(tasks, kept, 2.3)[0] == (0,) * 24
    plan = plan_gpus(tasks, ReplayOptions(default_concurrency=2, gpu_hour_cost=2.0), workers=1)
    assert plan.schedule == schedule
    assert plan.outcome.gpu_hours_on == 1  # billed for the hour the GPU runs
    assert plan.outcome.gpu_dollars == 2.0
    assert plan.outcome.total_dollars == pytest.approx(plan.outcome.spend_dollars + 2.0)
    assert plan.outcome.per_provider.get(WAN, 0) > 0
    assert plan.fixed is not None and plan.fixed.gpus in (0, 1, 2, 3)


def test_urgent_work_wan_cannot_do_in_time_wants_no_gpu(tmp_path):
    path = day(tmp_path / "day.csv", {"09:00": 10}, wan_seconds=1800)
    urgent = [dataclasses.replace(task, priority=GroupPriority.urgent) for task in read_trace(path)]
    assert hourly_schedule(urgent, ReplayOptions(), 0.01)[0] == (0,) * 24


def test_the_sweep_and_the_plan_from_the_command_line(tmp_path):
    path = str(day(tmp_path / "day.csv", {"09:00": 10}))
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "replay",
            path,
            "--sweep-gpus",
            "0..1",
            "--gpu-hour-cost",
            "2",
            "--out",
            str(tmp_path / "s.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "cheapest on time, always-on" in result.output
    written = json.loads((tmp_path / "s.json").read_text())
    assert [(row["gpus"], row["billing"]) for row in written] == [
        (0, "always-on"), (1, "always-on"), (0, "per-second"), (1, "per-second"),
    ]  # fmt: skip
    assert written[1]["gpu_dollars"] == 48.0  # one GPU all day at $2
    result = runner.invoke(app, ["plan", path, "--gpu-hour-cost", "2", "--json"])
    assert result.exit_code == 0, result.output
    planned = json.loads(result.output)
    assert planned["schedule"][9] == 1 and planned["gpu_hours"] == 1
    assert planned["gpu_dollars"] == 2.0


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--sweep-gpus", "0..x", "--gpu-hour-cost", "2"], "FROM..TO"),
        (["--sweep-gpus", "0..2"], "give --gpu-hour-cost"),
        (["--plan"], "give --gpu-hour-cost"),
        (["--gpu-billing", "weekly"], "always-on or per-second"),
        (
            [
                "--sweep-gpus",
                "0..2",
                "--gpu-hour-cost",
                "2",
                "--gpu-host",
                "a:1:full:1",
                "--gpu-host",
                "b:1:fast:0.1",
            ],
            "one --gpu-host",
        ),
    ],
)
def test_the_gpu_options_are_checked(tmp_path, arguments, words):
    path = str(small_trace(tmp_path / "day.csv"))
    result = CliRunner().invoke(app, ["replay", path, *arguments])
    assert result.exit_code == 2
    assert words in result.output
