"""How many GPUs to run, and when: `reelroute replay --sweep-gpus` and `reelroute plan`.

Both replay the day through the real routing and dispatch code (deployments.replay) and price
the GPUs beside Runway:

- **the sweep** replays the day once per GPU count and billing: `always-on` (the GPUs cost every
  hour of the day, busy or idle; routing treats a Wan video as free) and `per-second` (they cost
  only the seconds they make videos; routing weighs those seconds against the paid models). One
  line per count: Runway's spend, the GPUs' bill, the total and the late items; the cheapest
  count with no late item is marked for each billing.
- **the plan** gives a GPU count for each hour of the UTC day (a schedule to scale rented GPUs
  up and down), then replays the day on that schedule, billed for the hours each GPU runs, and
  sets it beside the best fixed count.

How the plan counts an hour: the Wan work that may go to Wan (auto-routed tasks of groups that
allow it, whose deadline is longer than their Wan time) arriving in that hour, in GPU-seconds at
the hosts' speed, is spread over whole GPUs; the last, partly busy GPU runs only when the
videos it makes save more than its hour costs (each kept video saves the Gen-4 Turbo credits it
would have cost; a video made again costs both). A GPU that pays for itself even when fully
busy is the condition for any GPU at all: at the seed's 20-40 min per video, one GPU makes two
videos an hour, $0.50 of Gen-4 Turbo, and no rented GPU at $2.50 an hour pays. The replay then
says what the schedule really spends and whether anything was late (the deadline policy sends
to Runway what the GPUs cannot do in time).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelroute.deployments.replay import Outcome, ReplayOptions, TraceTask, replay
from reelroute.models.core import InferenceProvider, info
from reelroute.models.planning import RoutingSettings, default_allowed

BILLINGS = ("always-on", "per-second")
WAN = InferenceProvider.wan_local
TURBO = InferenceProvider.runway_gen4_turbo


def parse_counts(text: str) -> list[int]:
    """`0..16`, `0..16/2` (every second), or `1,2,4,8`: GPU counts to sweep (ValueError says
    how to write them)."""
    how = f"--sweep-gpus {text!r}: write FROM..TO (0..16), FROM..TO/STEP (0..16/2) or 1,2,4"
    try:
        if ".." in text:
            span, _, step = text.partition("/")
            low, _, high = span.partition("..")
            counts = list(range(int(low), int(high) + 1, int(step or 1)))
        else:
            counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(how) from None
    if not counts or min(counts) < 0 or len(counts) > 200:
        raise ValueError(how)
    return counts


@dataclass(frozen=True)
class SweepLine:
    """One GPU count's day under one billing."""

    gpus: int
    billing: str
    outcome: Outcome

    def as_json(self) -> dict[str, Any]:
        """Plain data: the count, the billing and the figures."""
        found = self.outcome
        return {
            "gpus": self.gpus,
            "billing": self.billing,
            "runway_dollars": found.spend_dollars,
            "gpu_dollars": found.gpu_dollars,
            "total_dollars": found.total_dollars,
            "late": found.late,
            "tasks": found.tasks,
            "wan_videos": found.per_provider.get(WAN.value, 0),
            "gpu_hours_on": found.gpu_hours_on,
            "gpu_busy_hours": round(found.gpu_seconds / 3600, 2),
        }


def _with_gpus(options: ReplayOptions, gpus: int, billing: str) -> ReplayOptions:
    """The options with `gpus` GPUs (the one GPU host's, if any) and `billing`."""
    hosts = options.gpu_hosts
    if hosts:
        if len(hosts) > 1:
            raise ValueError("the sweep scales one GPU host (--gpu-host) or --gpus, not several")
        hosts = (dataclasses.replace(hosts[0], gpus=max(1, gpus)),)
    schedule = (0,) * 24 if gpus == 0 else ()
    return dataclasses.replace(
        options, gpus=gpus, gpu_hosts=hosts, gpu_billing=billing, gpu_schedule=schedule
    )


def _one(case: tuple[list[TraceTask], ReplayOptions, int, str]) -> SweepLine:
    tasks, options, gpus, billing = case
    [outcome] = replay(tasks, _with_gpus(options, gpus, billing), ["deadline"])
    return SweepLine(gpus, billing, outcome)


def _run(cases: list[tuple[list[TraceTask], ReplayOptions, int, str]], workers: int) -> list[Any]:
    if workers <= 1 or len(cases) == 1:
        return [_one(case) for case in cases]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_one, cases))


