"""No single host to lose: two `reelroute dispatch` processes and two GPU hosts (`reelroute
worker --pool gpu`, each with its own name and pipeline process) on one PostgreSQL and one
Prefect server. One dispatcher leads, the other stands by; the leader is killed (SIGKILL, as a
host that dies) mid-work, the standby takes over, and every item completes once, with never
two live flow runs for one item."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import Session, col, select

from reelroute.deployments.prefect_setup import deploy
from reelroute.models.assembly import settings_from_environment
from reelroute.models.core.enums import EventType, ItemStatus
from reelroute.models.core.tables import VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.health.tables import LoopMember
from reelroute.models.intake.batches import add_batch
from reelroute.models.intake.photos import store_photo
from reelroute.models.items.groups import create_group
from reelroute.models.outbox.tables import ItemEvent
from reelroute.models.planning.tables import GpuHost
from reelroute.models.store.db import make_engine
from reelroute.models.store.files import Storage
from reelroute.models.store.migrate import upgrade
from tests.conftest import drop_pg_database, new_pg_database
from tests.e2e.conftest import REPO, PrefectServer, stop_group, wait_until
from tests.models.helpers import image_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ITEMS = 10
LIVE = [
    StateType.SCHEDULED,
    StateType.PENDING,
    StateType.RUNNING,
    StateType.PAUSED,
    StateType.CANCELLING,
]


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "reelroute", *argv],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def leaders(engine: sa.Engine) -> dict[str, bool]:
    """The dispatcher's members: holder (host:pid) -> leads."""
    with Session(engine) as session:
        rows = session.exec(select(LoopMember).where(LoopMember.role == "dispatcher")).all()
    return {row.holder: row.leading for row in rows}


def holder_of(process: subprocess.Popen, engine: sa.Engine) -> str | None:
    return next((h for h in leaders(engine) if h.endswith(f":{process.pid}")), None)


