"""`reelroute up` as a new user runs it: sandbox mode, a task added from disk becomes a video,
Ctrl-C leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from reelroute.deployments.launcher import free_port
from reelroute.deployments.up import SHUTDOWN_LIMIT_SECONDS
from reelroute.providers.emulator import EmulatorScript, EmulatorServer, RunwayEmulator
from tests.e2e.conftest import Up, stop_group, wait_until
from tests.e2e.test_survival import FAST
from tests.models.helpers import image_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_up_runs_a_task_to_a_video_and_stops_cleanly(tmp_path):
    prefect_port, emulator_port, web_port = free_port(), free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "REELROUTE_", "RUNWAYML_"))
    }
    env |= {
        "REELROUTE_PREFECT_PORT": str(prefect_port),
        "REELROUTE_EMULATOR_PORT": str(emulator_port),
    }
    (tmp_path / "photo.png").write_bytes(image_bytes(64, 48))
    with open(tmp_path / "up.log", "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "reelroute", "up", "--port", str(web_port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.time() + 180
        while "reelroute is up" not in (tmp_path / "up.log").read_text():
            assert up.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            assert time.time() < deadline, "reelroute up did not come up"
            time.sleep(1)
        output = (tmp_path / "up.log").read_text()
        # The Prefect UI asks the server where its API is: on this port, not Prefect's 4200.
        ui = httpx.get(f"http://127.0.0.1:{prefect_port}/ui-settings").json()
        assert ui["api_url"] == f"http://127.0.0.1:{prefect_port}/api"
        assert "SANDBOX MODE" in output and f"http://127.0.0.1:{prefect_port}" in output

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "reelroute", *args],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )

        cli("add", "photo.png", "--prompt", "waves roll in", "--provider", "runway_gen4_turbo")
        deadline = time.time() + 240
        while True:
            stats = json.loads(cli("stats", "--json").stdout)["data"]["runway_gen4_turbo"]
            if stats["completed"] == 1:
                break
            assert stats["failed"] == 0 and time.time() < deadline, stats
            time.sleep(2)
        videos = list((tmp_path / "data" / "storage" / "videos").rglob("*.mp4"))
        assert len(videos) == 1
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        assert token not in (tmp_path / "up.log").read_text()
        api = httpx.get(
            f"http://127.0.0.1:{web_port}/api/admin/stats",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert api["data"]["runway_gen4_turbo"]["completed"] == 1
        # The admin pages are served behind their login (the browser tests drive them).
        assert f"admin pages:  http://127.0.0.1:{web_port}/admin" in output
        admin = f"http://127.0.0.1:{web_port}/admin"
        assert httpx.get(f"{admin}/", follow_redirects=True).status_code == 200
        wrong = httpx.post(f"{admin}/login", data={"username": "admin", "password": "nope"})
        assert wrong.status_code == 400
        login = httpx.post(f"{admin}/login", data={"username": "admin", "password": token})
        assert login.status_code == 200 and login.json()["success"] is True
        runs = httpx.post(
            f"http://127.0.0.1:{prefect_port}/api/flow_runs/filter", json={"limit": 10}
        ).json()
        assert [run["state"]["type"] for run in runs] == ["COMPLETED"]
        assert runs[0]["name"].startswith("runway_gen4_turbo-")
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 5  # Prefect server, emulator, web app, two workers
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        finally:
            stop_group(up)
    assert up.returncode == 0
    for port in (prefect_port, emulator_port, web_port):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert [
        child.pid
        for child in children
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ] == []


def ours(port: int) -> list[psutil.Process]:
    """Every process on the machine that `up` on this Prefect port started (they all carry
    its REELROUTE_PREFECT_PORT), however it was re-parented."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            mine = process.environ().get("REELROUTE_PREFECT_PORT") == str(port)
            if mine and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def test_up_stops_in_bounded_time_after_restarts_with_work_in_flight_and_stdout_closed(tmp_path):
    """The states that once kept `up` from exiting: a worker killed and started again, a flow
    run in flight, and stdout a pipe whose reader has gone (`make run | tee`, then Ctrl-C)."""
    (tmp_path / "photo.png").write_bytes(image_bytes(64, 48))
    with EmulatorServer(RunwayEmulator(EmulatorScript(latency_s=120.0))) as runway:
        up = Up(tmp_path, REELROUTE_RUNWAY_BASE_URL=runway.url, **FAST)
        argv = [sys.executable, "-m", "reelroute", "up", "--port", str(up.web_port)]
        process = subprocess.Popen(
            argv,
            cwd=tmp_path,
            env=up.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        up.process = process
        try:
            assert process.stdout is not None
            seen = b""
            deadline = time.time() + 180
            while b"reelroute is up" not in seen:
                assert process.poll() is None and time.time() < deadline, seen[-3000:]
                seen += process.stdout.readline()
            killed = up.child("worker", "--pool", "cloud")
            killed.kill()

            def restarted() -> bool:
                with contextlib.suppress(LookupError, psutil.Error):
                    return up.child("worker", "--pool", "cloud").pid != killed.pid
                return False

            wait_until(restarted, 60, "the worker's restart")
            up.cli("add", "photo.png", "--prompt", "in flight", "--provider", "runway_veo3.1")
            wait_until(lambda: runway.emulator.tasks, 120, "a task at Runway")
            started = ours(up.prefect_port)
            flow_runs = [p for p in started if "prefect.engine" in " ".join(p.cmdline())]
            assert flow_runs, [" ".join(p.cmdline()) for p in started]  # a video in flight
            process.stdout.close()  # the reader goes away
            began = time.monotonic()
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=SHUTDOWN_LIMIT_SECONDS + 20)
            took = time.monotonic() - began
        finally:
            stop_group(process)
    assert code in (0, 1), code
    assert took < SHUTDOWN_LIMIT_SECONDS + 20
    left = ours(up.prefect_port)
    assert left == [], [" ".join(p.cmdline()) for p in left]
    assert [p.pid for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
