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
import dataclasses
import heapq
import logging
import math
import random
import statistics
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.assembly import Settings, load_settings
from reelroute.models.core import (
    CATALOGUE,
    BreakerState,
    BudgetPeriod,
    BudgetScope,
    FailureCode,
    GroupPriority,
    InferenceProvider,
    InvalidInput,
    ItemStatus,
    Pool,
    TaskSpec,
    VideoItem,
    flow_run_worker_id,
    host_of,
    parse_deadline,
)
from reelroute.models.health import Breaker
from reelroute.models.health import breakers as breakers_module
from reelroute.models.intake import add_batch, add_stored_photo
from reelroute.models.items import (
    MadeBy,
    accept_item,
    claim_item,
    complete_item,
    create_group,
    fail_item,
    plan_dispatch,
)
from reelroute.models.money import (
    BudgetExceeded,
    ModelLimits,
    RunwayLimits,
    set_budget,
    store_limits,
)
from reelroute.models.planning import (
    Estimates,
    Policy,
    Snapshot,
    build_snapshot,
    read_service_times,
    reject_and_redo,
    report_host,
    reroute_waiting,
)
from reelroute.models.store import Storage, count_verdict, make_engine, upgrade

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
    kept: dict[InferenceProvider, float] = field(default_factory=dict)
    """The chance that each provider's video of it is kept (`kept_<provider>`; missing: the
    replay's --acceptance, else 1)."""


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
        kept = {}
        for provider in CATALOGUE:
            value = (row.get(f"kept_{provider.value}") or "").strip()
            if value:
                kept[provider] = float(value)
                if not 0 <= kept[provider] <= 1:
                    raise TraceError(f"{where}: kept_{provider.value} {value} is not in 0-1")
        return TraceTask(
            row=number,
            created_at=created,
            group=row["group"].strip() or "trace",
            priority=priority,
            deadline_seconds=int(deadline) if deadline else None,
            provider=InferenceProvider(asked) if asked and asked != "auto" else None,
            duration_s=int(row["duration_s"]),
            seconds=seconds,
            kept=kept,
        )
    except (ValueError, KeyError) as error:
        if isinstance(error, TraceError):
            raise
        raise TraceError(f"{where}: {error}") from None


@dataclass(frozen=True)
class GpuHostSpec:
    """A simulated GPU host: its GPUs, the Wan preset they run, and its time for a video
    against the trace's Wan time (which is `full` on the reference GPU)."""

    name: str
    gpus: int
    preset: str = "full"
    time: float = 1.0

    @classmethod
    def parse(cls, text: str) -> GpuHostSpec:
        """`NAME:GPUS:PRESET:TIME`, e.g. `h200:4:fast:0.06` (ValueError says how to write it)."""
        parts = text.split(":")
        try:
            name, gpus, preset, time = parts
            spec = cls(name.strip(), int(gpus), preset.strip(), float(time))
        except ValueError:
            raise ValueError(
                f"--gpu-host {text!r}: write NAME:GPUS:PRESET:TIME, e.g. h200:4:fast:0.06 (TIME: "
                "its time for a video against the trace's Wan time)"
            ) from None
        if not spec.name or spec.gpus < 1 or spec.time <= 0:
            raise ValueError(f"--gpu-host {text!r}: a name, 1 GPU or more, a time above 0")
        return spec


