"""`reelroute replay TRACE.csv`: a day of work replayed through the real routing, dispatch-order
and budget code, on a simulated clock with simulated providers, in a throw-away database.

Each trace row is a task: when it arrived, its group and priority, its deadline, the provider
asked for (empty or `auto`: the routing policy decides), its length, and how long each provider
would really take (`seconds_<provider>`; missing ones are drawn from the catalogue's minutes
with the seed). The replay adds each batch with `add_batch` at its arrival time, lets the
dispatcher's own plan (`plan_dispatch`) start items as slots free, moves waiting items as the
dispatcher would (`reroute_waiting`), and completes each item after its true duration. The same
trace, options and seed always give the same figures.
"""

from __future__ import annotations

import csv
import heapq
import random
import statistics
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from reelroute.models.batches import add_batch
from reelroute.models.budgets import set_budget
from reelroute.models.catalogue import CATALOGUE
from reelroute.models.db import make_engine
from reelroute.models.dispatch import plan_dispatch
from reelroute.models.enums import (
    BudgetPeriod,
    BudgetScope,
    GroupPriority,
    InferenceProvider,
    ItemStatus,
    Pool,
)
from reelroute.models.estimates import Estimates
from reelroute.models.groups import create_group
from reelroute.models.lifecycle import claim_item, complete_item
from reelroute.models.limits import ModelLimits, RunwayLimits, store_limits
from reelroute.models.migrate import upgrade
from reelroute.models.replanning import reroute_waiting
from reelroute.models.routing import Policy
from reelroute.models.settings import Settings, load_settings
from reelroute.models.snapshot import build_snapshot, read_service_times
from reelroute.models.tables import Photo, VideoItem
from reelroute.models.tasks import TaskSpec

REQUIRED = ("created_at", "group", "priority", "duration_s")
WORKER = "replay"


class TraceError(ValueError):
    """The trace cannot be replayed; the message says what to fix."""


@dataclass(frozen=True)
class TraceTask:
    """One task of the trace."""

    row: int
    created_at: datetime
    group: str
    priority: GroupPriority
    deadline_seconds: int | None
    provider: InferenceProvider | None
    duration_s: int
    seconds: dict[InferenceProvider, float]
    """How long each provider truly takes for it."""


def _true_seconds(provider: InferenceProvider, rng: random.Random) -> float:
    low, high = CATALOGUE[provider].minutes
    return rng.uniform(low, high) * 60


def read_trace(path: Path, *, seed: int = 0) -> list[TraceTask]:
    """The tasks of a trace file, in arrival order (TraceError names what is wrong)."""
    rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
        if missing:
            raise TraceError(f"{path}: missing column(s) {', '.join(missing)}")
        tasks = [_task(number, row, rng) for number, row in enumerate(reader, start=2)]
    return sorted(tasks, key=lambda task: (task.created_at, task.row))


def _task(number: int, row: dict[str, str], rng: random.Random) -> TraceTask:
    where = f"row {number}"
    try:
        created = datetime.fromisoformat(row["created_at"].strip())
        if created.tzinfo is None:
            raise TraceError(f"{where}: created_at {row['created_at']!r} needs a time zone")
        priority = GroupPriority(row["priority"].strip())
        deadline = (row.get("deadline_seconds") or "").strip()
        asked = (row.get("provider") or "").strip()
        seconds = {}
        for provider in CATALOGUE:
            value = (row.get(f"seconds_{provider.value}") or "").strip()
            seconds[provider] = float(value) if value else _true_seconds(provider, rng)
        return TraceTask(
            row=number,
            created_at=created,
            group=row["group"].strip() or "trace",
            priority=priority,
            deadline_seconds=int(deadline) if deadline else None,
            provider=InferenceProvider(asked) if asked and asked != "auto" else None,
            duration_s=int(row["duration_s"]),
            seconds=seconds,
        )
    except (ValueError, KeyError) as error:
        if isinstance(error, TraceError):
            raise
        raise TraceError(f"{where}: {error}") from None


@dataclass(frozen=True)
class ReplayOptions:
    """The installation the day is replayed on."""

    gpus: int = 4
    runway_concurrency: dict[str, int] = field(default_factory=dict)
    """Per Runway model (`gen4_turbo`, `veo3.1`, ...); models not named get `default`."""
    default_concurrency: int = 5
    budgets: dict[InferenceProvider, float] = field(default_factory=dict)
    """Dollars per day per provider."""