def sweep_gpus(
    tasks: list[TraceTask],
    options: ReplayOptions,
    counts: Sequence[int],
    *,
    billings: Sequence[str] = BILLINGS,
    workers: int = 2,
) -> list[SweepLine]:
    """The day replayed with each GPU count under each billing, at options.gpu_hour_cost."""
    cases = [(tasks, options, gpus, billing) for billing in billings for gpus in counts]
    return list(_run(cases, workers))


def cheapest(lines: Sequence[SweepLine], billing: str) -> SweepLine | None:
    """The line of `billing` with the lowest total and no late item (fewest GPUs on a tie)."""
    on_time = [line for line in lines if line.billing == billing and line.outcome.late == 0]
    return min(on_time, key=lambda line: (line.outcome.total_dollars, line.gpus), default=None)


def sweep_table(lines: Sequence[SweepLine]) -> str:
    """The sweep as text: one line per count, both billings side by side, the cheapest on
    time marked with `*`."""
    by = {(line.gpus, line.billing): line for line in lines}
    billings = [b for b in BILLINGS if any(line.billing == b for line in lines)]
    best = {b: cheapest(lines, b) for b in billings}
    head = "  GPUs | " + " | ".join(f"{b:>10}: Runway $   GPUs $   total $  late" for b in billings)
    rows = [head]
    for gpus in sorted({line.gpus for line in lines}):
        cells = []
        for billing in billings:
            line = by.get((gpus, billing))
            if line is None:
                cells.append(" " * 47)
                continue
            found = line.outcome
            mark = "*" if best[billing] is line else " "
            cells.append(
                f"{mark:>11} {found.spend_dollars:9.2f} {found.gpu_dollars:8.2f} "
                f"{found.total_dollars:9.2f} {found.late:5}"
            )
        rows.append(f"  {gpus:>4} | " + " | ".join(cells))
    for billing in billings:
        line = best[billing]
        rows.append(
            f"  cheapest on time, {billing}: "
            + (
                f"{line.gpus} GPU(s), ${line.outcome.total_dollars:.2f}"
                if line
                else "none (every count has late items)"
            )
        )
    return "\n".join(rows)


