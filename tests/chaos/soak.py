"""The chaos soak (`make chaos`): the whole system under faults, then a check of every promise.

Runs the real parts: PostgreSQL (items and the Prefect server), a Prefect server, a `gpu` and a
`cloud` process worker, the dispatcher (`reelroute dispatch`), the web app, the Runway emulator
and the tiny Wan pipeline. The emulator injects Runway's faults; at random moments the soak
kills flow-run processes, workers, the dispatcher and the web app (kill -9), restarts the Prefect
server and restarts PostgreSQL. What dies is restarted by the same supervisor `reelroute up`
uses. At the end it asserts what docs/reliability.md promises and prints a table of faults.

    python -m tests.chaos.soak [--items 200] [--fault-minutes 6] [--seed 7]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa
from sqlmodel import Session, select

from reelroute.deployments.launcher import (
    Services,
    free_port,
    start_prefect_server,
    supervise_until,
    wait_until,
)
from reelroute.models.assembly import settings_from_environment
from reelroute.models.core.enums import FailureClass, InferenceProvider, Pool
from reelroute.models.core.failures import class_of
from reelroute.models.core.tables import VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import PhotoTask, Upload, add_batch
from reelroute.models.items.groups import create_group
from reelroute.models.store.db import make_engine, session_scope
from reelroute.models.store.files import Storage
from reelroute.models.store.ledger import count_ledger
from reelroute.models.store.migrate import upgrade
from reelroute.providers.emulator import EmulatorScript, EmulatorServer, RunwayEmulator
from reelroute.providers.video import probe_mp4
from tests.conftest import PG_ADMIN, drop_pg_database, new_pg_database
from tests.models.helpers import image_bytes

MIX = [InferenceProvider.runway_gen4_turbo] * 6 + [InferenceProvider.runway_veo3_1] * 3
MIX += [InferenceProvider.wan_local]
FINAL = {"completed", "failed", "cancelled"}


@dataclass
class Faults:
    """What was injected, and what the system did about it."""

    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    restarts: collections.Counter[str] = field(default_factory=collections.Counter)
    log: list[str] = field(default_factory=list)

    def note(self, kind: str, detail: str = "") -> None:
        self.injected[kind] += 1
        self.log.append(f"{time.strftime('%H:%M:%S')} {kind} {detail}".rstrip())
        print(f"  fault: {kind} {detail}", flush=True)


class VideoAudit:
    """Watches the stored videos: every final video path must be written once and never again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: dict[str, tuple[int, int, int]] = {}
        self.rewritten: set[str] = set()

    def scan(self) -> None:
        for path in self.folder.rglob("*.mp4"):
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                name = str(path.relative_to(self.folder))
                if name in self.seen and self.seen[name] != key:
                    self.rewritten.add(name)
                self.seen.setdefault(name, key)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.3):
            self.scan()


def flow_run_processes() -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and p.info["cmdline"][1:3] == ["-m", "prefect.engine"]
    ]


def restart_postgresql() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
    )