@dataclass(frozen=True)
class OutageSpec:
    """A Runway model answering 503 to every creation for a while (`MODEL@HH:MM+DURATION`)."""

    model: str
    start: time
    minutes: float

    @classmethod
    def parse(cls, text: str) -> OutageSpec:
        """`gen4_turbo@12:00+45m` (or `+2h`, `+1h30m`); ValueError says how to write it."""
        how = (
            f"--outage {text!r}: write MODEL@HH:MM+DURATION, e.g. gen4_turbo@12:00+45m (a "
            f"model of {', '.join(e.model for e in CATALOGUE.values() if e.paid)})"
        )
        try:
            model, _, rest = text.partition("@")
            at, _, length = rest.partition("+")
            start = time.fromisoformat(at.strip())
            minutes = parse_deadline(length.strip()) / 60
        except ValueError:
            raise ValueError(how) from None
        if model.strip() not in {e.model for e in CATALOGUE.values() if e.paid}:
            raise ValueError(how)
        return cls(model.strip(), start, minutes)

    def covers(self, moment: datetime) -> bool:
        """Whether the model is down at `moment` (the outage's time on that UTC day)."""
        begins = moment.replace(
            hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0
        )
        return begins <= moment < begins + timedelta(minutes=self.minutes)


@dataclass(frozen=True)
class ReplayOptions:
    """The installation the day is replayed on."""

    gpus: int = 4
    gpu_hosts: tuple[GpuHostSpec, ...] = ()
    """GPU hosts with their presets and speeds; empty: `gpus` GPUs at the trace's Wan time."""
    runway_concurrency: dict[str, int] = field(default_factory=dict)
    """Per Runway model (`gen4_turbo`, `veo3.1`, ...); models not named get `default`."""
    default_concurrency: int = 5
    budgets: dict[InferenceProvider, float] = field(default_factory=dict)
    """Dollars per day per provider."""
    outages: tuple[OutageSpec, ...] = ()
    breakers: bool = True
    """False: breakers never open on a failure rate (the day without them)."""
    acceptance: dict[InferenceProvider, float] = field(default_factory=dict)
    preset_acceptance: dict[tuple[InferenceProvider, str], float] = field(default_factory=dict)
    """The share of a provider's videos kept per Wan preset (`wan_local@fast=0.7`): wins over
    `acceptance` and the trace's `kept_<provider>` for the videos that preset made."""
    """The share of each provider's videos kept (missing: all); a video drawn outside it is
    rejected and made again on the group's next option, through the real review code."""
    count_redos: bool = True
    """REELROUTE_ROUTING_COUNT_REDOS: routing weighs the chance of a redo (False: it does not)."""
    seed: int = 0
    """Draws which videos are rejected."""
    history: int = 0
    """Judged Wan videos each group has before the day (kept at its `kept_wan_local` share):
    the day as one of many, with what routing learned on the earlier ones."""
    gpu_hour_cost: float = 0.0
    """Dollars per GPU-hour (REELROUTE_GPU_HOUR_COST): what the GPUs cost beside Runway."""
    gpu_billing: str = "always-on"
    """REELROUTE_GPU_BILLING: `always-on` (the GPUs cost their hours, routing treats a Wan
    video as free) or `per-second` (each Wan video costs its GPU seconds, routing knows)."""
    gpu_schedule: tuple[int, ...] = ()
    """GPUs running at each hour of the UTC day (24 numbers; `reelroute replay --plan`'s
    schedule): instead of `gpus`, or of the GPUs of the one `gpu_hosts` entry. A host
    scaled down finishes the videos it holds; at 0 no Wan item is routed or started and the
    waiting ones move to Runway."""

    def gpus_at(self, moment: datetime) -> int:
        """GPUs running at `moment`."""
        if self.gpu_schedule:
            return self.gpu_schedule[moment.hour]
        return sum(h.gpus for h in self.gpu_hosts) or self.gpus


