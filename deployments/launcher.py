"""`reelroute up` and its parts: child services in their own process groups, the Prefect server,
the Runway emulator, and the workers (the dispatcher's loop is flows.loop)."""

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import make_url

from reelroute.models.assembly import Settings
from reelroute.models.core import Pool

log = logging.getLogger(__name__)

WORKER_POLL_SECONDS = "3"  # Prefect's default is 10 s: a video waits less for its worker


RESTART_BACKOFF_SECONDS = 1.0  # first wait before restarting a child that died
RESTART_BACKOFF_MAX_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a child up this long has recovered: its backoff starts again


@dataclass
class Child:
    """One supervised process: how to start it again, and its restart history."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_dir: Path | None
    """Where `<name>.log` goes (None: the supervisor's own output)."""
    process: subprocess.Popen[bytes]
    started_at: float
    restarts: int = 0
    """Restarts since it last stayed up STABLE_SECONDS (what the backoff grows with)."""
    total_restarts: int = 0
    restart_at: float | None = None
    """When a dead child is started again (None while it runs)."""
    death_signal: signal.Signals | None = None
    """What it gets when its supervisor dies (Linux), even by SIGKILL (None: nothing)."""
    paused: bool = False
    """Stopped on purpose (`Services.pause`): not restarted until `resume`."""

    def backoff(self) -> float:
        """Seconds to wait before the next restart: doubling, capped."""
        return float(min(RESTART_BACKOFF_MAX_SECONDS, RESTART_BACKOFF_SECONDS * 2**self.restarts))


@dataclass
class Services:
    """Child processes started by `up`, each in its own process group. `supervise` restarts
    one that died (with a doubling backoff, logged); `stop` ends them all."""

    children: list[Child] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_dir: Path | None,
        *,
        death_signal: signal.Signals | None = None,
    ) -> None:
        """Start `argv`, logging to `<log_dir>/<name>.log` (None: to our output), and
        supervise it. `death_signal`: sent to it when the supervising thread dies (Linux), even
        by SIGKILL, so that it cannot outlive us (a GPU host's pipeline processes and worker)."""
        process = _spawn(argv, env, _log_file(log_dir, name), death_signal=death_signal)
        child = Child(
            name, argv, env, log_dir, process, time.monotonic(), death_signal=death_signal
        )
        with self._lock:
            self.children.append(child)

    def supervise(self, now: float | None = None) -> list[str]:
        """Restart what died (each after its backoff); returns what happened, also logged."""
        now = time.monotonic() if now is None else now
        events = []
        with self._lock:
            for child in self.children:
                if child.paused:
                    continue
                code = child.process.poll()
                if code is None:
                    if now - child.started_at > STABLE_SECONDS:
                        child.restarts = 0
                    continue
                if child.restart_at is None:
                    child.restart_at = now + child.backoff()
                    where = _log_file(child.log_dir, child.name) or "above"
                    events.append(
                        f"{child.name} exited with {code}; restarting in {child.backoff():.0f} s "
                        f"(log: {where})"
                    )
                    _signal_group(child.process, signal.SIGKILL)  # what it left behind
                elif now >= child.restart_at:
                    child.process = _spawn(
                        child.argv,
                        child.env,
                        _log_file(child.log_dir, child.name),
                        death_signal=child.death_signal,
                    )
                    child.started_at, child.restart_at = now, None
                    child.restarts += 1
                    child.total_restarts += 1
                    events.append(f"{child.name} restarted (restart {child.restarts})")
        for event in events:
            log.warning("%s", event)
        return events

    def pause(self, name: str) -> bool:
        """Stop the child `name` politely (SIGTERM: a worker finishes what it runs and takes
        nothing new) and keep it stopped; True when it was running."""
        with self._lock:
            found = [c for c in self.children if c.name == name and not c.paused]
            for child in found:
                child.paused = True
                _signal_group(child.process, signal.SIGTERM)
        if found:
            log.warning("%s paused", name)
        return bool(found)

    def resume(self, name: str) -> bool:
        """Start a paused child again; True when it was paused."""
        with self._lock:
            found = [c for c in self.children if c.name == name and c.paused]
            for child in found:
                if child.process.poll() is None:  # still finishing: make sure it ends
                    _signal_group(child.process, signal.SIGKILL)
                    child.process.wait()
                child.process = _spawn(
                    child.argv,
                    child.env,
                    _log_file(child.log_dir, child.name),
                    death_signal=child.death_signal,
                )
                child.paused, child.started_at, child.restart_at = False, time.monotonic(), None
        if found:
            log.warning("%s resumed", name)
        return bool(found)

    def stop(self, grace_seconds: float = 10.0, say: Callable[[str], None] | None = None) -> None:
        """SIGTERM every group, then SIGKILL what is left after the grace period; `say` is
        told which child is being waited for (2 s after the SIGTERM), so a slow stop says
        why."""
        with self._lock:
            children, self.children = self.children, []
        for child in reversed(children):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        told = time.monotonic() + 2.0
        for child in children:
            while child.process.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=max(0.05, min(deadline, told) - time.monotonic()))
                if child.process.poll() is None and time.monotonic() >= told and say:
                    say(f"waiting for {child.name} (pid {child.process.pid}) to stop…")
                    told = deadline
            _signal_group(child.process, signal.SIGKILL)  # also grandchildren (flow runs)
            child.process.wait()