class LiveRuns:
    """Samples Prefect's live flow runs twice a second: the most live runs one item had."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.most: Counter[str] = Counter()
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with (
            temporary_settings(updates={PREFECT_API_URL: self.api_url}),
            get_client(sync_client=True) as client,
        ):
            while not self.stop.wait(0.5):
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=LIVE))
                    ),
                    limit=200,
                )
                live = Counter(str(run.parameters.get("item_id")) for run in runs)
                for item_id, count in live.items():
                    self.most[item_id] = max(self.most[item_id], count)
                self.samples += 1


def test_the_standby_dispatcher_takes_over_when_the_leader_dies(pg_server, tmp_path):
    database_url = new_pg_database(pg_server)
    upgrade(database_url)
    (tmp_path / "prefect").mkdir()
    server = PrefectServer(tmp_path / "prefect")
    server.start()
    env = {
        **os.environ,
        "PREFECT_API_URL": server.api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
        "REELROUTE_DATABASE_URL": database_url,
        "REELROUTE_STORAGE_URL": str(tmp_path / "storage"),
        "REELROUTE_SANDBOX": "true",
        "REELROUTE_LEASE_SECONDS": "15",
        "REELROUTE_RETRY_BACKOFF_SECONDS": "1",
        "REELROUTE_DISPATCH_INTERVAL_SECONDS": "0.5",
        "REELROUTE_RECONCILE_INTERVAL_SECONDS": "1",
        "REELROUTE_LEADER_POLL_SECONDS": "2",  # the default
        "REELROUTE_GPU_SLOTS": "2",  # two hosts of one CPU "GPU" each
        "REELROUTE_WAN_STEPS": "6",
        "REELROUTE_SANDBOX_WAN_STEP_SECONDS": "0.5",
        "REELROUTE_LOG_FORMAT": "json",
    }
    settings = settings_from_environment(env)
    engine = make_engine(database_url)
    processes: dict[str, subprocess.Popen] = {}
    live = LiveRuns(server.api_url)
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            deploy(settings)
        for name in ("gpu-a", "gpu-b"):
            processes[name] = spawn(
                ["worker", "--pool", "gpu", "--gpus", "cpu", "--name", name],
                env,
                tmp_path / f"{name}.log",
            )
        first = processes["first"] = spawn(["dispatch"], env, tmp_path / "first.log")
        wait_until(lambda: leaders(engine).get(holder_of(first, engine) or ""), 60, "a leader")
        second = processes["second"] = spawn(["dispatch"], env, tmp_path / "second.log")
        wait_until(lambda: holder_of(second, engine), 60, "the standby")

        def hosts_up() -> bool:
            with Session(engine) as session:
                return len(session.exec(select(GpuHost)).all()) == 2

        wait_until(hosts_up, 120, "both GPU hosts")
        assert leaders(engine) == {holder_of(first, engine): True, holder_of(second, engine): False}
        live.thread.start()

        with Session(engine, expire_on_commit=False) as session:
            group = create_group(session, name="leadership")
            photo = store_photo(
                session,
                storage=Storage(settings.store.storage_url),
                group_id=group.id,
                data=image_bytes(),
                filename="p.png",
                settings=settings,
            )
            items = add_batch(
                session,
                group_id=group.id,
                settings=settings,
                tasks=[
                    TaskSpec(
                        photo_id=photo.id,
                        prompt=f"led {n}",
                        inference_provider="wan_local",
                        frame_num=5,
                    )
                    for n in range(ITEMS)
                ],
            )
            session.commit()
        ids = [item.id for item in items]

        def completed() -> int:
            with Session(engine) as session:
                return len(
                    session.exec(
                        select(VideoItem.id).where(
                            col(VideoItem.id).in_(ids), VideoItem.status == ItemStatus.completed
                        )
                    ).all()
                )

        wait_until(lambda: completed() >= 2, 300, "two items done", every=0.3)
        assert completed() < ITEMS, "too late to kill the leader mid-work"
        killed_at = time.monotonic()
        os.killpg(first.pid, signal.SIGKILL)  # the leader's host dies
        first.wait(timeout=10)
        standby = holder_of(second, engine)
        wait_until(lambda: leaders(engine).get(standby or ""), 60, "the takeover", every=0.1)
        takeover = time.monotonic() - killed_at
        print(f"takeover: {takeover:.2f} s after the leader was killed (poll 2 s)")
        assert second.poll() is None

        wait_until(lambda: completed() == ITEMS, 400, "every item", every=1.0)
        live.stop.set()
        live.thread.join(timeout=10)

        with Session(engine) as session:
            events = session.exec(
                select(ItemEvent.item_id).where(ItemEvent.type == EventType.completed)
            ).all()
            outputs = session.exec(
                select(VideoItem.output_path).where(col(VideoItem.id).in_(ids))
            ).all()
        assert Counter(events) == dict.fromkeys(ids, 1)  # each completed once
        assert all(outputs)
        assert live.samples > 10
        assert max(live.most.values()) == 1, live.most  # never two live runs for one item
        with (
            temporary_settings(updates={PREFECT_API_URL: server.api_url}),
            get_client(sync_client=True) as client,
        ):
            runs = client.read_flow_runs(limit=200)
        per_attempt = Counter(
            (run.parameters.get("item_id"), run.parameters.get("attempt")) for run in runs
        )
        assert max(per_attempt.values()) == 1  # the new leader made no second run of any

        def made() -> dict[str, int]:
            with Session(engine) as session:
                return {host.name: host.videos for host in session.exec(select(GpuHost)).all()}

        # Both hosts' counts, as they report them (every few seconds).
        wait_until(lambda: sum(made().values()) == ITEMS, 60, f"{ITEMS} videos reported")
        assert set(made()) == {"gpu-a", "gpu-b"}
        second_log = (tmp_path / "second.log").read_text()
        assert "leads now" in second_log
    finally:
        live.stop.set()
        for process in processes.values():
            stop_group(process)
        server.stop()
        engine.dispose()
        drop_pg_database(pg_server, database_url)
