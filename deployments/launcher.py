"""`reelroute up` and its parts: child services in their own process groups, the Prefect server,
the Runway emulator, workers, and the dispatcher loop."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prefect import get_client
from prefect.exceptions import PrefectHTTPStatusError
from sqlalchemy import make_url

from reelroute.flows.dispatch import Dispatcher
from reelroute.flows.reconcile import reconcile_once
from reelroute.models.db import make_engine
from reelroute.models.enums import Pool
from reelroute.models.settings import Settings

log = logging.getLogger(__name__)

WORKER_POLL_SECONDS = "3"  # Prefect's default is 10 s: a video waits less for its worker


@dataclass
class Services:
    """Child processes started by `up`; each in its own process group, stopped together."""

    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        """Start `argv`, logging to `<log_dir>/<name>.log`."""
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{name}.log", "ab") as output:
            process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.children.append((name, process))

    def check(self) -> None:
        """Raise when a child has exited (the system is not whole any more)."""
        for name, process in self.children:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see data/logs/")

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM every group, then SIGKILL what is left after the grace period."""
        for _, process in reversed(self.children):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for _, process in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)  # also grandchildren (flow run processes)
            process.wait()
        self.children.clear()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def wait_until(url: str, timeout: float, what: str) -> None:
    """Poll `url` until it answers 2xx/4xx, or raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up at {url} within {timeout:.0f} s")
        time.sleep(0.3)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start_prefect_server(
    services: Services,
    *,
    port: int,
    home: Path,
    log_dir: Path,
    env: dict[str, str],
    ui: bool = True,
) -> str:
    """A Prefect server on 127.0.0.1:`port` with its own SQLite under `home`; returns its API
    URL once healthy."""
    home.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ] + ([] if ui else ["--no-ui"])
    api_url = f"http://127.0.0.1:{port}/api"
    server_env = {
        **env,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # The UI asks the server for its API address; without these it says port 4200.
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": api_url,
    }
    server_env.pop("PREFECT_API_URL", None)
    services.start("prefect-server", argv, server_env, log_dir)
    wait_until(f"{api_url}/health", 120, "the Prefect server")
    return api_url


def absolute_settings_env(settings: Settings) -> dict[str, str]:
    """Relative paths made absolute, so flow runs (which run in the project folder) and the
    dispatcher use the same database and storage whatever folder `up` was started from."""
    env: dict[str, str] = {}
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        env["REELROUTE_DATABASE_URL"] = f"sqlite:///{Path(url.database).resolve()}"
    if "://" not in settings.storage_url:
        env["REELROUTE_STORAGE_URL"] = str(Path(settings.storage_url).resolve())
    return env


def sandbox_reason(settings: Settings) -> str | None:
    """Why `up` runs in sandbox mode, or None when real Runway and Wan are configured."""
    if settings.sandbox is not None:
        return "REELROUTE_SANDBOX=true" if settings.sandbox else None
    missing = []
    if settings.runway_api_secret is None:
        missing.append("no Runway key (RUNWAYML_API_SECRET)")
    if not wan_weights_present(settings.wan_model):
        missing.append(f"no Wan weights for {settings.wan_model} (REELROUTE_WAN_MODEL)")
    return "; ".join(missing) or None


def wan_weights_present(model: str) -> bool:
    """True when `model` is a local pipeline folder or a Hugging Face id in the local cache."""
    if (Path(model) / "model_index.json").exists():
        return True
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model, "model_index.json"), str)
    except ValueError:  # neither a folder nor a valid Hugging Face id
        return False


def worker_argv(pool: Pool, name: str) -> list[str]:
    """The command of a process worker for `pool`."""
    return [
        sys.executable,
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        pool.value,
        "--type",
        "process",
        "--name",
        name,
    ]


def worker_env(base: dict[str, str], gpu: int | None = None) -> dict[str, str]:
    """A worker's environment: quick polling, heartbeats (zombie detection), its own GPU, and
    this interpreter first on the PATH (the deployments start flow runs with `python`)."""
    env = dict(base)
    interpreter = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        [interpreter, *[p for p in env.get("PATH", "").split(os.pathsep) if p and p != interpreter]]
    )
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", WORKER_POLL_SECONDS)
    env.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


def dispatch_loop(
    settings: Settings, stop: threading.Event, services: Services | None = None
) -> None:
    """Dispatch every `dispatch_interval_seconds` and reconcile every
    `reconcile_interval_seconds` until `stop` is set. Outages are logged and waited out: the
    backlog is safe in the database."""
    engine = make_engine(settings.database_url)
    next_reconcile = 0.0
    try:
        with get_client(sync_client=True) as client:
            dispatcher = Dispatcher(engine, client, settings)
            while not stop.is_set():
                if services is not None:
                    services.check()
                try:
                    dispatcher.dispatch_once()
                    if time.monotonic() >= next_reconcile:
                        reconcile_once(engine, client, settings)
                        next_reconcile = time.monotonic() + settings.reconcile_interval_seconds
                except (httpx.HTTPError, OSError, PrefectHTTPStatusError) as error:
                    log.warning("dispatcher: %s; retrying", error)
                stop.wait(settings.dispatch_interval_seconds)
    finally:
        engine.dispose()