FAILED_ATTEMPT_SECONDS = 5.0
"""How long an attempt on a model that is down takes to fail (its 503)."""


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
    not_run: int = 0
    """Tasks that never got a video (they named a model Runway allows no tasks at once, or
    a model down all day); they count as late."""
    attempts_failed: int = 0
    redos: int = 0
    """Videos rejected and made again on another option."""
    gpu_hour_cost: float = 0.0
    gpu_billing: str = "always-on"
    gpu_hours_on: float = 0.0
    """GPU-hours the GPUs ran: their count (or schedule) over every hour of each UTC day the
    replay spans, from the first arrival's day to the last video's."""
    gpu_seconds: float = 0.0
    """GPU seconds the Wan videos took (claim to video, each attempt)."""
    gpu_busy_dollars: float = 0.0
    """Those seconds at the price: the bill of GPUs billed per second."""

    @property
    def gpu_on_dollars(self) -> float:
        """The bill of always-on GPUs: every hour they ran, busy or idle."""
        return round(self.gpu_hours_on * self.gpu_hour_cost, 2)

    @property
    def gpu_dollars(self) -> float:
        """What the GPUs cost under the replay's billing."""
        if self.gpu_billing == "per-second":
            return round(self.gpu_busy_dollars, 2)
        return self.gpu_on_dollars

    @property
    def total_dollars(self) -> float:
        """Runway's spend and the GPUs' bill."""
        return round(self.spend_dollars + self.gpu_dollars, 2)

    def line(self) -> str:
        """One line of the table."""
        times = ", ".join(
            f"{p} {self.minutes_p50[p]:.0f}/{self.minutes_p95[p]:.0f}" for p in self.minutes_p50
        )
        used = ", ".join(f"{p} {n}" for p, n in sorted(self.per_provider.items()))
        missing = f"; not run {self.not_run}" if self.not_run else ""
        failed = f"; failed attempts {self.attempts_failed}" if self.attempts_failed else ""
        failed += f"; redone {self.redos}" if self.redos else ""
        gpus = ""
        if self.gpu_hour_cost:
            gpus = (
                f" + GPUs ${self.gpu_dollars:.2f} ({self.gpu_billing}) = ${self.total_dollars:.2f}"
            )
        return (
            f"{self.policy:<10} ${self.spend_dollars:>8.2f}{gpus}  late {self.late:>3}/"
            f"{self.tasks} on time {self.on_time_rate:>6.1%}  p50/p95 min: {times}  ({used}; "
            f"moved {self.moves}{failed}{missing})"
        )


