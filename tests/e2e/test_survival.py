"""`reelroute up` under the faults of a real machine: PostgreSQL restarted under it, a worker
killed, and a power loss (every process killed at once, then `up` started again)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
import sqlalchemy as sa

from reelroute.models.store.db import make_engine
from reelroute.models.store.files import Storage
from reelroute.providers.emulator import EmulatorScript, EmulatorServer, RunwayEmulator
from tests.conftest import drop_pg_database, new_pg_database
from tests.e2e.conftest import Up, wait_until
from tests.models.helpers import image_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

LEASE, START_TIMEOUT = 15, 20
FAST = {
    "REELROUTE_LEASE_SECONDS": str(LEASE),
    "REELROUTE_RUN_START_TIMEOUT_SECONDS": str(START_TIMEOUT),
    "REELROUTE_RECONCILE_INTERVAL_SECONDS": "2",
    "REELROUTE_DISPATCH_INTERVAL_SECONDS": "0.5",
    "REELROUTE_RETRY_BACKOFF_SECONDS": "1",
    "REELROUTE_RUNWAY_POLL_SECONDS": "0.5",
    "REELROUTE_CLOUD_SLOTS": "4",
    "PREFECT_WORKER_QUERY_SECONDS": "1",
}


OUTAGE_SEEN = re.compile(r"dispatcher: (outage \(DatabaseUnavailable|\S+ lost leadership)")
"""The dispatcher saw the database go: in a pass (waited out) or in its leadership's ping."""
RECOVERED = re.compile(r"dispatcher: (recovered|\S+ leads now \(term 2\))")


def statuses(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT prompt, status FROM video_items")).all()
    finally:
        engine.dispose()
    return {prompt: status for prompt, status in rows}


def add(up: Up, provider: str, prompt: str) -> None:
    up.cli("add", "photo.png", "--prompt", prompt, "--provider", provider, "--group", "faults")


def pg_ctl(action: str) -> None:
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        pytest.skip("stopping PostgreSQL needs pg_ctlcluster as root (as on our machines)")
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def postgresql_down() -> Iterator[None]:
    """PostgreSQL stopped for the block, and started again whatever happens in it."""
    pg_ctl("stop")
    try:
        yield
    finally:
        pg_ctl("start")


@pytest.fixture
def runway():
    """Runway outlives our machine: an emulator of our own, not the one `up` would start."""
    with EmulatorServer(RunwayEmulator(EmulatorScript(latency_s=6.0))) as server:
        yield server


def test_production_shaped_up_rides_out_a_postgresql_restart_and_a_killed_worker(
    tmp_path, pg_server, runway, s3_server
):
    """Items on PostgreSQL, the Prefect server on PostgreSQL, photos and videos in S3 (s3fs
    against an S3-compatible server): PostgreSQL restarts under all of it, and the cloud worker
    is killed, while videos are in flight."""
    url = new_pg_database(pg_server, "reelroute_up")
    prefect_url = url.rsplit("/", 1)[0] + "/" + url.rsplit("/", 1)[1] + "_prefect"
    bucket = f"s3://reelroute-up-{os.getpid()}/media"
    (tmp_path / "photo.png").write_bytes(image_bytes(64, 48))
    up = Up(
        tmp_path,
        REELROUTE_DATABASE_URL=url,
        REELROUTE_STORAGE_URL=bucket,
        REELROUTE_RUNWAY_BASE_URL=runway.url,
        **s3_server,
        **FAST,
    )
    up.env["PREFECT_WORKER_QUERY_SECONDS"] = "1"
    try:
        up.start_with("--prefect-database", prefect_url.replace("+psycopg", ""))
        for n, provider in enumerate(["runway_veo3.1", "runway_gen4_turbo", "wan_local"] * 2):
            add(up, provider, f"item {n}")
        wait_until(lambda: "processing" in statuses(url).values(), 120, "work in flight")
        cloud = up.child("worker", "--pool", "cloud")
        cloud.kill()
        wait_until(lambda: "worker-cloud restarted" in up.output(), 60, "the worker's restart")
        with postgresql_down():  # long enough for the dispatcher to see it: a quick restart
            # can fall between two passes, and the pool's pre-ping reconnects unnoticed. It
            # sees it in a pass (an outage, waited out) or in its leadership's ping (it stands
            # by until it leads again), whichever comes first.
            wait_until(lambda: OUTAGE_SEEN.search(up.output()), 60, "the outage seen")
        done = wait_until(
            lambda: (s := statuses(url)) and set(s.values()) == {"completed"} and s,
            300,
            "every item to complete",
            every=2,
        )
        assert len(done) == 6
        assert up.process.poll() is None, "up must not stop for a database restart"
        log = up.output()
        assert OUTAGE_SEEN.search(log) and RECOVERED.search(log)
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        stats = httpx.get(
            f"http://127.0.0.1:{up.web_port}/api/admin/stats",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert stats.status_code == 200  # the web app rode it out too
        assert sum(e["completed"] for e in stats.json()["data"].values()) == 6
        storage = Storage(bucket)
        videos = [p for p in storage.fs.find(storage.root) if p.endswith(".mp4")]
        assert len(videos) == 6 and not (tmp_path / "data" / "storage").exists()
        with psycopg.connect(prefect_url.replace("+psycopg", "")) as prefect_db:
            runs = prefect_db.execute("SELECT count(*) FROM flow_run").fetchone()[0]
        assert runs >= 6  # the Prefect server kept its runs in PostgreSQL
    finally:
        assert up.stop() == 0
        drop_pg_database(pg_server, url)
        drop_pg_database(pg_server, prefect_url)


def test_after_a_power_loss_every_item_completes_and_runway_is_paid_once(tmp_path, runway):
    (tmp_path / "photo.png").write_bytes(image_bytes(64, 48))
    runway.emulator.script.latency_s = 30.0  # the Veo videos outlast the Wan item's start
    up = Up(tmp_path, REELROUTE_RUNWAY_BASE_URL=runway.url, **FAST)
    url = f"sqlite:///{tmp_path / 'data' / 'reelroute.db'}"
    try:
        up.start()
        for n in range(3):
            add(up, "runway_veo3.1", f"veo {n}")
        wait_until(lambda: len(runway.emulator.tasks) == 3, 120, "the Veo tasks at Runway")
        add(up, "wan_local", "wan")  # while the Veo videos are still being made
        wait_until(lambda: statuses(url).get("wan") == "processing", 60, "the Wan item", every=0.1)
        assert set(statuses(url).values()) == {"processing"}
        for process in up.tree():  # the power goes: everything dies at once
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        up.process.wait()
        started = time.monotonic()
        up.start()
        wait_until(lambda: set(statuses(url).values()) == {"completed"}, 300, "every item", every=2)
        took = time.monotonic() - started
    finally:
        assert up.stop() == 0
    # How long recovery took is a figure, not a test (a busy machine stretches it): the lease
    # and the start timeout bound it, and the log shows that they, not luck, ended the zombies.
    print(f"every item completed {took:.0f} s after the restart")
    prompts = [body.get("promptText") for body in runway.emulator.submissions()]
    assert sorted(prompts) == ["veo 0", "veo 1", "veo 2"]  # resumed, never submitted again
    assert "set Crashed" in Path(up.log).read_text()  # the reconciler freed the zombies
