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
from typing import Any

from reelroute.deployments.launcher import Services, worker_argv, worker_env
from reelroute.flows.dispatch import queues_for
from reelroute.models.assembly import Settings
from reelroute.models.core import Pool, ReelrouteError
from reelroute.providers.wan_presets import WanPreset, preset_named
from reelroute.providers.wan_process import Health, ask_health, socket_folder

log = logging.getLogger(__name__)

BREAKER_EVERY = 5.0
"""Seconds between two reads of the host's breaker."""
HEALTH_EVERY = 30.0
REGISTER_EVERY = 30.0


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
    base = worker_env(dict(os.environ)) | {
        "REELROUTE_WAN_HOST": name,
        "REELROUTE_WAN_PRESET": settings.wan.preset,
    }
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
        worker_argv(
            Pool.gpu,
            name,
            limit=len(gpus),
            queues=queues_for(Pool.gpu, preset_named(settings.wan.preset).keeps_quality),
        ),
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
    reported: dict[Path, Health] = {}
    registry = Registry(settings, name, slots=len(gpus))
    try:
        while not stop.wait(0.5):
            services.supervise()
            report_health(sockets, reported)
            if registry.follow_breaker(services):
                registry.report(list(reported.values()))
    finally:
        services.stop()
        registry.forget()


def report_health(sockets: list[Path], reported: dict[Path, Health]) -> None:
    """Ask each process's health every HEALTH_EVERY seconds (logged when it first answers and
    then at that pace); `reported` keeps the latest answers."""
    now = time.time()
    for path in sockets:
        last = reported.get(path)
        if (last is not None and now - last.asked_at < HEALTH_EVERY) or not path.exists():
            continue
        health = ask_health(path, timeout=2.0)
        if health is not None:
            health.asked_at = now
            log.info("%s", health.line())
            reported[path] = health


class Registry:
    """This host in the database's list of GPU hosts (models.planning.hosts): its GPUs, their
    class and preset, the pipelines' loads and videos; written every REGISTER_EVERY seconds, and
    removed when it stops. A database outage only delays it."""

    def __init__(self, settings: Settings, name: str, *, slots: int) -> None:
        self.settings, self.name, self.slots = settings, name, slots
        self._engine: Any = None
        self._next = 0.0
        self._next_breaker = 0.0
        self.taking = True
        """Whether the worker takes items (False while the host's breaker is open)."""

    def follow_breaker(self, services: Services, now: float | None = None) -> bool:
        """Every BREAKER_EVERY seconds, do as this host's breaker says: while it is open, the
        worker is paused (it finishes what it runs, takes nothing new) and the host leaves
        Wan's lanes; once a probe is due, the worker takes items again and the next outcome
        closes or re-opens it. Returns whether the host takes items."""
        now = time.monotonic() if now is None else now
        if now < self._next_breaker:
            return self.taking
        self._next_breaker = now + BREAKER_EVERY
        from reelroute.models.core import utcnow
        from reelroute.models.health import (
            Breaker,
            begin_probe,
            gate,
            host_breaker,
            probe_stale_after,
        )
        from reelroute.models.store import make_engine, session_scope

        name = host_breaker(self.name)
        try:
            self._engine = self._engine or make_engine(self.settings.store.database_url)
            with session_scope(self._engine) as session:
                moment = utcnow()
                allowed = gate(session.get(Breaker, name), moment, probe_stale_after(self.settings))
                if allowed == 1:
                    begin_probe(session, name, None, moment)
        except ReelrouteError as error:
            log.warning("could not read the breaker of GPU host %s: %s", self.name, error)
            return self.taking
        if allowed == 0 and self.taking:
            log.warning("GPU host %s: its breaker is open; the worker takes nothing", self.name)
            services.pause("worker")
            self.forget()
            self.taking = False
        elif allowed != 0 and not self.taking:
            why = "probing" if allowed == 1 else "its breaker closed"
            log.warning("GPU host %s: %s; the worker takes items again", self.name, why)
            services.resume("worker")
            self.taking = True
            self._next = 0.0  # report the host at once
        return self.taking

    def report(self, healths: list[Health]) -> None:
        """Write the host's row when it is due and a pipeline process has answered."""
        if time.monotonic() < self._next or not healths:
            return
        self._next = time.monotonic() + REGISTER_EVERY
        from reelroute.models.planning import report_host
        from reelroute.models.store import make_engine, session_scope
        from reelroute.providers.wan_presets import preset_named

        preset = healths[0].preset or self.settings.wan.preset

        try:
            self._engine = self._engine or make_engine(self.settings.store.database_url)
            with session_scope(self._engine) as session:
                report_host(
                    session,
                    name=self.name,
                    gpu_class=healths[0].gpu_class or "unknown",
                    preset=preset,
                    slots=self.slots,
                    full_quality=preset_named(preset).keeps_quality,
                    loads=sum(h.loads for h in healths),
                    videos=sum(h.videos for h in healths),
                )
        except ReelrouteError as error:
            log.warning("could not report GPU host %s: %s", self.name, error)

    def forget(self) -> None:
        """The host stops (or stops taking items): its row goes (its slots leave Wan's lane at
        once)."""
        if self._engine is None:
            return
        from reelroute.models.planning import forget_host
        from reelroute.models.store import session_scope

        try:
            with session_scope(self._engine) as session:
                forget_host(session, self.name)
        except ReelrouteError as error:
            log.warning("could not remove GPU host %s: %s", self.name, error)
        finally:
            self._engine.dispose()


def preflight(settings: Settings) -> WanPreset:
    """The preset of this host, checked before any pipeline process starts: a ConfigurationError
    says what to fix (a LoRA it needs and lacks, or one for another model; an attention backend
    or fp8 this host cannot run). The pipeline process checks again on its device."""
    from reelroute.providers.tiny_wan import DEFAULT_SHAPE
    from reelroute.providers.wan_presets import check_preset, importable_backends, preset_named
    from reelroute.providers.wan_shapes import linear_sizes, model_folder, read_shape

    preset = preset_named(settings.wan.preset)
    dims = None
    if preset.lora and settings.wan.lora and not settings.sandbox:
        dims = linear_sizes(model_folder(settings.wan.model))
    shape = None
    if preset.shapes:  # a family preset: only on the model it was distilled from
        shape = (
            DEFAULT_SHAPE if settings.sandbox else read_shape(model_folder(settings.wan.model)).name
        )
    capability, device, fp8 = None, "cpu", None
    backend = settings.wan.attention or preset.attention
    if preset.weights != "bf16" or backend not in (None, "native", "auto"):
        import torch  # only for a preset that depends on the device

        if torch.cuda.is_available() and not settings.wan.device.startswith("cpu"):
            capability = torch.cuda.get_device_capability()
            device = torch.cuda.get_device_name()
        if preset.weights == "fp8-storage":
            from reelroute.providers.wan_options import casts_fp8

            fp8 = casts_fp8("cuda" if capability is not None else "cpu")
    check_preset(
        preset,
        lora=settings.wan.lora,
        model_dims=dims,
        device=device,
        capability=capability,
        available=importable_backends(),
        attention=settings.wan.attention,
        fp8=fp8,
        shape=shape,
        checkpoint=settings.wan.checkpoint,
        decoder=settings.wan.decoder,
        steps=settings.wan.steps,
    )
    return preset


def local_health(base: Path | None = None) -> list[Health]:
    """The health of every pipeline process of this user on this host."""
    from reelroute.providers.wan_process import local_sockets

    found = [ask_health(path, timeout=2.0) for path in local_sockets(base)]
    return [health for health in found if health is not None]
