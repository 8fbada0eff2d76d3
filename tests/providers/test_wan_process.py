"""The warm Wan pipeline processes (`reelroute wan-server`) and their thin client, as real
processes on Unix sockets, with the tiny pipelines of every shape on the CPU."""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reelroute.models.assembly import load_settings
from reelroute.models.core.enums import InferenceProvider
from reelroute.providers.base import GenerationRequest, PermanentError, TransientError
from reelroute.providers.tiny_wan import ensure_tiny_wan
from reelroute.providers.video import probe_mp4
from reelroute.providers.wan_process import RemoteWan, ask_health, host_alive, receive, send
from reelroute.providers.wan_shapes import SHAPES, WAN22_TI2V_5B
from tests.providers.conftest import photo

pytestmark = pytest.mark.torch

REPO = Path(__file__).resolve().parents[2]
# Sandbox mode's tiny TI2V-5B pipeline at a GPU's pace: 0.2 s a step for 121 frames, 50 steps.
SLOW = {"sandbox": "true", "wan_steps": "50", "sandbox_wan_step_seconds": "0.2"}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-wan")
    return {name: ensure_tiny_wan(root, name) for name in SHAPES}


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    path: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start(tmp_path) -> Iterator:
    servers: list[Server] = []

    def run(model: Path, name: str = "gpu-0", **settings: str) -> Server:
        path = tmp_path / "sockets" / f"{name}.sock"
        env = {
            **os.environ,
            "REELROUTE_WAN_MODEL": str(model),
            "REELROUTE_WAN_DEVICE": "cpu",
            "REELROUTE_WAN_MAX_AREA": str(96 * 64),
            "REELROUTE_WAN_STEPS": "2",
            "REELROUTE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "REELROUTE_STORAGE_URL": str(tmp_path / "storage"),
            **{f"REELROUTE_{key.upper()}": value for key, value in settings.items()},
        }
        log = tmp_path / f"{name}.log"
        with open(log, "ab") as output:
            gpu = f"cpu:{len(servers)}"
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "reelroute",
                    "wan-server",
                    "--socket",
                    str(path),
                    "--gpu",
                    gpu,
                ],
                env=env,
                cwd=REPO,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, path, log)
        servers.append(server)
        deadline = time.time() + 120
        while ask_health(path) is None:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, "the pipeline process did not come up"
            time.sleep(0.2)
        return server

    yield run
    for server in servers:
        server.stop()


def client(*servers: Server, wait: float = 60.0) -> RemoteWan:
    return RemoteWan(
        load_settings(
            _env_file=None,
            wan_servers=[str(server.path) for server in servers],
            wan_wait_seconds=wait,
        )
    )


def request(**changes) -> GenerationRequest:
    base = GenerationRequest(
        item_id=uuid.uuid4(),
        provider=InferenceProvider.wan_local,
        image=photo(64, 48),
        prompt="waves roll in",
        frame_num=9,
    )
    return dataclasses.replace(base, **changes)


def generate(remote: RemoteWan, progress=None, **changes):
    return remote.generate(
        request(**changes), on_progress=progress or (lambda _: None), on_task=lambda _: None
    )


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_makes_a_playable_mp4_through_the_pipeline_process(start, models, shape):
    server = start(models[shape])
    progress: list[float] = []
    result = generate(client(server), progress.append)
    info = probe_mp4(result.video)
    assert (info.frames, info.fps) == (9, SHAPES[shape].fps)
    assert (info.width, info.height) == (result.width, result.height)
    assert progress == [0.0, 0.5, 1.0]
    health = ask_health(server.path)
    assert health is not None
    assert (health.shape, health.loads, health.videos, health.busy) == (shape, 1, 1, False)
    assert health.memory_bytes > 0 and health.device == "cpu"


def test_the_process_loads_once_for_many_videos_and_survives_bad_input(start, models):
    server = start(models[WAN22_TI2V_5B.name])
    remote = client(server)
    with pytest.raises(PermanentError, match="not 4k\\+1"):
        generate(remote, frame_num=10)
    with pytest.raises(PermanentError, match="not a readable image"):
        generate(remote, image=b"not an image")
    for _ in range(3):
        assert probe_mp4(generate(remote).video).frames == 9
    health = ask_health(server.path)
    assert health is not None and (health.loads, health.videos) == (1, 3)


