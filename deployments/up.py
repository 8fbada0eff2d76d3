"""`reelroute up`: the whole system on one machine, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import logging
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
    dispatch_loop,
    port_is_free,
    sandbox_reason,
    start_prefect_server,
    supervise_until,
    wait_until,
    worker_argv,
    worker_env,
)
from reelroute.deployments.prefect_setup import deploy
from reelroute.models.enums import Pool
from reelroute.models.migrate import upgrade
from reelroute.models.settings import Settings, get_settings, load_settings


def run_up(settings: Settings, *, host: str, port: int, gpus: list[str] | None = None) -> int:
    """Start everything, print where to look, block until Ctrl-C or SIGTERM; returns the exit
    code. A child that dies (a worker, the web app, the emulator, the Prefect server) is started
    again with a growing backoff; nothing is left running afterwards."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    data = Path("data").resolve()
    gpus = gpus or ["cpu:0"]
    env = {**os.environ, **absolute_settings_env(settings)}
    if settings.wan_resident and "REELROUTE_GPU_SLOTS" not in os.environ:
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
        upgrade(env.get("REELROUTE_DATABASE_URL", settings.database_url))
        prefect_ui = _prefect(settings, env, services, data)
        supervisor.start()
        reason = sandbox_reason(settings)
        if reason is not None:
            env["REELROUTE_SANDBOX"] = "true"
            if settings.runway_base_url is None:
                _emulator(settings, env, services, data)
        os.environ.update(env)
        get_settings.cache_clear()
        settings = load_settings()
        # Prefect read its settings when it was imported: point this process at the server.
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
            deploy(settings)
            token_file = _admin_token(env, data)
            _webhook_key(env, data)
            settings = settings.model_copy(
                update={"webhook_signing_key": SecretStr(env["REELROUTE_WEBHOOK_SIGNING_KEY"])}
            )
            services.start(
                "webhooks", [sys.executable, "-m", "reelroute", "webhooks"], env, data / "logs"
            )
            services.start(
                "web",
                [sys.executable, "-m", "reelroute", "web", "--host", host, "--port", str(port)],
                env,
                data / "logs",
            )
            wait_until(f"http://{host}:{port}/docs", 60, "the web app")
            gpu_worker = [sys.executable, "-m", "reelroute", "worker", "--pool", "gpu"]
            gpu_worker += ["--gpus", ",".join(gpus), "--name", "gpu-local"]
            services.start("worker-gpu", gpu_worker, env, data / "logs")
            services.start(
                "worker-cloud",
                worker_argv(Pool.cloud, "cloud-local"),
                worker_env(env),
                data / "logs",
            )
            _announce(prefect_ui, host, port, data, reason, token_file)
            if settings.wan_resident:
                threading.Thread(
                    target=_show_gpus, args=(services, stop), name="gpus", daemon=True
                ).start()
            dispatch_loop(settings, stop)
    except KeyboardInterrupt:
        pass
    except RuntimeError as error:
        typer.echo(f"reelroute up: {error}", err=True)
        return 1
    finally:
        typer.echo("stopping…")
        stop.set()
        if supervisor.is_alive():
            supervisor.join(timeout=5)
        services.stop()
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
                typer.echo(f"  GPU ready:    {health.line()}")
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
    typer.echo("\nreelroute is up")
    typer.echo(
        f"  admin pages:  http://{host}:{port}/admin (user admin, password: the admin token)"
    )
    typer.echo(f"  Prefect UI:   {prefect_ui}")
    typer.echo(f"  REST API:     http://{host}:{port}/api (OpenAPI: http://{host}:{port}/docs)")
    if token_file is not None:
        typer.echo(f"  admin token:  in {token_file} (set REELROUTE_ADMIN_TOKEN to choose one)")
    typer.echo("  add a task:   .venv/bin/reelroute add photo.jpg --prompt 'waves roll in'")
    typer.echo(f"  logs:         {data / 'logs'}")
    if reason is not None:
        typer.echo(
            f"  SANDBOX MODE: {reason}: Runway goes to the bundled emulator and Wan "
            "runs a tiny random model. Videos are real files, not real pictures."
        )
    typer.echo("Ctrl-C stops everything.\n")


def _prefect(settings: Settings, env: dict[str, str], services: Services, data: Path) -> str:
    """The Prefect server to use: PREFECT_API_URL's, or one started here on its own SQLite."""
    if "PREFECT_API_URL" in os.environ:
        api = os.environ["PREFECT_API_URL"].rstrip("/")
        wait_until(f"{api}/health", 30, "the Prefect server at PREFECT_API_URL")
        return api.removesuffix("/api")
    if not port_is_free(settings.prefect_port):
        raise RuntimeError(
            f"port {settings.prefect_port} is taken: stop what runs there, set "
            "REELROUTE_PREFECT_PORT, or point PREFECT_API_URL at a running Prefect server"
        )
    api_url = start_prefect_server(
        services,
        port=settings.prefect_port,
        home=data / "prefect",
        log_dir=data / "logs",
        env=env,
        database_url=settings.prefect_database_url,
    )
    env["PREFECT_API_URL"] = api_url
    return api_url.removesuffix("/api")


def _emulator(settings: Settings, env: dict[str, str], services: Services, data: Path) -> None:
    if not port_is_free(settings.emulator_port):
        raise RuntimeError(f"port {settings.emulator_port} (REELROUTE_EMULATOR_PORT) is taken")
    services.start(
        "runway-emulator",
        [sys.executable, "-m", "reelroute", "emulator", "--port", str(settings.emulator_port)],
        env,
        data / "logs",
    )
    wait_until(f"http://127.0.0.1:{settings.emulator_port}/v1/tasks/none", 30, "the emulator")