def _log_file(log_dir: Path | None, name: str) -> Path | None:
    return None if log_dir is None else log_dir / f"{name}.log"


PR_SET_PDEATHSIG = 1


def _on_parent_death(signum: signal.Signals) -> Callable[[], None]:
    """What the child runs between fork and exec: ask the kernel for `signum` when the thread
    that started it dies."""

    def arrange() -> None:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum))

    return arrange


def _spawn(
    argv: list[str],
    env: dict[str, str],
    log_file: Path | None,
    *,
    death_signal: signal.Signals | None = None,
) -> subprocess.Popen[bytes]:
    preexec = (
        _on_parent_death(death_signal)
        if death_signal is not None and sys.platform == "linux"
        else None
    )
    if log_file is None:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            argv, env=env, start_new_session=True, preexec_fn=preexec
        )
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as output:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            argv,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )


def supervise_until(services: Services, stop: threading.Event, every: float = 0.5) -> None:
    """Supervise `services` every `every` seconds until `stop` is set (a thread's target)."""
    while not stop.wait(every):
        try:
            services.supervise()
        except Exception:  # the supervisor must outlive its own surprises
            log.exception("supervisor: unexpected error; carrying on")


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
    database_url: str | None = None,
) -> str:
    """A Prefect server on 127.0.0.1:`port`, on its own SQLite under `home` or on the
    PostgreSQL database `database_url` (a `postgresql+asyncpg://` URL; created when missing);
    returns its API URL once healthy."""
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
    if database_url is not None:
        ensure_postgres_database(database_url)
        server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    server_env.pop("PREFECT_API_URL", None)
    services.start("prefect-server", argv, server_env, log_dir, death_signal=signal.SIGTERM)
    wait_until(f"{api_url}/health", 120, "the Prefect server")
    return api_url


def ensure_postgres_database(url: str) -> None:
    """Create the PostgreSQL database of `url` when it does not exist yet (connecting to the
    server's `postgres` database with the same credentials)."""
    import psycopg

    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
        ).fetchone()
        if exists is None:
            name = (target.database or "").replace('"', '""')
            connection.execute(f'CREATE DATABASE "{name}"')


def absolute_settings_env(settings: Settings) -> dict[str, str]:
    """Relative paths made absolute, so flow runs (which run in the project folder) and the
    dispatcher use the same database and storage whatever folder `up` was started from."""
    env: dict[str, str] = {}
    url = make_url(settings.store.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        env["REELROUTE_DATABASE_URL"] = f"sqlite:///{Path(url.database).resolve()}"
    if "://" not in settings.store.storage_url:
        env["REELROUTE_STORAGE_URL"] = str(Path(settings.store.storage_url).resolve())
    return env


def sandbox_reason(settings: Settings) -> str | None:
    """Why `up` runs in sandbox mode, or None when real Runway and Wan are configured."""
    if settings.sandbox is not None:
        return "REELROUTE_SANDBOX=true" if settings.sandbox else None
    missing = []
    if settings.runway.api_secret is None:
        missing.append("no Runway key (RUNWAYML_API_SECRET)")
    if not wan_weights_present(settings.wan.model):
        missing.append(f"no Wan weights for {settings.wan.model} (REELROUTE_WAN_MODEL)")
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


def worker_argv(
    pool: Pool, name: str, limit: int | None = None, queues: list[str] | None = None
) -> list[str]:
    """The command of a process worker for `pool` (running at most `limit` flow runs, polling
    `queues`, or every queue of the pool)."""
    argv = [
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
    for queue in queues or ():
        argv += ["--work-queue", queue]
    return argv + ([] if limit is None else ["--limit", str(limit)])


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
