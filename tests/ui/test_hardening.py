"""Hardening, round two: each defect of the review gets the probe that found it (the table is
in docs/security.md): large bodies on /admin, a video checked outside any transaction, login
throttling per role, idempotency's edge cases, SSE's limits, streamed downloads and uploads,
and database messages that stay in the log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from reelroute.models.core.errors import Conflict
from reelroute.models.core.tables import utcnow
from reelroute.models.intake.tables import IdempotencyKey
from reelroute.models.store.db import session_scope
from reelroute.providers.base import PermanentError
from reelroute.providers.video import probe_video_file
from reelroute.ui.api.guard import Guard
from reelroute.ui.app import create_app
from tests.models.helpers import image_bytes
from tests.ui.api_client import add, as_admin, claim, complete, mp4_of, new_group, upload
from tests.ui.helpers import ADMIN, WORKER, live_server
from tests.ui.test_security import Recorder, never_called, scope


@pytest.fixture
def hardened(settings):
    return settings.replaced(
        admin_token=SecretStr(ADMIN),
        worker_token=SecretStr(WORKER),
        routing_policy="threshold",
        max_json_bytes=4096,
        sse_max_streams=3,
    )


@pytest.fixture
def client(hardened):
    app = create_app(hardened)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    app.state.engine.dispose()


# --- 3. large bodies without a login on /admin --------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/admin/gradio_api/queue/join", "/admin/gradio_api/run/predict", "/admin/login"]
)
def test_a_large_body_on_the_admin_pages_is_refused_unread(hardened, path):
    guard = Guard(never_called, hardened)
    huge = Recorder([b"{" + b" " * (1 << 20)] * 900)  # 900 MB offered
    headers = {"content-length": str(900 << 20), "content-type": "application/json"}
    asyncio.run(guard(scope(path, headers), huge.receive, huge.send))
    assert (huge.status, huge.read) == (413, 0)


def test_a_chunked_body_on_the_admin_pages_is_cut_at_the_json_limit(client):
    def chunks():
        for _ in range(1000):
            yield b" " * 65536

    answer = client.post("/admin/gradio_api/queue/join", content=chunks())
    assert answer.status_code == 413


def test_an_upload_to_the_admin_pages_needs_a_logged_in_session(client):
    photo = ("files", ("a.png", image_bytes(), "image/png"))
    refused = client.post("/admin/gradio_api/upload", files=[photo])
    assert refused.status_code == 401 and "log in" in refused.json()["error"]
    login = client.post("/admin/login", data={"username": "admin", "password": ADMIN})
    assert login.status_code == 200, login.text
    accepted = client.post("/admin/gradio_api/upload", files=[photo])
    assert accepted.status_code == 200, accepted.text


# --- 5. a worker's video: the fence first, the check outside any transaction -----------------


def test_a_stale_attempts_video_is_refused_before_it_is_looked_at(client):
    item = claimed_item(client)
    not_a_video = b"GIF89a" + b"\0" * 100
    stale = complete(client, item["item_id"], item["attempt"] + 1, "w1", not_a_video)
    assert stale.status_code == 409  # not 400: the fence was checked before the file
    stranger = complete(client, item["item_id"], item["attempt"], "someone-else", not_a_video)
    assert stranger.status_code == 409


def claimed_item(client) -> dict[str, Any]:
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    assert add(client, group, [{"photo_id": photo["id"], "prompt": "p"}] * 2).status_code == 200
    claimed = claim(client)
    assert claimed is not None
    return claimed


@pytest.mark.timeout(120)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_heartbeat_is_answered_while_another_workers_video_is_checked(hardened, monkeypatch):
    """The check of one worker's video is held open (the real ffmpeg check, after a wait):
    another worker's heartbeat is answered meanwhile. Before, the copy and the check ran in
    the completing transaction, which on SQLite holds the write lock."""
    from reelroute.ui.api import worker

    checking, release = threading.Event(), threading.Event()

    def held_probe(path: str, timeout: float | None = None) -> Any:
        checking.set()
        assert release.wait(60)
        return probe_video_file(path, timeout)

    monkeypatch.setattr(worker, "probe_video_file", held_probe)
    app = create_app(hardened)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        first = claimed_item(http)
        second = claim(http, worker_id="w2")
        assert second is not None
        answers: list[httpx.Response] = []

        def completing() -> None:
            answers.append(complete(http, first["item_id"], first["attempt"], "w1", mp4_of(10)))

        thread = threading.Thread(target=completing)
        thread.start()
        try:
            assert checking.wait(60), "the check never started"
            beat = http.post(
                f"/api/worker/tasks/{second['item_id']}/heartbeat",
                headers=as_admin(WORKER),
                json={"attempt": second["attempt"], "worker_id": "w2", "progress": 0.5},
                timeout=20,
            )
            held = not release.is_set() and thread.is_alive()
        finally:
            release.set()
            thread.join()
    app.state.engine.dispose()
    assert beat.status_code == 200 and held, beat.text
    assert [a.status_code for a in answers] == [200], answers[0].text


# --- 6. the rest ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_expired_key_taken_again_by_concurrent_requests_makes_one_batch(hardened, engine):
    app = create_app(hardened)
    key = f"k-{uuid.uuid4()}"
    with TestClient(app) as client:
        group = new_group(client)
        (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
        body = {"group_id": group, "tasks": [{"photo_id": photo["id"], "prompt": "a"}]}
        headers = {"Idempotency-Key": key, **as_admin()}
        assert client.post("/api/admin/tasks/add", json=body, headers=headers).status_code == 200
        with session_scope(engine) as session:  # it expired an hour ago (not yet purged)
            row = session.get(IdempotencyKey, key)
            assert row is not None
            row.expires_at = utcnow() - timedelta(hours=1)
            session.add(row)
        answers: list[Any] = []
        barrier = threading.Barrier(8)

        def send() -> None:
            barrier.wait()
            answers.append(client.post("/api/admin/tasks/add", json=body, headers=headers))

        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    app.state.engine.dispose()
    ok = [a for a in answers if a.status_code == 200]
    assert ok and all(a.status_code in (200, 409) for a in answers), [a.text for a in answers]
    made = {tuple(i["id"] for i in a.json()["data"]) for a in ok}
    assert len(made) == 1  # every success is the same batch
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM video_items")).scalar_one()
    assert count == 2  # the first batch and the one made again after the key expired


def test_failed_admin_logins_count_at_either_login_path(client):
    for path in ("/admin/login", "/admin/login/") * 3:
        client.post(path, data={"username": "admin", "password": "wrong"})
    waited = client.post("/admin/login/", data={"username": "admin", "password": ADMIN})
    assert waited.status_code == 429 and "retry-after" in waited.headers


def test_a_worker_token_does_not_clear_failed_guesses_at_the_admin_token(client):
    for _ in range(5):
        client.get("/api/admin/stats", headers=as_admin("x" * 40))
    assert (
        client.post(
            "/api/worker/next-task",
            headers=as_admin(WORKER),
            json={"worker_id": "w", "worker_type": "runway"},
        ).status_code
        == 200
    )
    guess = client.get("/api/admin/stats", headers=as_admin("y" * 40))
    assert guess.status_code == 429


def test_more_than_fifty_photos_in_one_upload_are_refused(client):
    group = new_group(client)
    files = [(f"p{n}.png", image_bytes(), "image/png") for n in range(51)]
    answer = client.post(
        f"/api/admin/groups/{group}/photos",
        headers=as_admin(),
        files=[("files", f) for f in files],
    )
    assert answer.status_code == 400 and "at most 50" in answer.json()["error"]


def test_a_video_is_sent_as_a_stream_of_its_file(client):
    item = claimed_item(client)
    video = mp4_of(90)
    done = complete(client, item["item_id"], item["attempt"], "w1", video)
    assert done.status_code == 200, done.text
    answer = client.get(f"/api/admin/items/{item['item_id']}/video", headers=as_admin())
    assert answer.status_code == 200 and answer.content == video
    assert answer.headers["content-length"] == str(len(video))


@pytest.mark.timeout(60)
def test_event_streams_are_limited_and_share_one_poller(hardened):
    app = create_app(hardened)
    queries: list[str] = []
    sa.event.listen(
        app.state.engine,
        "before_cursor_execute",
        lambda *args: queries.append(args[2]) if "item_events" in args[2] else None,
    )
    with live_server(app) as url:
        streams = [
            httpx.stream("GET", f"{url}/api/admin/events", headers=as_admin(), timeout=30)
            for _ in range(3)
        ]
        opened = [stream.__enter__() for stream in streams]
        try:
            assert all(s.status_code == 200 for s in opened)
            one_more = httpx.get(f"{url}/api/admin/events", headers=as_admin(), timeout=10)
            assert one_more.status_code == 503 and one_more.headers["retry-after"] == "5"
            before = len(queries)
            time.sleep(2.0)
            polls = app.state.broadcaster.polls
            during = len(queries) - before
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)
    app.state.engine.dispose()
    # three streams, one poller: its reads only, about one per POLL_SECONDS (0.5 s)
    assert polls >= 2 and during <= polls + 2, (during, polls)


def test_database_errors_say_what_happened_and_log_the_drivers_words(engine, caplog):
    from reelroute.models.core.tables import Group
    from reelroute.models.store.db import database_errors

    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(Conflict) as error,
        database_errors(),
        Session(engine) as session,
    ):
        session.add(Group(name="x", name_key="same"))
        session.add(Group(name="y", name_key="same"))
        session.flush()
    assert "name_key" not in str(error.value) and "nothing was written" in str(error.value)
    assert any("name_key" in record.getMessage() for record in caplog.records)


def test_a_webhook_delivery_never_shows_its_secret():
    from reelroute.models.outbox.webhooks import Outgoing

    outgoing = Outgoing(1, uuid.uuid4(), "https://a.example/h", "evt_1", {}, ("whsec_SECRET",))
    assert "SECRET" not in repr(outgoing)


def test_ffmpeg_opens_nothing_an_upload_points_to(tmp_path):
    """An upload that is a concat script naming another file (ffmpeg probes it as such,
    whatever the file's name): ffmpeg must not open that file. It is a FIFO, so that its
    opening is seen (a writer's non-blocking open succeeds only while a reader has it open).
    An HLS playlist would be the same, but ffmpeg itself no longer probes one named .mp4."""
    fifo = tmp_path / "leak.ts"
    os.mkfifo(fifo)
    upload = tmp_path / "video.mp4"
    upload.write_text("ffconcat version 1.0\nfile leak.ts\n")
    opened = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody reads it
                time.sleep(0.01)
                continue
            opened.set()
            os.close(writer)  # the reader sees its end and goes on
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with pytest.raises(PermanentError, match="not a playable mp4"):
            probe_video_file(str(upload), timeout=20)
    finally:
        done.set()
        watcher.join()
    assert not opened.is_set(), "ffmpeg opened the file the upload names"


def test_the_upload_of_a_photo_is_read_in_chunks(client):
    group = new_group(client)
    big = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (2000, 1500), (10, 20, 30)).save(big, format="PNG")
    (photo,) = upload(client, group, ("big.png", big.getvalue(), "image/png"))
    assert photo["width"] == 2000 and json.dumps(photo)
