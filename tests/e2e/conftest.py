"""A whole reelroute on loopback: a real Prefect server, real process workers for both pools,
the dispatcher and reconciler, the Runway emulator and the tiny Wan pipeline (sandbox mode)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa
from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import Session

from reelroute.deployments.launcher import Services, free_port, start_prefect_server
from reelroute.deployments.prefect_setup import deploy
from reelroute.flows.loop import dispatch_loop
from reelroute.models.assembly import Settings, settings_from_environment
from reelroute.models.store.db import make_engine
from reelroute.models.store.migrate import upgrade
from reelroute.providers.emulator import EmulatorScript, EmulatorServer, RunwayEmulator

REPO = Path(__file__).resolve().parents[2]


def stop_group(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM the process group, SIGKILL what lingers (workers can outlive SIGTERM)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


class PrefectServer:
    """`prefect server start` on a free port with its own PREFECT_HOME; restartable."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.services = Services()

    def start(self) -> None:
        start_prefect_server(
            self.services,
            port=self.port,
            home=self.home,
            log_dir=self.home,
            env=dict(os.environ),
            ui=False,
        )

    def stop(self) -> None:
        self.services.stop()


@dataclass
class System:
    """The running system and the handles tests need."""

    settings: Settings
    engine: sa.Engine
    emulator: RunwayEmulator
    server: PrefectServer
    env: dict[str, str]
    workers: dict[str, subprocess.Popen]

    def client(self) -> SyncPrefectClient:
        with temporary_settings(updates={PREFECT_API_URL: self.server.api_url}):
            return get_client(sync_client=True)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def gpu_tree(self) -> list[psutil.Process]:
        """The gpu worker and what it started: its Prefect worker, pipeline processes and runs."""
        root = psutil.Process(self.workers["gpu"].pid)
        return [root, *root.children(recursive=True)]

    def pipeline_processes(self) -> list[psutil.Process]:
        """The gpu worker's Wan pipeline processes (`reelroute wan-server`)."""
        found = []
        for process in self.gpu_tree():
            with contextlib.suppress(psutil.Error):
                if "wan-server" in process.cmdline():
                    found.append(process)
        return found

    def pipeline_health(self) -> dict[str, Any]:
        """Each pipeline process's health, by its GPU label."""
        from reelroute.providers.wan_process import ask_health

        found = {}
        for process in self.pipeline_processes():
            with contextlib.suppress(psutil.Error, ValueError):
                argv = process.cmdline()
                health = ask_health(Path(argv[argv.index("--socket") + 1]))
                if health is not None:
                    found[health.gpu] = health
        return found


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    root = tmp_path_factory.mktemp("system")
    (root / "prefect").mkdir()
    server = PrefectServer(root / "prefect")
    server.start()
    emulator_server = EmulatorServer(RunwayEmulator(EmulatorScript(latency_s=1.0)))
    emulator_server.start()
    database_url = f"sqlite:///{root / 'reelroute.db'}"
    upgrade(database_url)
    env = {
        **os.environ,
        "PREFECT_API_URL": server.api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "2",
        "REELROUTE_DATABASE_URL": database_url,
        "REELROUTE_STORAGE_URL": str(root / "storage"),
        "REELROUTE_SANDBOX": "true",
        "REELROUTE_RUNWAY_BASE_URL": emulator_server.url,
        "REELROUTE_RUNWAY_POLL_SECONDS": "0.2",
        "REELROUTE_LEASE_SECONDS": "15",
        "REELROUTE_RETRY_BACKOFF_SECONDS": "1",
        "REELROUTE_CLOUD_SLOTS": "4",
        "REELROUTE_DISPATCH_INTERVAL_SECONDS": "0.5",
        "REELROUTE_RECONCILE_INTERVAL_SECONDS": "1",
        "REELROUTE_ETA_REFRESH_SECONDS": "1",
        # Two CPU "GPUs", each with its warm pipeline process; a 121-frame video takes 10 s.
        "REELROUTE_GPU_SLOTS": "2",
        "REELROUTE_WAN_STEPS": "20",
        "REELROUTE_SANDBOX_WAN_STEP_SECONDS": "0.5",
    }
    settings = settings_from_environment(env)
    workers: dict[str, subprocess.Popen] = {}
    stop = threading.Event()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        deploy(settings)
        for pool in ("gpu", "cloud"):
            gpus = ["--gpus", "cpu,cpu"] if pool == "gpu" else []
            with open(root / f"worker-{pool}.log", "ab") as log:
                workers[pool] = subprocess.Popen(
                    [sys.executable, "-m", "reelroute", "worker", "--pool", pool, *gpus],
                    env=env,
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        context = contextvars.copy_context()  # the thread talks to this server too
        dispatcher = threading.Thread(
            target=context.run, args=(dispatch_loop, settings, stop), daemon=True
        )
        dispatcher.start()
        engine = make_engine(database_url)
        try:
            yield System(settings, engine, emulator_server.emulator, server, env, workers)
        finally:
            stop.set()
            dispatcher.join(timeout=30)
            for worker in workers.values():
                stop_group(worker)
            server.stop()
            emulator_server.stop()
            engine.dispose()


class Up:
    """`reelroute up` as a user starts it, in its own folder, with its own ports."""

    def __init__(self, folder: Path, **settings: str) -> None:
        self.folder = folder
        self.prefect_port, self.web_port = free_port(), free_port()
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PREFECT_", "REELROUTE_", "RUNWAYML_"))
        }
        self.env |= {
            "REELROUTE_PREFECT_PORT": str(self.prefect_port),
            "REELROUTE_EMULATOR_PORT": str(free_port()),
            **settings,
        }
        self.process: subprocess.Popen | None = None
        self.log = folder / "up.log"

    def start(self, timeout: float = 180) -> None:
        """Start `up` and wait until it says it is up."""
        self.start_with(timeout=timeout)

    def start_with(self, *options: str, timeout: float = 180) -> None:
        """Start `up` with these command-line options and wait until it says it is up."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        argv = [sys.executable, "-m", "reelroute", "up", "--port", str(self.web_port), *options]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.time() + timeout
        while "reelroute is up" not in self.output()[offset:]:
            assert self.process.poll() is None, self.output()[-3000:]
            assert time.time() < deadline, "reelroute up did not come up"
            time.sleep(0.5)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reelroute", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )

    def tree(self) -> list[psutil.Process]:
        """`up` and everything it started."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def child(self, *words: str) -> psutil.Process:
        """The process of `up`'s tree whose command line holds all of `words`."""
        for process in self.tree()[1:]:
            with contextlib.suppress(psutil.Error):
                if all(word in " ".join(process.cmdline()) for word in words):
                    return process
        raise LookupError(words)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        finally:
            stop_group(self.process)
        return self.process.returncode


def wait_until(condition, timeout: float, what: str, every: float = 1.0):
    """Poll `condition()` until it returns something true; fail with `what` after `timeout`."""
    deadline = time.time() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
