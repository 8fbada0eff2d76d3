"""A whole local reelroute for benchmarks: Prefect server, emulator, process workers, dispatcher."""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.types.entrypoint import EntrypointType

from reelroute.deployments.launcher import (
    Services,
    free_port,
    start_prefect_server,
    worker_argv,
    worker_env,
)
from reelroute.deployments.prefect_setup import deploy, job_variables
from reelroute.flows.loop import dispatch_loop
from reelroute.models.assembly import Settings, settings_from_environment
from reelroute.models.core.enums import Pool
from reelroute.models.store.migrate import upgrade
from reelroute.providers.emulator import EmulatorScript, EmulatorServer, RunwayEmulator

REPO = Path(__file__).resolve().parent.parent


@dataclass
class LocalSystem:
    """Handles on the running system."""

    root: Path
    settings: Settings
    emulator: RunwayEmulator
    api_url: str
    services: Services
    stop: threading.Event
    threads: list[threading.Thread]

    def start_dispatcher(self) -> float:
        """Start the dispatcher and reconciler loop; returns when it started (time.time())."""
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(dispatch_loop, self.settings, self.stop), daemon=True
        )
        thread.start()
        self.threads.append(thread)
        return time.time()

    def worker(self, pool: str) -> psutil.Process:
        """The worker process of `pool`."""
        for child in self.services.children:
            if child.name == f"worker-{pool}":
                return psutil.Process(child.process.pid)
        raise KeyError(pool)


@contextmanager
def local_system(
    root: Path,
    *,
    cloud_slots: int,
    latency_s: float,
    runway_concurrency: int = 1_000,
    extra_env: dict[str, str] | None = None,
    database_url: str | None = None,
    prefect_database_url: str | None = None,
) -> Iterator[LocalSystem]:
    """Start everything (sandbox providers), yield, stop everything. Items on SQLite under
    `root` unless `database_url`; the Prefect server on SQLite unless `prefect_database_url`."""
    services = Services()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    emulator_server = EmulatorServer(
        RunwayEmulator(EmulatorScript(latency_s=latency_s, concurrency=runway_concurrency))
    )
    emulator_server.start()
    database_url = database_url or f"sqlite:///{root / 'reelroute.db'}"
    upgrade(database_url)
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "REELROUTE_DATABASE_URL": database_url,
        "REELROUTE_STORAGE_URL": str(root / "storage"),
        "REELROUTE_SANDBOX": "true",
        "REELROUTE_RUNWAY_BASE_URL": emulator_server.url,
        "REELROUTE_RUNWAY_POLL_SECONDS": "1",
        "REELROUTE_CLOUD_SLOTS": str(cloud_slots),
        "REELROUTE_DISPATCH_INTERVAL_SECONDS": "0.5",
        "REELROUTE_RECONCILE_INTERVAL_SECONDS": "5",
        **(extra_env or {}),
    }
    settings = settings_from_environment(env)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        start_prefect_server(
            services,
            port=port,
            home=root / "prefect",
            log_dir=root / "logs",
            env=dict(os.environ),
            ui=False,
            database_url=prefect_database_url,
        )
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            deploy(settings)
            from bench.trivial_flow import noop

            # `bench` is not part of the installed package: its runs find it on PYTHONPATH.
            trivial = job_variables(entrypoint="bench.trivial_flow:noop")
            trivial["env"]["PYTHONPATH"] = str(REPO)
            noop.deploy(
                name="cloud",
                work_pool_name="cloud",
                job_variables=trivial,
                entrypoint_type=EntrypointType.MODULE_PATH,
                ignore_warnings=True,
                print_next_steps=False,
                build=False,
                push=False,
            )
            workers_env = worker_env({**env, "PREFECT_WORKER_QUERY_SECONDS": "1"})
            services.start(
                "worker-cloud", worker_argv(Pool.cloud, "bench-cloud"), workers_env, root / "logs"
            )
            # As an operator starts it: with its warm pipeline process (REELROUTE_WAN_RESIDENT).
            gpu = [sys.executable, "-m", "reelroute", "worker", "--pool", "gpu", "--gpus", "cpu"]
            services.start("worker-gpu", [*gpu, "--name", "bench-gpu"], workers_env, root / "logs")
            time.sleep(3)  # workers registered and polling
            yield LocalSystem(
                root, settings, emulator_server.emulator, api_url, services, stop, threads
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        services.stop()
        emulator_server.stop()