class Simulation:
    """One replay of the day with one policy, on a fresh database."""

    def __init__(
        self, tasks: list[TraceTask], options: ReplayOptions, policy: str, folder: Path
    ) -> None:
        self.tasks, self.options = tasks, options
        self.hindsight = policy == "hindsight"
        # `foresight`: the deadline policy with the measured times, knowing in advance which
        # Wan videos will be made again (a lower bound on what redos cost); `hindsight` knows
        # both the true times and the redos.
        self.foresight = policy in ("hindsight", "foresight")
        self.policy = Policy.deadline if self.foresight else Policy(policy)
        self.name = policy
        url = f"sqlite:///{folder / f'replay-{policy}.db'}"
        upgrade(url)
        self.engine = make_engine(url)
        self.settings: Settings = load_settings(
            _env_file=None,
            database_url=url,
            storage_url=str(folder / "storage"),
            gpu_slots=max(1, options.gpus_at(tasks[0].created_at)),
            cloud_slots=sum(
                options.runway_concurrency.get(entry.model, options.default_concurrency)
                for entry in CATALOGUE.values()
                if entry.paid
            ),
            dispatch_lookahead=0,
            routing_policy="threshold" if self.policy is Policy.threshold else "deadline",
            routing_count_redos=options.count_redos,
            default_provider=InferenceProvider.wan_local,
            gpu_hour_cost=str(options.gpu_hour_cost),
            gpu_billing=options.gpu_billing,
            **({} if options.breakers else {"breaker_min_failures": 10**9}),
        )
        if options.gpu_schedule and len(options.gpu_hosts) > 1:
            raise ValueError("a GPU schedule scales one GPU host (or --gpus), not several")
        self.gpus_now = options.gpus_at(tasks[0].created_at)
        self.attempts_failed = 0
        self.redos = 0
        self.storage = Storage(str(folder / "storage"))
        self.ids = {task.row: uuid.uuid4() for task in tasks}
        self.truth = {
            (self.ids[task.row], provider): seconds
            for task in tasks
            for provider, seconds in task.seconds.items()
        }
        self.rows = {item_id: row for row, item_id in self.ids.items()}
        self.kept = {task.row: task.kept for task in tasks}
        self.moves = 0
        self.busy: Counter[str] = Counter()
        """Wan items at work per simulated GPU host."""

    def _gpus_of(self, host: GpuHostSpec) -> int:
        """The host's GPUs now (its count, or the schedule's)."""
        return self.gpus_now if self.options.gpu_schedule else host.gpus

    def _scale(self, now: datetime) -> None:
        """Follow the GPU schedule: the gpu pool's slots (a host scaled down finishes what it
        holds: the dispatcher starts nothing more there until it is below its new count)."""
        gpus = self.options.gpus_at(now)
        if gpus != self.gpus_now:
            self.gpus_now = gpus
            self.settings = self.settings.replaced(gpu_slots=max(1, gpus))

    def _snapshot(self, session: Session, now: datetime) -> Snapshot:
        snapshot = build_snapshot(
            session, self.settings, now=now, estimates=self._estimates(session)
        )
        if self.gpus_now == 0:
            snapshot.unavailable[InferenceProvider.wan_local] = "no GPU runs at this hour"
        return snapshot

    def _report_hosts(self, session: Session, now: datetime) -> None:
        for host in self.options.gpu_hosts:
            if self._gpus_of(host) == 0:
                continue
            report_host(
                session,
                name=host.name,
                gpu_class=host.name,
                preset=f"{host.preset}@1",
                slots=self._gpus_of(host),
                now=now,
            )

    def _host_for(self) -> GpuHostSpec | None:
        """The fastest simulated host with a free GPU (None: no simulated hosts)."""
        free = [h for h in self.options.gpu_hosts if self.busy[h.name] < self._gpus_of(h)]
        return min(free, key=lambda h: h.time) if free else None

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

    def down(self, provider: InferenceProvider, moment: datetime) -> bool:
        """Whether `provider`'s model is in one of the day's outages at `moment`."""
        model = CATALOGUE[provider].model
        return any(o.model == model and o.covers(moment) for o in self.options.outages)

    def _next_wake(self, session: Session, now: datetime) -> datetime | None:
        """When something waiting may go again: a retry's backoff ends, a breaker's probe is
        due (None: nothing waits for time)."""
        retry = session.execute(
            sa.select(sa.func.min(VideoItem.next_attempt_at)).where(
                col(VideoItem.status) == ItemStatus.pending,
                col(VideoItem.next_attempt_at) > now,
            )
        ).scalar_one()
        probe = session.execute(
            sa.select(sa.func.min(Breaker.next_probe_at)).where(
                col(Breaker.state) == BreakerState.open, col(Breaker.next_probe_at) > now
            )
        ).scalar_one()
        found: list[datetime] = [moment for moment in (retry, probe) if moment is not None]
        if not found:
            return None
        return min(m if m.tzinfo else m.replace(tzinfo=UTC) for m in found)

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
        return dataclasses.replace(measured, known=self.truth)

    def _loop(self, session: Session, now: datetime) -> None:
        arrivals = list(self.tasks)
        done: list[tuple[datetime, str, uuid.UUID, int, bool]] = []
        groups: dict[str, uuid.UUID] = {}
        photos: dict[str, uuid.UUID] = {}
        limits = self.limits()
        while True:
            wake = self._next_wake(session, now)
            times = [*(d[0] for d in done[:1]), *(a.created_at for a in arrivals[:1])]
            if wake is not None and (times or self._pending(session)):
                times.append(wake)
            if not times:
                break
            now = min(times)
            self._scale(now)
            self._report_hosts(session, now)
            while done and done[0][0] <= now:
                _, _, item_id, attempt, fails = heapq.heappop(done)
                item = session.get(VideoItem, item_id)
                assert item is not None
                if fails:
                    self.attempts_failed += 1
                    fail_item(
                        session,
                        item_id=item_id,
                        attempt=attempt,
                        worker_id=item.worker_id or WORKER,
                        error=f"{item.inference_provider.value} answered 503 (outage)",
                        permanent=False,
                        settings=self.settings,
                        failure_code=FailureCode.HTTP_5XX,
                        now=now,
                    )
                    continue
                credits = CATALOGUE[item.inference_provider].credits_for(
                    item.duration_s, item.frame_num
                )
                host_name = host_of(item.worker_id)
                made_by = MadeBy(hour_cost=self.options.gpu_hour_cost)
                preset = None
                if host_name is not None:
                    self.busy[host_name] -= 1
                    spec = next(h for h in self.options.gpu_hosts if h.name == host_name)
                    preset = spec.preset
                    made_by = MadeBy(
                        f"{spec.preset}@1", spec.name, spec.name, self.options.gpu_hour_cost
                    )
                rejected = self._rejected(item, attempt, preset)
                complete_item(
                    session,
                    item_id=item_id,
                    attempt=attempt,
                    worker_id=item.worker_id or WORKER,
                    output_path="replay",
                    cost_credits=credits,
                    made_by=made_by,
                    review_reason="replay: drawn to be judged" if rejected else None,
                    now=now,
                )
                if rejected:
                    self._judge(session, item_id, now)
            batch = [a for a in arrivals if a.created_at <= now]
            arrivals = arrivals[len(batch) :]
            for name, tasks in _by_group(batch).items():
                group_id = groups.get(name) or self._group(session, name, tasks[0], groups, photos)
                snapshot = self._snapshot(session, now)
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
                snapshot = self._snapshot(session, now)
                self.moves += len(reroute_waiting(session, snapshot))
            for pool in Pool:
                if pool is Pool.gpu and self.gpus_now == 0:
                    continue
                for planned in plan_dispatch(
                    session, pool=pool, settings=self.settings, limits=limits, now=now
                ):
                    host = self._host_for() if pool is Pool.gpu else None
                    worker = WORKER
                    if host is not None:
                        worker = flow_run_worker_id(uuid.uuid4(), host.name)
                        self.busy[host.name] += 1
                    claim = claim_item(
                        session,
                        item_id=planned.item_id,
                        attempt=planned.attempt,
                        worker_id=worker,
                        settings=self.settings,
                        now=now,
                    )
                    assert claim is not None
                    took = self.truth[(planned.item_id, planned.inference_provider)]
                    if host is not None:
                        took *= host.time
                    fails = self.down(planned.inference_provider, now)
                    if fails:
                        took = FAILED_ATTEMPT_SECONDS
                    finish = now + timedelta(seconds=took)
                    heapq.heappush(
                        done,
                        (finish, str(planned.item_id), planned.item_id, planned.attempt, fails),
                    )
            session.commit()

    def _rejected(self, item: VideoItem, attempt: int, preset: str | None = None) -> bool:
        """Whether the video of `attempt` (made by `preset`, on a GPU host) is drawn to be
        rejected (the same draw for the same task and attempt, whatever the policy)."""
        row, provider = self.rows[item.id], item.inference_provider
        kept = self.options.preset_acceptance.get((provider, preset or ""))
        if kept is None:
            kept = self.kept[row].get(provider, self.options.acceptance.get(provider, 1.0))
        if kept >= 1:
            return False
        draw = random.Random(f"{self.options.seed}:{row}:{attempt}")  # noqa: S311
        return draw.random() >= kept

    def _judge(self, session: Session, item_id: uuid.UUID, now: datetime) -> None:
        """A reviewer rejects the held video and has it made again on the group's next option
        (accepts it when no other option can take it)."""
        try:
            reject_and_redo(
                session,
                self.settings,
                self.storage,
                item_id=item_id,
                reason="replay: not good enough",
                now=now,
            )
        except (InvalidInput, BudgetExceeded):  # no other option can take it: kept
            accept_item(session, item_id=item_id, now=now)
            return
        self.redos += 1

    @staticmethod
    def _pending(session: Session) -> bool:
        """Whether an item still waits."""
        found = session.execute(
            sa.select(col(VideoItem.id)).where(col(VideoItem.status) == ItemStatus.pending).limit(1)
        ).first()
        return found is not None

    def _group(
        self,
        session: Session,
        name: str,
        first: TraceTask,
        groups: dict[str, uuid.UUID],
        photos: dict[str, uuid.UUID],
    ) -> uuid.UUID:
        group = create_group(session, name=name, priority=first.priority)
        kept = first.kept.get(InferenceProvider.wan_local)
        if self.options.history and kept is not None:
            accepted = round(kept * self.options.history)
            for verdict in [True] * accepted + [False] * (self.options.history - accepted):
                count_verdict(
                    session,
                    group_id=group.id,
                    provider=InferenceProvider.wan_local.value,
                    wan_preset=None,
                    accepted=verdict,
                )
        photo = add_stored_photo(session, group_id=group.id, storage_path="photos/replay")
        groups[name], photos[name] = group.id, photo.id
        return group.id

    def _spec(self, task: TraceTask, photo_id: uuid.UUID) -> TaskSpec:
        provider = task.provider
        if self.foresight and provider is None and self._redone_on_wan(task):
            # Hindsight knows which Wan videos will be made again: those go to Gen-4 Turbo
            # (their redo's model) at once, and Wan's GPUs make only videos that are kept.
            provider = InferenceProvider.runway_gen4_turbo
        return TaskSpec(
            photo_id=photo_id,
            prompt=f"trace row {task.row}",
            duration_s=task.duration_s,
            inference_provider=provider.value if provider else None,
            deadline_seconds=task.deadline_seconds,
        )

    def _redone_on_wan(self, task: TraceTask) -> bool:
        """Whether the task's first video would be made again if Wan made it (the same draw
        as `_rejected`; the share of the GPU hosts' preset when they all run one)."""
        if task.priority is GroupPriority.high_quality:
            return False  # never made by Wan
        wan = InferenceProvider.wan_local
        presets = {host.preset for host in self.options.gpu_hosts}
        kept = None
        if len(presets) == 1:
            kept = self.options.preset_acceptance.get((wan, presets.pop()))
        if kept is None:
            kept = task.kept.get(wan, self.options.acceptance.get(wan, 1.0))
        if kept >= 1:
            return False
        return random.Random(f"{self.options.seed}:{task.row}:1").random() >= kept  # noqa: S311

    def _outcome(self, items: list[VideoItem]) -> Outcome:
        priority_of = {self.ids[task.row]: task.priority.value for task in self.tasks}
        minutes: dict[str, list[float]] = defaultdict(list)
        late = not_run = 0
        finished = []
        for item in items:
            if item.status is not ItemStatus.completed or item.finished_at is None:
                not_run += 1  # never delivered: late too
                late += 1
                continue
            finished.append(item)
            minutes[priority_of[item.id]].append(
                (item.finished_at - item.created_at).total_seconds() / 60
            )
            late += item.finished_at > item.due_at
        spend = sum(item.cost_credits or 0 for item in items) / 100
        first = self.tasks[0].created_at.replace(hour=0, minute=0, second=0, microsecond=0)
        last = max((i.finished_at for i in finished if i.finished_at), default=first)
        hours = math.ceil((last - first).total_seconds() / 86400 + 1e-9) * 24 if finished else 24
        hours_on = sum(
            self.options.gpus_at(first + timedelta(hours=hour)) for hour in range(max(hours, 24))
        )
        return Outcome(
            policy=self.name,
            spend_dollars=round(spend, 2),
            late=late,
            tasks=len(items),
            on_time_rate=round(1 - late / len(items), 4) if items else 1.0,
            minutes_p50={p: round(statistics.median(v), 1) for p, v in sorted(minutes.items())},
            minutes_p95={p: round(_p95(v), 1) for p, v in sorted(minutes.items())},
            per_provider=dict(Counter(item.inference_provider.value for item in finished)),
            moves=self.moves,
            not_run=not_run,
            attempts_failed=self.attempts_failed,
            redos=self.redos,
            gpu_hour_cost=self.options.gpu_hour_cost,
            gpu_billing=self.options.gpu_billing,
            gpu_hours_on=float(hours_on),
            gpu_seconds=round(sum(item.gpu_seconds or 0 for item in items), 1),
            gpu_busy_dollars=round(sum(item.gpu_dollars or 0 for item in items), 4),
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
    # The breakers' transitions are warnings in a service's log; the day's table counts them.
    breakers = logging.getLogger(breakers_module.__name__)
    level = breakers.level
    breakers.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="reelroute-replay-") as folder:
            return [Simulation(tasks, options, policy, Path(folder)).run() for policy in policies]
    finally:
        breakers.setLevel(level)