def sweep_chart(lines: Sequence[SweepLine], path: Path, title: str) -> None:
    """The sweep as a PNG chart: the total per GPU count for each billing (and Runway's share
    of it), late days drawn hollow, the cheapest on time ringed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the `charts` extra
        raise ValueError("--chart needs matplotlib: pip install 'reelroute[charts]'") from None
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=120)
    colours = {"always-on": "tab:blue", "per-second": "tab:orange"}
    for billing in BILLINGS:
        mine = sorted((x for x in lines if x.billing == billing), key=lambda x: x.gpus)
        if not mine:
            continue
        colour = colours[billing]
        gpus = [x.gpus for x in mine]
        axes.plot(
            gpus,
            [x.outcome.total_dollars for x in mine],
            color=colour,
            label=f"total, GPUs {billing}",
        )
        axes.plot(
            gpus,
            [x.outcome.spend_dollars for x in mine],
            color=colour,
            linestyle=":",
            label=f"Runway's share, GPUs {billing}",
        )
        for line in mine:
            late = line.outcome.late > 0
            axes.plot(
                line.gpus,
                line.outcome.total_dollars,
                marker="o",
                markerfacecolor="white" if late else colour,
                markeredgecolor=colour,
            )
        best = cheapest(lines, billing)
        if best is not None:
            axes.plot(
                best.gpus,
                best.outcome.total_dollars,
                marker="o",
                markersize=14,
                markerfacecolor="none",
                markeredgecolor="black",
            )
    axes.set_xlabel("GPUs running Wan")
    axes.set_ylabel("dollars for the day")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


@dataclass(frozen=True)
class Plan:
    """GPUs for each hour of the UTC day, and what the day costs on them."""

    schedule: tuple[int, ...]
    """GPUs per hour, 00:00 to 23:00 UTC."""
    outcome: Outcome
    """The day replayed on the schedule, billed for the hours each GPU runs."""
    fixed: SweepLine | None
    """The cheapest fixed count on time (always-on), to compare."""
    video_value: float
    """Dollars a Wan video saves (Gen-4 Turbo's price, times the share of Wan videos kept)."""
    wan_seconds: float
    """A Wan video's mean GPU seconds at the hosts' speed."""

    @property
    def gpu_hours(self) -> int:
        """GPU-hours the schedule runs."""
        return sum(self.schedule)

    def as_json(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "schedule": list(self.schedule),
            "gpu_hours": self.gpu_hours,
            "runway_dollars": self.outcome.spend_dollars,
            "gpu_dollars": self.outcome.gpu_dollars,
            "total_dollars": self.outcome.total_dollars,
            "late": self.outcome.late,
            "fixed": self.fixed.as_json() if self.fixed else None,
            "video_value_dollars": round(self.video_value, 4),
            "wan_seconds": round(self.wan_seconds, 1),
        }

    def text(self) -> str:
        """The schedule and its figures as lines."""
        hours = [f"  {hour:02d}:00  {gpus:>3} GPU(s)" for hour, gpus in enumerate(self.schedule)]
        found = self.outcome
        lines = [
            "GPUs per hour (UTC):",
            *hours,
            f"a Wan video: {self.wan_seconds:.0f} GPU seconds, saves ${self.video_value:.3f} of "
            "Gen-4 Turbo",
            f"on this schedule: {self.gpu_hours} GPU-hours ${found.gpu_dollars:.2f} + Runway "
            f"${found.spend_dollars:.2f} = ${found.total_dollars:.2f}, late {found.late}",
        ]
        if self.fixed is not None:
            fixed = self.fixed.outcome
            lines.append(
                f"the best fixed count on time: {self.fixed.gpus} GPU(s) always on, "
                f"${fixed.gpu_dollars:.2f} + ${fixed.spend_dollars:.2f} = "
                f"${fixed.total_dollars:.2f}"
            )
        return "\n".join(lines)


def _wan_time(options: ReplayOptions) -> float:
    """The hosts' time for a video against the trace's Wan time (the one host's, or 1)."""
    return options.gpu_hosts[0].time if len(options.gpu_hosts) == 1 else 1.0


def wan_work_by_hour(tasks: list[TraceTask], options: ReplayOptions) -> dict[int, list[float]]:
    """The Wan GPU-seconds of each task that may go to Wan, by the hour it arrives: tasks
    routed by the policy (or naming Wan) whose group allows Wan and whose deadline outlasts
    their Wan time."""
    deadlines = RoutingSettings()
    speed = _wan_time(options)
    work: dict[int, list[float]] = defaultdict(list)
    for task in tasks:
        if task.provider not in (None, WAN) or WAN not in default_allowed(task.priority):
            continue
        seconds = task.seconds[WAN] * speed
        deadline = task.deadline_seconds or deadlines.deadline_seconds(task.priority)
        if task.provider is WAN or seconds < deadline:
            work[task.created_at.hour].append(seconds)
    return work


def hourly_schedule(
    tasks: list[TraceTask], options: ReplayOptions, price: float
) -> tuple[tuple[int, ...], float, float]:
    """(GPUs per hour, what a Wan video saves in dollars, a Wan video's mean GPU seconds)."""
    work = wan_work_by_hour(tasks, options)
    every = [s for hour in work.values() for s in hour]
    if not every:
        return (0,) * 24, 0.0, 0.0
    mean = sum(every) / len(every)
    kept = options.acceptance.get(WAN, 1.0)
    preset = options.gpu_hosts[0].preset if len(options.gpu_hosts) == 1 else ""
    kept = options.preset_acceptance.get((WAN, preset), kept)
    duration = next((t.duration_s for t in tasks if t.duration_s), 5)
    value = info(TURBO).credits_for(duration, None) / 100 * kept
    full_hour = 3600 / mean * value  # what a GPU busy all hour saves
    schedule = []
    for hour in range(24):
        load = sum(work.get(hour, [])) / 3600  # GPU-hours of work arriving
        whole = math.floor(load)
        partial = load - whole
        gpus = whole if full_hour >= price else 0
        if full_hour >= price and partial > 0 and partial * full_hour >= price:
            gpus += 1
        schedule.append(gpus)
    return tuple(schedule), value, mean


def plan_gpus(
    tasks: list[TraceTask],
    options: ReplayOptions,
    *,
    fixed_counts: Sequence[int] | None = None,
    workers: int = 2,
) -> Plan:
    """The hourly schedule for the day at options.gpu_hour_cost, replayed, beside the best fixed
    count of `fixed_counts` (0 to the schedule's peak plus two when not given)."""
    price = options.gpu_hour_cost
    schedule, value, mean = hourly_schedule(tasks, options, price)
    counts = list(fixed_counts) if fixed_counts is not None else list(range(max(schedule) + 3))
    planned = dataclasses.replace(options, gpu_schedule=schedule, gpu_billing="always-on")
    if len(options.gpu_hosts) == 1:
        host = options.gpu_hosts[0]
        planned = dataclasses.replace(
            planned, gpu_hosts=(dataclasses.replace(host, gpus=max(1, max(schedule))),)
        )
    [outcome] = replay(tasks, planned, ["deadline"])
    lines = sweep_gpus(tasks, options, counts, billings=("always-on",), workers=workers)
    return Plan(schedule, outcome, cheapest(lines, "always-on"), value, mean)
