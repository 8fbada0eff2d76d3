"""`reelroute worker --pool gpu --gpus 0,1,...`: a GPU host.

One pipeline process per GPU (`reelroute wan-server`, which loads Wan once and keeps it), and
one Prefect process worker that runs at most one flow run per GPU process (`--limit`). The flow
runs are thin clients: each finds a free pipeline process of its host through
`REELROUTE_WAN_SERVERS` (providers.wan_process). A process that dies is restarted (the
supervisor's backoff); every process dies with the worker (even a SIGKILL of it). The health of
each pipeline process is logged when it is ready and every HEALTH_EVERY seconds.

With REELROUTE_WAN_RESIDENT=false the worker is a plain process worker and each flow run loads
the pipeline itself (the behaviour before the warm processes; `make bench` compares them).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from reelroute.deployments.launcher import Services, worker_argv, worker_env
from reelroute.models.enums import Pool
from reelroute.models.settings import Settings
from reelroute.providers.wan_process import Health, ask_health, socket_folder

log = logging.getLogger(__name__)

HEALTH_EVERY = 60.0


def parse_gpus(text: str | None) -> list[str]:
    """`0,1` (CUDA devices), `cpu,cpu` or `cpu:0,cpu:1` (CPU processes, for tests and hosts
    without a GPU); None: every visible CUDA device, else one CPU process."""
    if text is None:
        return detect_gpus()
    gpus = []
    for number, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
        if part.isdigit():
            gpus.append(part)
        elif part == "cpu" or part.startswith("cpu:"):
            gpus.append(part if ":" in part else f"cpu:{number}")
        else:
            raise ValueError(f"--gpus: {part!r} is not a GPU number or cpu; e.g. 0,1 or cpu,cpu")
    if not gpus:
        raise ValueError("--gpus: name at least one GPU, e.g. 0 or 0,1")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus: {text!r} names a GPU twice; one process per GPU")
    return gpus


def detect_gpus() -> list[str]:
    """The CUDA devices this host shows (CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found = [part.strip() for part in visible.split(",") if part.strip()]
        return [str(n) for n in range(len(found))] or ["cpu:0"]
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            listing = subprocess.run(  # noqa: S603 (nvidia's own tool, fixed arguments)
                [smi, "-L"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            listing = ""
        count = sum(1 for line in listing.splitlines() if line.startswith("GPU "))
        if count:
            return [str(n) for n in range(count)]
    return ["cpu:0"]


def server_env(base: dict[str, str], gpu: str) -> dict[str, str]:
    """The environment of the pipeline process of `gpu`: it sees that GPU only."""
    env = dict(base)
    if gpu.startswith("cpu"):
        env["CUDA_VISIBLE_DEVICES"] = ""
        env["REELROUTE_WAN_DEVICE"] = "cpu"
    else:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    env.pop("REELROUTE_WAN_SERVERS", None)
    return env


def run_gpu_host(
    settings: Settings, gpus: list[str], name: str, stop: threading.Event | None = None
) -> None:
    """Start the pipeline processes and the worker, supervise them until SIGTERM or SIGINT (or
    `stop`), then stop them all."""
    stop = stop or threading.Event()
    folder = socket_folder()
    sockets = [folder / f"gpu-{index}.sock" for index in range(len(gpus))]
    services = Services()
    base = worker_env(dict(os.environ))
    for gpu, path in zip(gpus, sockets, strict=True):
        argv = [sys.executable, "-m", "reelroute", "wan-server", "--socket", str(path)]
        services.start(
            f"wan-{gpu}",
            [*argv, "--gpu", gpu],
            server_env(base, gpu),
            None,
            death_signal=signal.SIGTERM,  # it frees the GPU and its socket on the way out
        )
    flows_env = {**base, "REELROUTE_WAN_SERVERS": ",".join(str(path) for path in sockets)}
    # SIGKILL, not SIGTERM: Prefect's worker answers SIGTERM with a graceful stop that waits for
    # its flow runs, whose pipeline processes died with us; the chaos soak found a killed host's
    # worker still alive 20 minutes later, starting flow runs that waited on dead sockets while
    # holding their items. Its flow runs notice that this host is gone and end their attempt
    # (`RemoteWan`).
    services.start(
        "worker",
        worker_argv(Pool.gpu, name, limit=len(gpus)),
        flows_env,
        None,
        death_signal=signal.SIGKILL,
    )
    log.info("GPU host %s: %d pipeline process(es) on %s", name, len(gpus), ", ".join(gpus))

    def ask_to_stop(_signum: int, _frame: object) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, ask_to_stop)
        signal.signal(signal.SIGINT, ask_to_stop)
    reported: dict[Path, float] = {}
    try:
        while not stop.wait(0.5):
            services.supervise()
            report_health(sockets, reported)
    finally:
        services.stop()


def report_health(sockets: list[Path], reported: dict[Path, float]) -> None:
    """Log each process's health when it first answers, then every HEALTH_EVERY seconds."""
    now = time.monotonic()
    for path in sockets:
        if now - reported.get(path, -HEALTH_EVERY) < HEALTH_EVERY or not path.exists():
            continue
        health = ask_health(path, timeout=2.0)
        if health is not None:
            log.info("%s", health.line())
            reported[path] = now


def local_health(base: Path | None = None) -> list[Health]:
    """The health of every pipeline process of this user on this host."""
    from reelroute.providers.wan_process import local_sockets

    found = [ask_health(path, timeout=2.0) for path in local_sockets(base)]
    return [health for health in found if health is not None]