def as_json(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """The outcomes as plain data (with the GPUs' bill and the total)."""
    return [
        {
            **asdict(outcome),
            "gpu_dollars": outcome.gpu_dollars,
            "gpu_on_dollars": outcome.gpu_on_dollars,
            "total_dollars": outcome.total_dollars,
        }
        for outcome in outcomes
    ]


REFERENCE_KINDS = ("normal", "urgent", "high_quality")
REFERENCE_WEIGHTS = (0.7, 0.2, 0.1)


def reference_day(
    tasks: int,
    *,
    seed: int,
    day: datetime,
    customers: int = 0,
    wan_kept: float | None = None,
    spread: float = 0.4,
) -> list[dict[str, str]]:
    """A reference day as trace rows: batches of 1 to 8 photos arriving from 08:00 to 20:00
    UTC, 70 % normal, 20 % urgent, 10 % high-quality groups, every task `auto`, 5 s videos, and
    each provider's true time drawn from its catalogue minutes.

    Each batch is its own group, or with `customers` one of that many customers' groups (each
    of one priority), whose Wan videos are kept with `wan_kept` on average: each customer's
    share drawn from `wan_kept` ± `spread` (within 0.05-1), since some photos suit Wan less."""
    rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)
    rows: list[dict[str, str]] = []
    opening = day.replace(hour=8, minute=0, second=0, microsecond=0)
    kinds = [rng.choices(REFERENCE_KINDS, REFERENCE_WEIGHTS)[0] for _ in range(customers)]
    shares = [
        min(1.0, max(0.05, (wan_kept or 1.0) + rng.uniform(-spread, spread)))
        for _ in range(customers)
    ]
    batch = 0
    while len(rows) < tasks:
        batch += 1
        size = min(rng.randint(1, 8), tasks - len(rows))
        if customers:
            customer = rng.randrange(customers)
            group, priority = f"customer {customer + 1}", kinds[customer]
        else:
            group, priority = f"batch {batch}", rng.choices(REFERENCE_KINDS, REFERENCE_WEIGHTS)[0]
        arrival = opening + timedelta(seconds=rng.uniform(0, 12 * 3600))
        for _ in range(size):
            row: dict[str, str] = {
                "created_at": arrival.isoformat(),
                "group": group,
                "priority": priority,
                "deadline_seconds": "",
                "provider": "auto",
                "duration_s": "5",
            }
            for provider in CATALOGUE:
                row[f"seconds_{provider.value}"] = f"{_true_seconds(provider, rng):.1f}"
            if customers and wan_kept is not None:
                row["kept_wan_local"] = f"{shares[customer]:.2f}"
            rows.append(row)
    return sorted(rows, key=lambda row: row["created_at"])


def write_trace(path: Path, rows: list[dict[str, str]]) -> None:
    """Write trace rows as a CSV file with a header."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
