"""`reelroute up`: the whole system on one machine, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import typer
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import SecretStr

from reelroute.deployments.launcher import (
    Services,
    absolute_settings_env,
    port_is_free,
    sandbox_reason,
    start_prefect_server,
    supervise_until,
    wait_until,
    worker_argv,
    worker_env,
)
from reelroute.deployments.prefect_setup import deploy
from reelroute.flows.loop import dispatch_loop
from reelroute.models.assembly import Settings, get_settings, load_settings
from reelroute.models.core import Pool, configure_logging
from reelroute.models.store import upgrade

SHUTDOWN_LIMIT_SECONDS = 45.0
"""The longest a stop may take: past it, what is left is killed and `up` exits."""


def say(text: str) -> None:
    """Print a line; a closed stdout (`make run | tee log`, then Ctrl-C) must not stop the
    shutdown: the line is dropped, and so are the later ones."""
    try:
        typer.echo(text)
    except (BrokenPipeError, OSError):
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


def _watchdog(services: Services) -> None:
    """Kill everything `up` started and exit, if the stop takes longer than it may."""

    def expire() -> None:
        alive = [c.name for c in services.children if c.process.poll() is None]
        say(f"reelroute up: the stop took over {SHUTDOWN_LIMIT_SECONDS:.0f} s; killing {alive}")
        for child in list(services.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
        os._exit(1)

    timer = threading.Timer(SHUTDOWN_LIMIT_SECONDS, expire)
    timer.daemon = True
    timer.start()


def run_up(settings: Settings, *, host: str, port: int, gpus: list[str] | None = None) -> int:
    """Start everything, print where to look, block until Ctrl-C or SIGTERM; returns the exit
    code. A child that dies (a worker, the web app, the emulator, the Prefect server) is started
    again with a growing backoff; nothing is left running afterwards: each child dies with `up`
    (even by SIGKILL), and a stop takes at most SHUTDOWN_LIMIT_SECONDS, saying which child it
    waits for."""
    configure_logging(settings)
    data = Path("data").resolve()
    gpus = gpus or ["cpu:0"]
    env = {**os.environ, **absolute_settings_env(settings)}
    if settings.wan.resident and "REELROUTE_GPU_SLOTS" not in os.environ:
        env["REELROUTE_GPU_SLOTS"] = str(len(gpus))  # the gpu pool: one slot per GPU process
    services = Services()
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    supervisor = threading.Thread(
        target=supervise_until, args=(services, stop), name="supervisor", daemon=True
    )
    try:
        upgrade(env.get("REELROUTE_DATABASE_URL", settings.store.database_url))
        prefect_ui = _prefect(settings, env, services, data)
        supervisor.start()
        reason = sandbox_reason(settings)
        if reason is not None:
            env["REELROUTE_SANDBOX"] = "true"
            if settings.runway.base_url is None:
                _emulator(settings, env, services, data)
        os.environ.update(env)
        get_settings.cache_clear()
        settings = load_settings()
        # Prefect read its settings when it was imported: point this process at the server.
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
            deploy(settings)
            token_file = _admin_token(env, data)
            _webhook_key(env, data)
            settings = settings.replaced(
                webhook_signing_key=SecretStr(env["REELROUTE_WEBHOOK_SIGNING_KEY"])
            )
            services.start(
                "webhooks",
                [sys.executable, "-m", "reelroute", "webhooks"],
                env,
                data / "logs",
                death_signal=signal.SIGTERM,
            )
            services.start(
                "web",
                [sys.executable, "-m", "reelroute", "web", "--host", host, "--port", str(port)],
                env,
                data / "logs",
                death_signal=signal.SIGTERM,
            )
            wait_until(f"http://{host}:{port}/docs", 60, "the web app")
            gpu_worker = [sys.executable, "-m", "reelroute", "worker", "--pool", "gpu"]
            gpu_worker += ["--gpus", ",".join(gpus), "--name", "gpu-local"]
            # The GPU host stops its pipeline processes on SIGTERM; the cloud worker's flow runs
            # are its own group's, killed with it (its polite stop would wait for them).
            services.start(
                "worker-gpu", gpu_worker, env, data / "logs", death_signal=signal.SIGTERM
            )
            services.start(
                "worker-cloud",
                worker_argv(Pool.cloud, "cloud-local"),
                worker_env(env),
                data / "logs",
                death_signal=signal.SIGKILL,
            )
            _announce(prefect_ui, host, port, data, reason, token_file)
            if settings.wan.resident:
                threading.Thread(
                    target=_show_gpus, args=(services, stop), name="gpus", daemon=True
                ).start()
            dispatch_loop(settings, stop)
    except KeyboardInterrupt:
        pass
    except RuntimeError as error:
        with contextlib.suppress(OSError):
            typer.echo(f"reelroute up: {error}", err=True)
        return 1
    finally:
        _watchdog(services)
        say("stopping…")
        stop.set()
        if supervisor.is_alive():
            supervisor.join(timeout=5)
        services.stop(say=say)
        say("stopped")
    return 0


def _show_gpus(services: Services, stop: threading.Event) -> None:
    """Print each Wan pipeline process's health once it has loaded (and again after a
    restart of the worker)."""
    from reelroute.providers.wan_process import ask_health, local_sockets

    shown: set[tuple[int, str]] = set()
    while not stop.wait(2.0):
        workers = [c for c in services.children if c.name == "worker-gpu"]
        if not workers:
            continue
        pid = workers[0].process.pid
        for path in local_sockets():
            if path.parent.name != str(pid) or (pid, path.name) in shown:
                continue
            health = ask_health(path, timeout=2.0)
            if health is not None:
                say(f"  GPU ready:    {health.line()}")
                shown.add((pid, path.name))


def _webhook_key(env: dict[str, str], data: Path) -> None:
    """Without REELROUTE_WEBHOOK_SIGNING_KEY, make one for this installation (kept like the
    admin token), so webhook endpoints can be registered out of the box."""
    if env.get("REELROUTE_WEBHOOK_SIGNING_KEY"):
        return
    path = data / "webhook-signing-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    env["REELROUTE_WEBHOOK_SIGNING_KEY"] = path.read_text().strip()


def _admin_token(env: dict[str, str], data: Path) -> Path | None:
    """Without REELROUTE_ADMIN_TOKEN, make one for this installation, kept in a file only its
    owner can read (never printed), so the admin API works out of the box."""
    if env.get("REELROUTE_ADMIN_TOKEN"):
        return None
    path = data / "admin-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    env["REELROUTE_ADMIN_TOKEN"] = path.read_text().strip()
    return path


def _announce(
    prefect_ui: str,
    host: str,
    port: int,
    data: Path,
    reason: str | None,
    token_file: Path | None,
) -> None:
    say("\nreelroute is up")
    say(f"  admin pages:  http://{host}:{port}/admin (user admin, password: the admin token)")
    say(f"  Prefect UI:   {prefect_ui}")
    say(f"  REST API:     http://{host}:{port}/api (OpenAPI: http://{host}:{port}/docs)")
    if token_file is not None:
        say(f"  admin token:  in {token_file} (set REELROUTE_ADMIN_TOKEN to choose one)")
    say("  add a task:   .venv/bin/reelroute add photo.jpg --prompt 'waves roll in'")
    say(f"  logs:         {data / 'logs'}")
    if reason is not None:
        say(
            f"  SANDBOX MODE: {reason}: Runway goes to the bundled emulator and Wan "
            "runs a tiny random model. Videos are real files, not real pictures."
        )
    say("Ctrl-C stops everything.\n")


def _prefect(settings: Settings, env: dict[str, str], services: Services, data: Path) -> str:
    """The Prefect server to use: PREFECT_API_URL's, or one started here on its own SQLite."""
    if "PREFECT_API_URL" in os.environ:
        api = os.environ["PREFECT_API_URL"].rstrip("/")
        wait_until(f"{api}/health", 30, "the Prefect server at PREFECT_API_URL")
        return api.removesuffix("/api")
    if not port_is_free(settings.local.prefect_port):
        raise RuntimeError(
            f"port {settings.local.prefect_port} is taken: stop what runs there, set "
            "REELROUTE_PREFECT_PORT, or point PREFECT_API_URL at a running Prefect server"
        )
    api_url = start_prefect_server(
        services,
        port=settings.local.prefect_port,
        home=data / "prefect",
        log_dir=data / "logs",
        env=env,
        database_url=settings.local.prefect_database_url,
    )
    env["PREFECT_API_URL"] = api_url
    return api_url.removesuffix("/api")


def _emulator(settings: Settings, env: dict[str, str], services: Services, data: Path) -> None:
    if not port_is_free(settings.local.emulator_port):
        raise RuntimeError(
            f"port {settings.local.emulator_port} (REELROUTE_EMULATOR_PORT) is taken"
        )
    services.start(
        "runway-emulator",
        [
            sys.executable,
            "-m",
            "reelroute",
            "emulator",
            "--port",
            str(settings.local.emulator_port),
        ],
        env,
        data / "logs",
        death_signal=signal.SIGTERM,
    )
    wait_until(f"http://127.0.0.1:{settings.local.emulator_port}/v1/tasks/none", 30, "the emulator")