@dataclass
class Outcome:
    """What a policy did with the day."""

    policy: str
    spend_dollars: float
    late: int
    tasks: int
    on_time_rate: float
    minutes_p50: dict[str, float]
    minutes_p95: dict[str, float]
    per_provider: dict[str, int]
    moves: int

    def line(self) -> str:
        """One line of the table."""
        times = ", ".join(
            f"{p} {self.minutes_p50[p]:.0f}/{self.minutes_p95[p]:.0f}" for p in self.minutes_p50
        )
        used = ", ".join(f"{p} {n}" for p, n in sorted(self.per_provider.items()))
        return (
            f"{self.policy:<10} ${self.spend_dollars:>8.2f}  late {self.late:>3}/{self.tasks} "
            f"on time {self.on_time_rate:>6.1%}  p50/p95 min: {times}  ({used}; moved "
            f"{self.moves})"
        )


class Simulation:
    """One replay of the day with one policy, on a fresh database."""

    def __init__(
        self, tasks: list[TraceTask], options: ReplayOptions, policy: str, folder: Path
    ) -> None:
        self.tasks, self.options = tasks, options
        self.hindsight = policy == "hindsight"
        self.policy = Policy.deadline if self.hindsight else Policy(policy)
        self.name = policy
        url = f"sqlite:///{folder / f'replay-{policy}.db'}"
        upgrade(url)
        self.engine = make_engine(url)
        self.settings: Settings = load_settings(
            _env_file=None,
            database_url=url,
            storage_url=str(folder / "storage"),
            gpu_slots=options.gpus,
            cloud_slots=sum(
                options.runway_concurrency.get(entry.model, options.default_concurrency)
                for entry in CATALOGUE.values()
                if entry.paid
            ),
            dispatch_lookahead=0,
            routing_policy="threshold" if self.policy is Policy.threshold else "deadline",
            default_provider=InferenceProvider.wan_local,
        )
        self.ids = {task.row: uuid.uuid4() for task in tasks}
        self.truth = {
            (self.ids[task.row], provider): seconds
            for task in tasks
            for provider, seconds in task.seconds.items()
        }
        self.moves = 0

    def limits(self) -> RunwayLimits:
        models = {
            entry.model: ModelLimits(
                max_concurrent=self.options.runway_concurrency.get(
                    entry.model, self.options.default_concurrency
                ),
                max_daily=None,
            )
            for entry in CATALOGUE.values()
            if entry.paid
        }
        return RunwayLimits(credit_balance=10**12, max_monthly_credits=10**12, models=models)

    def run(self) -> Outcome:
        start = self.tasks[0].created_at
        with Session(self.engine, expire_on_commit=False) as session:
            store_limits(session, self.limits())
            for provider, dollars in self.options.budgets.items():
                set_budget(
                    session,
                    scope=BudgetScope.provider,
                    period=BudgetPeriod.day,
                    cap_dollars=dollars,
                    provider=provider,
                )
            session.commit()
            self._loop(session, start)
            items = list(session.exec(select(VideoItem)).all())
        self.engine.dispose()
        return self._outcome(items)

    def _estimates(self, session: Session) -> Estimates:
        measured = read_service_times(session, self.settings)
        if not self.hindsight:
            return measured
        return Estimates(times=measured.times, pixels=measured.pixels, known=self.truth)

    def _loop(self, session: Session, now: datetime) -> None:
        arrivals = list(self.tasks)
        done: list[tuple[datetime, str, uuid.UUID, int]] = []
        groups: dict[str, uuid.UUID] = {}
        photos: dict[str, uuid.UUID] = {}
        limits = self.limits()
        while arrivals or done:
            now = min([*(d[0] for d in done[:1]), *(a.created_at for a in arrivals[:1])])
            while done and done[0][0] <= now:
                _, _, item_id, attempt = heapq.heappop(done)
                item = session.get(VideoItem, item_id)
                assert item is not None
                credits = CATALOGUE[item.inference_provider].credits_for(
                    item.duration_s, item.frame_num
                )
                complete_item(
                    session,
                    item_id=item_id,
                    attempt=attempt,
                    worker_id=WORKER,
                    output_path="replay",
                    cost_credits=credits,
                    now=now,
                )
            batch = [a for a in arrivals if a.created_at <= now]
            arrivals = arrivals[len(batch) :]
            for name, tasks in _by_group(batch).items():
                group_id = groups.get(name) or self._group(session, name, tasks[0], groups, photos)
                snapshot = build_snapshot(
                    session, self.settings, now=now, estimates=self._estimates(session)
                )
                add_batch(
                    session,
                    group_id=group_id,
                    settings=self.settings,
                    tasks=[self._spec(task, photos[name]) for task in tasks],
                    now=now,
                    snapshot=snapshot,
                    policy=self.policy,
                    item_ids=[self.ids[task.row] for task in tasks],
                )
            if self.policy is Policy.deadline:
                snapshot = build_snapshot(
                    session, self.settings, now=now, estimates=self._estimates(session)
                )
                self.moves += len(reroute_waiting(session, snapshot))
            for pool in Pool:
                for planned in plan_dispatch(
                    session, pool=pool, settings=self.settings, limits=limits, now=now
                ):
                    claim = claim_item(
                        session,
                        item_id=planned.item_id,
                        attempt=planned.attempt,
                        worker_id=WORKER,
                        settings=self.settings,
                        now=now,
                    )
                    assert claim is not None
                    took = self.truth[(planned.item_id, planned.inference_provider)]
                    finish = now + timedelta(seconds=took)
                    heapq.heappush(
                        done, (finish, str(planned.item_id), planned.item_id, planned.attempt)
                    )
            session.commit()

    def _group(
        self,
        session: Session,
        name: str,
        first: TraceTask,
        groups: dict[str, uuid.UUID],
        photos: dict[str, uuid.UUID],
    ) -> uuid.UUID:
        group = create_group(session, name=name, priority=first.priority)
        photo = Photo(group_id=group.id, storage_path="photos/replay")
        session.add(photo)
        session.flush()
        groups[name], photos[name] = group.id, photo.id
        return group.id

    @staticmethod
    def _spec(task: TraceTask, photo_id: uuid.UUID) -> TaskSpec:
        return TaskSpec(
            photo_id=photo_id,
            prompt=f"trace row {task.row}",
            duration_s=task.duration_s,
            inference_provider=task.provider.value if task.provider else None,
            deadline_seconds=task.deadline_seconds,
        )

    def _outcome(self, items: list[VideoItem]) -> Outcome:
        priority_of = {self.ids[task.row]: task.priority.value for task in self.tasks}
        minutes: dict[str, list[float]] = defaultdict(list)
        late = 0
        for item in items:
            assert item.finished_at is not None and item.status is ItemStatus.completed
            minutes[priority_of[item.id]].append(
                (item.finished_at - item.created_at).total_seconds() / 60
            )
            late += item.finished_at > item.due_at
        spend = sum(item.cost_credits or 0 for item in items) / 100
        return Outcome(
            policy=self.name,
            spend_dollars=round(spend, 2),
            late=late,
            tasks=len(items),
            on_time_rate=round(1 - late / len(items), 4) if items else 1.0,
            minutes_p50={p: round(statistics.median(v), 1) for p, v in sorted(minutes.items())},
            minutes_p95={p: round(_p95(v), 1) for p, v in sorted(minutes.items())},
            per_provider=dict(Counter(item.inference_provider.value for item in items)),
            moves=self.moves,
        )


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _by_group(tasks: list[TraceTask]) -> dict[str, list[TraceTask]]:
    batches: dict[str, list[TraceTask]] = defaultdict(list)
    for task in tasks:
        batches[task.group].append(task)
    return dict(batches)