class Soak:
    def __init__(self, root: Path, items: int, seed: int) -> None:
        self.root, self.items, self.rng = root, items, random.Random(seed)
        self.faults = Faults()
        self.services = Services()
        self.stop = threading.Event()
        self.url = new_pg_database(PG_ADMIN, "reelroute_chaos")
        self.prefect_url = self.url.replace("+psycopg", "+asyncpg") + "_prefect"
        self.emulator = EmulatorServer(RunwayEmulator(EmulatorScript(latency_s=3.0, concurrency=8)))
        self.storage = root / "storage"
        self.audit = VideoAudit(self.storage)

    # --- the system ---------------------------------------------------------------------

    def start(self) -> None:
        upgrade(self.url)
        self.emulator.start()
        port = free_port()
        self.api = start_prefect_server(
            self.services,
            port=port,
            home=self.root / "prefect",
            log_dir=self.root / "logs",
            env=dict(os.environ),
            ui=False,
            database_url=self.prefect_url,
        )
        self.web_port = free_port()
        self.token = "chaos-admin-token-" + uuid.uuid4().hex
        self.env = {
            **os.environ,
            "PREFECT_API_URL": self.api,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "REELROUTE_DATABASE_URL": self.url,
            "REELROUTE_STORAGE_URL": str(self.storage),
            "REELROUTE_SANDBOX": "true",
            "REELROUTE_RUNWAY_BASE_URL": self.emulator.url,
            "REELROUTE_RUNWAY_POLL_SECONDS": "0.5",
            "REELROUTE_RUNWAY_TIMEOUT_SECONDS": "5",
            "REELROUTE_RUNWAY_MAX_RETRIES": "1",
            "REELROUTE_LEASE_SECONDS": "20",
            "REELROUTE_RUN_START_TIMEOUT_SECONDS": "45",
            "REELROUTE_RETRY_BACKOFF_SECONDS": "2",
            "REELROUTE_MAX_ATTEMPTS": "5",
            "REELROUTE_GPU_SLOTS": "2",
            "REELROUTE_CLOUD_SLOTS": "8",
            "REELROUTE_DISPATCH_INTERVAL_SECONDS": "1",
            "REELROUTE_RECONCILE_INTERVAL_SECONDS": "3",
            # A 429 is Runway's daily limit (RUNWAY.md): the model's breaker opens for its reset,
            # an hour without Retry-After. Compressed like the leases, or a burst of 429s leaves
            # the items that name the model waiting past the soak's timeout.
            "REELROUTE_BREAKER_EXHAUSTED_SECONDS": "60",
            "REELROUTE_ADMIN_TOKEN": self.token,
        }
        self.settings = settings_from_environment(self.env)
        logs = self.root / "logs"
        subprocess.run(
            [sys.executable, "-m", "reelroute", "deploy"], env=self.env, check=True,
            capture_output=True,
        )  # fmt: skip
        python = [sys.executable, "-m", "reelroute"]
        self.services.start("dispatcher", [*python, "dispatch"], self.env, logs)
        self.services.start("web", [*python, "web", "--port", str(self.web_port)], self.env, logs)
        for pool in Pool:  # as an operator starts them (the gpu one with its pipeline process)
            argv = [*python, "worker", "--pool", pool.value, "--name", f"chaos-{pool}"]
            self.services.start(f"worker-{pool}", argv, self.env, logs)
        wait_until(f"http://127.0.0.1:{self.web_port}/docs", 60, "the web app")
        threading.Thread(
            target=supervise_until, args=(self.services, self.stop), daemon=True
        ).start()
        threading.Thread(target=self.audit.run, args=(self.stop,), daemon=True).start()

    def shutdown(self) -> None:
        self.stop.set()
        self.services.stop()
        self.emulator.stop()
        with contextlib.suppress(Exception):
            drop_pg_database(PG_ADMIN, self.url)
            drop_pg_database(PG_ADMIN, self.prefect_url)

    # --- work ---------------------------------------------------------------------------

    def add_work(self) -> None:
        """The items, in batches of ten spread over the first part of the run."""
        engine = make_engine(self.url)
        try:
            for batch in range(0, self.items, 10):
                tasks = []
                for n in range(batch, min(batch + 10, self.items)):
                    prompt = f"chaos {n}"
                    provider = self.rng.choice(MIX)
                    photo = image_bytes(64 + n % 7, 48, color=(n % 256, 90, 160))
                    tasks.append(
                        PhotoTask(
                            Upload(f"p{n}.png", photo),
                            TaskSpec(prompt=prompt, inference_provider=provider.value),
                        )
                    )
                for _ in range(60):  # the database may be restarting just now
                    try:
                        with session_scope(engine) as session:
                            group = create_group(session, name=f"chaos batch {batch}")
                            made = add_batch(
                                session,
                                group_id=group.id,
                                settings=self.settings,
                                photo_tasks=tasks,
                                storage=Storage(str(self.storage)),
                            )
                            assert len(made) == len(tasks)
                        break
                    except Exception as error:  # retried: the batch is all or none
                        print(f"  adding batch {batch}: {error}; retrying", flush=True)
                        time.sleep(2)
                time.sleep(self.rng.uniform(1, 4))
        finally:
            engine.dispose()

    # --- faults -------------------------------------------------------------------------

    def inject(self, kind: str | None = None) -> None:
        script = self.emulator.emulator.script
        kind = kind or self.rng.choice(
            [
                "runway 5xx burst",
                "runway 429s",
                "runway hung request",
                "truncated download",
                "slow downloads",
                "expired output URLs",
                "moderation failure",
                "runway model outage",
                "kill flow run",
                "kill flow run",
                "kill worker",
                "kill dispatcher",
                "kill web app",
                "restart Prefect server",
                "restart PostgreSQL",
            ]
        )
        if kind == "runway 5xx burst":
            script.http_errors.extend(self.rng.choice([500, 502, 503]) for _ in range(4))
        elif kind == "runway 429s":
            script.http_errors.extend([429] * 3)
        elif kind == "runway hung request":
            script.hang_s, script.hang_next = 8.0, 1
        elif kind == "truncated download":
            script.truncate_next += 1
        elif kind == "slow downloads":
            script.slow_download_s = 2.0
            threading.Timer(20, lambda: setattr(script, "slow_download_s", 0.0)).start()
        elif kind == "expired output URLs":
            script.output_ttl_s = 0.0
            threading.Timer(6, lambda: setattr(script, "output_ttl_s", 3600.0)).start()
        elif kind == "runway model outage":  # one model answers 503 to every create
            script.outage(self.rng.choice(["gen4_turbo", "veo3.1"]), self.rng.uniform(60, 120))
        elif kind == "moderation failure":
            script.fail_next.append(("SAFETY.INPUT.TEXT", "The prompt was flagged (chaos)"))
        elif kind == "kill flow run":
            runs = flow_run_processes()
            if not runs:
                return
            victim = self.rng.choice(runs)
            with contextlib.suppress(psutil.Error):
                victim.kill()
        elif kind in ("kill worker", "kill dispatcher", "kill web app", "restart Prefect server"):
            name = {
                "kill worker": self.rng.choice(["worker-gpu", "worker-cloud"]),
                "kill dispatcher": "dispatcher",
                "kill web app": "web",
                "restart Prefect server": "prefect-server",
            }[kind]
            (child,) = [c for c in self.services.children if c.name == name]
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()  # the supervisor restarts it (and clears its group)
        elif kind == "restart PostgreSQL":
            restart_postgresql()
        self.faults.note(kind)

    # --- the run ------------------------------------------------------------------------

    def statuses(self) -> dict[str, int]:
        engine = make_engine(self.url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.text("SELECT status, count(*) FROM video_items GROUP BY status")
                ).all()
        except Exception:
            return {}
        finally:
            engine.dispose()
        return {status: int(count) for status, count in rows}

    def run(self, fault_minutes: float, timeout_minutes: float) -> None:
        adder = threading.Thread(target=self.add_work)
        adder.start()
        started = time.monotonic()
        print(f"chaos: {self.items} items; faults for {fault_minutes:g} min", flush=True)
        outage_at: float | None = started + fault_minutes * 60 / 3  # one sustained outage
        while time.monotonic() - started < fault_minutes * 60:
            time.sleep(self.rng.uniform(4, 10))
            try:
                due = outage_at is not None and time.monotonic() >= outage_at
                self.inject("runway model outage" if due else None)
                outage_at = None if due else outage_at
            except Exception as error:
                print(f"  injecting failed: {error}", flush=True)
            print(f"  {self.statuses()}", flush=True)
        adder.join()
        # Faults stop here: the scripted Runway errors no request has taken yet go too. With
        # the models' breakers open few requests come, and a leftover burst would keep failing
        # the probes long after the faults (each failed probe doubling the wait).
        script = self.emulator.emulator.script
        dropped = len(script.http_errors) + len(script.fail_next)
        script.http_errors.clear()
        script.fail_next.clear()
        script.hang_next = script.truncate_next = 0
        print(
            f"chaos: faults stop ({dropped} scripted Runway errors not yet answered dropped); "
            "waiting for every item to end",
            flush=True,
        )
        deadline = started + timeout_minutes * 60
        while time.monotonic() < deadline:
            counts = self.statuses()
            if counts and sum(counts.values()) == self.items and set(counts) <= FINAL:
                break
            time.sleep(3)
        self.settle()

    def settle(self) -> None:
        """Wait for the reconciler to end the runs that outlived their work."""
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.settings import PREFECT_API_URL, temporary_settings

        going = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
        deadline = time.monotonic() + 180
        with temporary_settings(updates={PREFECT_API_URL: self.api}):
            from prefect import get_client

            while True:
                try:
                    with get_client(sync_client=True) as client:
                        left = client.read_flow_runs(
                            flow_run_filter=FlowRunFilter(
                                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=going))
                            ),
                            limit=50,
                        )
                except Exception:
                    left = None
                if left == [] or time.monotonic() > deadline:
                    self.runs_left = len(left or [])
                    return
                time.sleep(3)

    # --- the promises -------------------------------------------------------------------

    def check(self) -> list[str]:
        problems = []
        engine = make_engine(self.url)
        with Session(engine) as session:
            items = list(session.exec(select(VideoItem)).all())
            ledger = count_ledger(session)
            leases = [i.id for i in items if i.leased_until is not None]
        engine.dispose()
        by_status = collections.Counter(i.status.value for i in items)
        self.by_status = by_status
        self.failed_by_code = collections.Counter(
            i.failure_code.value if i.failure_code else "(no code)"
            for i in items
            if i.status.value == "failed"
        )
        if len(items) != self.items:
            problems.append(f"{len(items)} items in the table, {self.items} were added")
        lost = [i.prompt for i in items if i.status.value not in FINAL]
        if lost:
            problems.append(f"{len(lost)} items never ended: {lost[:5]}")
        unexplained = [i.prompt for i in items if i.status.value == "failed" and not i.error]
        if unexplained:
            problems.append(f"failed without a reason: {unexplained[:5]}")
        # Only the item's own input may fail it: outages, ours or a provider's, are waited out.
        not_input = [
            f"{i.prompt} ({i.failure_code})"
            for i in items
            if i.status.value == "failed" and class_of(i.failure_code) is not FailureClass.input
        ]
        if not_input:
            problems.append(f"{len(not_input)} failed outside the input class: {not_input[:5]}")
        if leases:
            problems.append(f"{len(leases)} leases still held")
        if self.runs_left:
            problems.append(f"{self.runs_left} flow runs still not final")
        problems += self.check_videos(items)
        problems += self.check_billing(items)
        brute = collections.Counter((i.inference_provider, i.status.value) for i in items)
        for provider, counts in ledger.items():
            for status, number in counts.model_dump().items():
                if status in ("total", "credits"):
                    continue
                if number != brute[(provider, status)]:
                    problems.append(f"ledger {provider.value}/{status}: {number} != table")
        problems += self.check_web(by_status)
        return problems

    def check_videos(self, items: list[VideoItem]) -> list[str]:
        self.audit.scan()
        problems = []
        outputs = {
            task.prompt: task.output
            for task in list(self.emulator.emulator.tasks.values())
            if task.output is not None and not task.cancelled and task.failure is None
        }
        for item in items:
            if item.status.value != "completed":
                continue
            try:
                data = (self.storage / (item.output_path or "")).read_bytes()
                probe_mp4(data)
            except Exception as error:
                problems.append(f"{item.prompt}: no playable video ({error})")
                continue
            if item.inference_provider is not InferenceProvider.wan_local:
                made = outputs.get(item.prompt)
                if made is None or hashlib.sha256(data).digest() != hashlib.sha256(made).digest():
                    problems.append(f"{item.prompt}: the video is not what Runway produced")
            if item.output_path in self.audit.rewritten:
                problems.append(f"{item.prompt}: its video was written more than once")
        return problems

    def check_billing(self, items: list[VideoItem]) -> list[str]:
        emulator = self.emulator.emulator
        self.paid_twice = [i.prompt for i in items if emulator.succeeded(i.prompt) > 1]
        return [
            f"{i.prompt}: Runway ran {emulator.succeeded(i.prompt)} tasks to a video"
            for i in items
            if i.status.value == "completed" and emulator.succeeded(i.prompt) > 1
        ]

    def check_web(self, by_status: collections.Counter[str]) -> list[str]:
        try:
            answer = httpx.get(
                f"http://127.0.0.1:{self.web_port}/api/admin/stats",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=30,
            ).json()
        except Exception as error:
            return [f"the web app did not answer: {error}"]
        total = sum(entry["total"] for entry in answer["data"].values())
        return [] if total == self.items else [f"the web app counts {total} items"]

    def report(self, problems: list[str], seconds: float) -> str:
        for child in self.services.children:
            self.faults.restarts[child.name] = child.total_restarts
        lines = [
            f"## Chaos soak: {self.items} items, {seconds / 60:.1f} min",
            "",
            "| fault | injected | recovered |",
            "|---|---|---|",
        ]
        recovered = "yes" if not problems else "see problems"
        for kind, count in sorted(self.faults.injected.items()):
            lines.append(f"| {kind} | {count} | {recovered} |")
        lines += [
            "",
            f"Restarts by the supervisor: {dict(self.faults.restarts)}",
            f"Items: {dict(self.by_status)}",
            f"Failed, by failure code: {dict(self.failed_by_code)}",
            f"Runway tasks: {len(self.emulator.emulator.tasks)}; prompts paid twice: "
            f"{len(self.paid_twice)}",
            f"Problems: {len(problems)}",
            *[f"- {p}" for p in problems],
        ]
        return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--fault-minutes", type=float, default=6.0)
    parser.add_argument("--timeout-minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    options = parser.parse_args()
    if os.geteuid() != 0:
        print("the soak restarts PostgreSQL with pg_ctlcluster: run it as root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="reelroute-chaos-") as folder:
        soak = Soak(Path(folder), options.items, options.seed)
        started = time.monotonic()
        try:
            soak.start()
            soak.run(options.fault_minutes, options.timeout_minutes)
            problems = soak.check()
            text = soak.report(problems, time.monotonic() - started)
        finally:
            soak.shutdown()
    print(text)
    if options.json:
        options.json.write_text(
            json.dumps({"faults": soak.faults.injected, "problems": problems}, indent=2)
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
