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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import Session

from reelroute.deployments.launcher import Services, dispatch_loop, free_port, start_prefect_server
from reelroute.deployments.prefect_setup import deploy
from reelroute.models.db import make_engine
from reelroute.models.migrate import upgrade
from reelroute.models.settings import Settings, settings_from_environment
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

    def client(self) -> SyncPrefectClient:
        with temporary_settings(updates={PREFECT_API_URL: self.server.api_url}):
            return get_client(sync_client=True)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


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
    }
    settings = settings_from_environment(env)
    workers: list[subprocess.Popen] = []
    stop = threading.Event()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        deploy(settings)
        for pool in ("gpu", "cloud"):
            with open(root / f"worker-{pool}.log", "ab") as log:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "reelroute", "worker", "--pool", pool],
                        env=env,
                        cwd=REPO,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        context = contextvars.copy_context()  # the thread talks to this server too
        dispatcher = threading.Thread(
            target=context.run, args=(dispatch_loop, settings, stop), daemon=True
        )
        dispatcher.start()
        engine = make_engine(database_url)
        try:
            yield System(settings, engine, emulator_server.emulator, server, env)
        finally:
            stop.set()
            dispatcher.join(timeout=30)
            for worker in workers:
                stop_group(worker)
            server.stop()
            emulator_server.stop()
            engine.dispose()
