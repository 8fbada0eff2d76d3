"""`reelroute up` as a new user runs it: sandbox mode, a task added from disk becomes a video,
Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from tests.e2e.conftest import free_port, stop_group
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