def replay(tasks: list[TraceTask], options: ReplayOptions, policies: list[str]) -> list[Outcome]:
    """Replay the day once per policy (and `hindsight`: the deadline policy fed the true
    durations), each on its own throw-away database."""
    if not tasks:
        raise TraceError("the trace has no tasks")
    with tempfile.TemporaryDirectory(prefix="reelroute-replay-") as folder:
        return [Simulation(tasks, options, policy, Path(folder)).run() for policy in policies]


def as_json(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """The outcomes as plain data."""
    return [asdict(outcome) for outcome in outcomes]


REFERENCE_KINDS = ("normal", "urgent", "high_quality")
REFERENCE_WEIGHTS = (0.7, 0.2, 0.1)


def reference_day(tasks: int, *, seed: int, day: datetime) -> list[dict[str, str]]:
    """A reference day as trace rows: batches of 1 to 8 photos arriving from 08:00 to 20:00
    UTC, 70 % normal, 20 % urgent, 10 % high-quality groups, every task `auto`, 5 s videos, and
    each provider's true time drawn from its catalogue minutes."""
    rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
    rows: list[dict[str, str]] = []
    opening = day.replace(hour=8, minute=0, second=0, microsecond=0)
    batch = 0
    while len(rows) < tasks:
        batch += 1
        size = min(rng.randint(1, 8), tasks - len(rows))
        priority = rng.choices(REFERENCE_KINDS, REFERENCE_WEIGHTS)[0]
        arrival = opening + timedelta(seconds=rng.uniform(0, 12 * 3600))
        for _ in range(size):
            row: dict[str, str] = {
                "created_at": arrival.isoformat(),
                "group": f"batch {batch}",
                "priority": priority,
                "deadline_seconds": "",
                "provider": "auto",
                "duration_s": "5",
            }
            for provider in CATALOGUE:
                row[f"seconds_{provider.value}"] = f"{_true_seconds(provider, rng):.1f}"
            rows.append(row)
    return sorted(rows, key=lambda row: row["created_at"])


def write_trace(path: Path, rows: list[dict[str, str]]) -> None:
    """Write trace rows as a CSV file with a header."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
