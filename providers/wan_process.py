"""Wan kept warm: one long-lived pipeline process per GPU, and the thin client the `gpu` flow runs
use to have it generate.

The pipeline process (`reelroute wan-server --socket PATH`) loads the pipeline once, then
listens on a Unix socket and makes one video at a time for whoever connects. A flow run connects
to a free one among its host's processes (`REELROUTE_WAN_SERVERS`, set by `reelroute worker
--pool gpu`), sends the task, reads progress after every denoising step, then the video.

Why a Unix socket: the processes and their clients are always on one host; the socket file is
created mode 0600 in a folder of the worker's user, so only that user can connect (no secret to
make, pass and keep out of logs, no port to choose or to collide); and it needs nothing but the
standard library on both sides. Loopback HTTP was the alternative: it needs a per-host secret
and a port per GPU, and buys nothing when client and server share a host.

Wire format: each message is a 4-byte big-endian length, a JSON header of that length, then
`header["bytes"]` bytes of payload (the photo, the video) when the header says so.

- client → server: `{"op": "generate", "request": {...}, "bytes": N}` + the photo, or
  `{"op": "health"}`.
- server → client: `{"progress": p}` after every step, then `{"result": {...}, "bytes": N}` +
  the mp4, or `{"error": {"kind": "permanent" | "transient" | "configuration", "message",
  "code"}}`; `{"busy": true}` when it is making another video (one video per GPU, always).

Cancel: when the flow run is cancelled its process ends and the connection closes; the pipeline
process sees it at the next denoising step and stops that video. A pipeline process that dies
mid-video closes the connection without a result: the client's attempt fails transiently, and
the next attempt waits until the process is back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reelroute.models.assembly import Settings
from reelroute.models.core.enums import FailureCode, InferenceProvider
from reelroute.providers.base import (
    ConfigurationError,
    GenerationRequest,
    GenerationResult,
    PermanentError,
    ProgressCallback,
    ProviderError,
    TaskCallback,
    TransientError,
)

log = logging.getLogger(__name__)

HEADER = struct.Struct(">I")
MAX_HEADER = 1 << 20
RETRY_SECONDS = 0.5  # between rounds over the sockets while every process is busy or loading


class ClientGone(Exception):
    """The client closed the connection (its flow run was cancelled or killed)."""


class WireError(Exception):
    """The other side closed or sent something that is not our protocol."""


def send(connection: socket.socket, header: dict[str, Any], payload: bytes = b"") -> None:
    """One message: the header (with the payload's size) and the payload."""
    if payload:
        header = {**header, "bytes": len(payload)}
    data = json.dumps(header).encode()
    connection.sendall(HEADER.pack(len(data)) + data + payload)


def _exactly(connection: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = connection.recv(min(left, 1 << 20))
        if not chunk:
            raise WireError("the connection closed mid-message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(connection: socket.socket) -> tuple[dict[str, Any], bytes]:
    """One message: its header and payload."""
    (size,) = HEADER.unpack(_exactly(connection, HEADER.size))
    if size > MAX_HEADER:
        raise WireError(f"a header of {size} bytes is not ours")
    header = json.loads(_exactly(connection, size))
    if not isinstance(header, dict):
        raise WireError("a header that is not an object")
    payload = _exactly(connection, int(header.get("bytes", 0)))
    return header, payload


def closed_by_peer(connection: socket.socket) -> bool:
    """True when the other side has closed (readable, and reading gives nothing)."""
    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


# --- the pipeline process ----------------------------------------------------------------------


@dataclass
class Health:
    """What a pipeline process reports about itself."""

    pid: int
    gpu: str
    device: str = ""
    model: str = ""
    shape: str = ""
    preset: str = ""
    gpu_class: str = ""
    loads: int = 0
    load_seconds: float = 0.0
    videos: int = 0
    busy: bool = False
    memory_bytes: int = 0
    started_at: float = field(default_factory=time.time)
    asked_at: float = 0.0
    """When its health was last asked (set by the asker)."""

    def line(self) -> str:
        """One line for the logs and `reelroute up`."""
        return (
            f"wan {self.gpu} (pid {self.pid}, {self.device}, {self.gpu_class}): {self.shape} "
            f"{self.model}, preset {self.preset}, "
            f"loaded in {self.load_seconds:.1f} s ({self.loads} load), {self.videos} videos, "
            f"{self.memory_bytes / 2**20:,.0f} MiB in use{', busy' if self.busy else ''}"
        )


class PipelineServer:
    """Loads the pipeline, then serves one video at a time on a Unix socket."""

    def __init__(self, settings: Settings, path: Path, gpu: str) -> None:
        from reelroute.providers.wan import WanProvider

        self.settings, self.path = settings, path
        self.provider = WanProvider(settings)
        self.health = Health(pid=os.getpid(), gpu=gpu)
        self._busy = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None

    def load(self) -> None:
        """Load the pipeline (before listening: a client only ever meets a ready process)."""
        from reelroute.providers import wan

        config = self.provider.config
        loaded = wan.load_pipeline(config)
        self.health.device, self.health.model = loaded.device, config.model
        self.health.shape, self.health.preset = config.shape, config.options.label
        self.health.gpu_class = loaded.gpu_class
        self.health.loads, self.health.load_seconds = len(wan.loads()), loaded.seconds
        self.health.memory_bytes = wan.memory_in_use(loaded.device)
        log.info("%s", self.health.line())

    def serve_forever(self) -> None:
        """Listen until `stop()`; every connection is answered on its own thread, and at most
        one of them generates at any time."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a previous process of this GPU died and left it
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staging = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}")
        listener.bind(str(staging))
        os.chmod(staging, 0o600)
        os.replace(staging, self.path)  # appears only when it accepts
        listener.listen(16)
        listener.settimeout(0.5)
        self._listener = listener
        try:
            while not self._stop.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self._answer, args=(connection,), daemon=True).start()
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def stop(self) -> None:
        """Stop listening (the video being made, if any, finishes)."""
        self._stop.set()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                header, payload = receive(connection)
                if header.get("op") == "health":
                    self._refresh_memory()
                    send(connection, {"health": asdict(self.health)})
                elif header.get("op") == "generate":
                    if not self._busy.acquire(blocking=False):
                        send(connection, {"busy": True})
                        return
                    try:
                        self.health.busy = True
                        self._generate(connection, header["request"], payload)
                    finally:
                        self.health.busy = False
                        self._busy.release()
                else:
                    send(connection, {"error": _error("permanent", "unknown op")})
            except (WireError, OSError, ValueError, KeyError) as error:
                log.info("a client left or spoke nonsense: %s", error)

    def _refresh_memory(self) -> None:
        from reelroute.providers import wan

        if self.health.device and not self.health.busy:
            self.health.memory_bytes = wan.memory_in_use(self.health.device)

    def _generate(self, connection: socket.socket, fields: dict[str, Any], image: bytes) -> None:
        request = GenerationRequest(
            item_id=uuid.UUID(fields["item_id"]),
            provider=InferenceProvider.wan_local,
            image=image,
            prompt=str(fields["prompt"]),
            duration_s=fields.get("duration_s"),
            frame_num=fields.get("frame_num"),
            seed=fields.get("seed"),
        )

        def progress(value: float) -> None:
            if closed_by_peer(connection):
                raise ClientGone(f"the client of item {request.item_id} went away")
            send(connection, {"progress": value})

        try:
            result = self.provider.generate(request, on_progress=progress, on_task=lambda _: None)
        except ClientGone as gone:
            log.info("stopped at the next step: %s", gone)
            return
        except ProviderError as error:
            kind = "transient" if isinstance(error, TransientError) else "permanent"
            if isinstance(error, ConfigurationError):
                kind = "configuration"
            with contextlib.suppress(OSError):
                send(connection, {"error": _error(kind, str(error), error.code)})
            return
        except OSError as error:  # the client went away while we wrote to it
            log.info("the client of item %s went away: %s", request.item_id, error)
            return
        self.health.videos += 1
        meta = asdict(result)
        del meta["video"]
        send(connection, {"result": meta}, result.video)


def _error(kind: str, message: str, code: FailureCode | None = None) -> dict[str, Any]:
    return {"kind": kind, "message": message, "code": code}


def run_server(settings: Settings, path: Path, gpu: str) -> None:
    """`reelroute wan-server`: load, then serve until SIGTERM or SIGINT."""
    import signal

    server = PipelineServer(settings, path, gpu)
    server.load()

    def stop(_signum: int, _frame: object) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()


def ask_health(path: Path, timeout: float = 5.0) -> Health | None:
    """The health of the process listening on `path` (None: none is)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(str(path))
            send(connection, {"op": "health"})
            header, _ = receive(connection)
    except (OSError, WireError, ValueError):
        return None
    return Health(**header["health"])


# --- the flow run's side -----------------------------------------------------------------------


class RemoteWan:
    """The Wan provider of a `gpu` flow run: a thin client of this host's pipeline processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.servers = [Path(path) for path in settings.wan.servers]
        self.last_server: Path | None = None
        """The process that took the last video."""

    def _connect(self) -> Iterator[tuple[Path, socket.socket]]:
        """Connections to each process that is up, in order."""
        for path in self.servers:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(str(path))
            except OSError:  # not up (loading, restarting): the next one
                connection.close()
                continue
            yield path, connection

    def generate(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, on_task: TaskCallback
    ) -> GenerationResult:
        """Have a free pipeline process of this host make the video; progress as it reports."""
        fields = {
            "item_id": str(request.item_id),
            "prompt": request.prompt,
            "duration_s": request.duration_s,
            "frame_num": request.frame_num,
            "seed": request.seed,
        }
        deadline = time.monotonic() + self.settings.wan.wait_seconds
        while True:
            for path, connection in self._connect():
                with connection:
                    send(connection, {"op": "generate", "request": fields}, request.image)
                    header, payload = receive_or_transient(connection)
                    if header.get("busy"):
                        continue
                    self.last_server = path
                    return self._follow(connection, header, payload, on_progress)
            if not any(host_alive(path) for path in self.servers):
                raise TransientError(
                    "the GPU worker that started this flow run is gone, and its pipeline "
                    "processes with it; the next attempt runs on a live one",
                    code=FailureCode.WAN_HOST_GONE,
                )
            if time.monotonic() > deadline:
                raise TransientError(
                    f"no free Wan pipeline process on this host after "
                    f"{self.settings.wan.wait_seconds:.0f} s ({len(self.servers)} configured)",
                    code=FailureCode.WAN_UNAVAILABLE,
                )
            on_progress(0.0)  # keeps the caller's lease while it waits
            time.sleep(RETRY_SECONDS)

    def _follow(
        self,
        connection: socket.socket,
        header: dict[str, Any],
        payload: bytes,
        on_progress: ProgressCallback,
    ) -> GenerationResult:
        while "progress" in header:
            on_progress(float(header["progress"]))
            header, payload = receive_or_transient(connection)
        if "error" in header:
            error = header["error"]
            kinds = {
                "transient": TransientError,
                "configuration": ConfigurationError,
                "permanent": PermanentError,
            }
            kind = kinds.get(error.get("kind"), PermanentError)
            code = error.get("code")
            raise kind(str(error.get("message")), code=FailureCode(code) if code else None)
        if "result" not in header:
            raise TransientError(
                "the Wan pipeline process answered nonsense", code=FailureCode.WAN_WIRE
            )
        return GenerationResult(video=payload, **header["result"])

    def cancel(self, task_id: str) -> None:
        """Nothing to do: closing the connection stops the video at the next step."""


def receive_or_transient(connection: socket.socket) -> tuple[dict[str, Any], bytes]:
    """The next message; the process dying mid-video is a transient failure of the attempt."""
    try:
        return receive(connection)
    except (WireError, OSError) as error:
        raise TransientError(
            f"the Wan pipeline process stopped mid-video ({error}); the next attempt runs when "
            "it is back",
            code=FailureCode.WAN_PROCESS_LOST,
        ) from None


def socket_folder(base: Path | None = None) -> Path:
    """Where a worker's pipeline processes listen: private to this user and worker process."""
    import tempfile

    root = base or Path(tempfile.gettempdir()) / f"reelroute-wan-{os.getuid()}"
    return root / str(os.getpid())


def host_alive(path: Path) -> bool:
    """Whether the GPU host (`reelroute worker --pool gpu`) that owns the socket `path` still
    runs: its folder is named after the host's process id (`socket_folder`). A folder with
    another name is assumed alive."""
    if not path.parent.name.isdigit():
        return True
    try:
        os.kill(int(path.parent.name), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user took the number: not our host
        return False
    return True


def local_sockets(base: Path | None = None) -> list[Path]:
    """Every pipeline socket of this user on this host (every worker's)."""
    import tempfile

    root = base or Path(tempfile.gettempdir()) / f"reelroute-wan-{os.getuid()}"
    return sorted(root.glob("*/gpu-*.sock"))