def test_a_client_that_goes_away_stops_its_video_and_the_next_one_works(start, models):
    server = start(models[WAN22_TI2V_5B.name], **SLOW)
    remote = client(server)
    gone = threading.Event()

    def leave(value: float) -> None:
        if value > 0.0:  # the first step is done: the flow run is cancelled now
            gone.set()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(remote, leave, frame_num=121)
    # The process stops that video at its next step: free again long before its 50 steps.
    deadline = time.time() + 30
    while (health := ask_health(server.path)) is None or health.busy:
        assert time.time() < deadline, "the abandoned video kept the process busy"
        time.sleep(0.2)
    assert health.videos == 0
    assert "stopped at the next step" in server.log.read_text()
    progress: list[float] = []
    generate(client(server), progress.append, frame_num=5)
    assert progress[-1] == 1.0
    assert ask_health(server.path).videos == 1


def test_a_pipeline_process_killed_mid_video_fails_the_attempt_transiently(start, models):
    server = start(models[WAN22_TI2V_5B.name], **SLOW)

    def kill(value: float) -> None:
        if value > 0.0:
            os.kill(server.process.pid, signal.SIGKILL)

    with pytest.raises(TransientError, match="stopped mid-video") as lost:
        generate(client(server), kill, frame_num=121)
    assert lost.value.code == "WAN_PROCESS_LOST"


def test_no_free_process_is_a_transient_failure_after_the_wait(tmp_path):
    remote = RemoteWan(
        load_settings(
            _env_file=None, wan_servers=[str(tmp_path / "none.sock")], wan_wait_seconds=1.0
        )
    )
    with pytest.raises(TransientError, match="no free Wan pipeline process") as refused:
        generate(remote)
    assert refused.value.code == "WAN_UNAVAILABLE"


def test_a_flow_run_whose_gpu_host_is_gone_ends_its_attempt_at_once(tmp_path):
    # The soak's orphans: a killed GPU host's flow runs waited wan_wait_seconds on dead sockets.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder = tmp_path / str(gone.pid)  # socket_folder(): named after the host's process id
    remote = RemoteWan(
        load_settings(
            _env_file=None, wan_servers=[str(folder / "gpu-0.sock")], wan_wait_seconds=5.0
        )
    )
    with pytest.raises(TransientError, match="started this flow run is gone") as lost:
        generate(remote)
    assert lost.value.code == "WAN_HOST_GONE"  # said at once, not WAN_UNAVAILABLE after the wait


def test_a_host_is_alive_while_its_process_runs(tmp_path):
    assert host_alive(tmp_path / str(os.getpid()) / "gpu-0.sock")
    assert host_alive(tmp_path / "not-a-pid" / "gpu-0.sock")  # unknown: assumed alive
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not host_alive(tmp_path / str(gone.pid) / "gpu-0.sock")


def test_two_processes_make_two_videos_at_once_never_two_on_one(start, models):
    model = models[WAN22_TI2V_5B.name]
    first = start(model, "gpu-0", **SLOW)
    second = start(model, "gpu-1", **SLOW)
    spans: list[tuple[str, float, float]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        remote = client(first, second)
        began: list[float] = []
        try:
            # From the first step done (the process is making it) to the video.
            def note_start(progress: float) -> None:
                if progress > 0 and not began:
                    began.append(time.monotonic())

            generate(remote, note_start, frame_num=41)
            ended = time.monotonic()
        except BaseException as error:
            errors.append(error)
            return
        with lock:
            spans.append((str(remote.last_server), began[0], ended))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    by_server: dict[str, list[tuple[float, float]]] = {}
    for server, began, ended in spans:
        by_server.setdefault(server, []).append((began, ended))
    assert set(by_server) == {str(first.path), str(second.path)}
    videos = {str(s.path): ask_health(s.path).videos for s in (first, second)}
    assert videos == {server: len(runs) for server, runs in by_server.items()}
    assert sum(videos.values()) == 4
    for runs in by_server.values():  # never two on one
        runs.sort()
        assert all(end <= later for (_, end), (later, _) in itertools.pairwise(runs))
    # Two at once: each process's first video overlaps the other's.
    (a_start, a_end), (b_start, b_end) = (by_server[str(s.path)][0] for s in (first, second))
    assert a_start < b_end and b_start < a_end


def test_a_busy_process_refuses_a_second_video(start, models):
    server = start(models[WAN22_TI2V_5B.name], **SLOW)
    started = threading.Event()

    def first() -> None:
        generate(client(server), lambda _: started.set(), frame_num=121)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(60)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(str(server.path))
        send(connection, {"op": "generate", "request": {}}, b"x")
        assert receive(connection)[0] == {"busy": True}
    thread.join()
