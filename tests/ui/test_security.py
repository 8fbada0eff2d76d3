"""Hostile input and secrets: each defect the attacker's probes found, refused now (the table of
probes is in docs/security.md)."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import uuid
from collections.abc import MutableMapping
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from reelroute.deployments.launcher import free_port, wait_until
from reelroute.models.assembly import load_settings
from reelroute.models.core.settings import SettingsError
from reelroute.models.store.db import make_engine
from reelroute.providers import video as video_module
from reelroute.ui.api.guard import Guard
from reelroute.ui.app import create_app
from tests.models.helpers import image_bytes
from tests.ui.api_client import add, as_admin, claim, complete, mp4_of, new_group, upload
from tests.ui.helpers import ADMIN, WORKER


@pytest.fixture
def secure_settings(settings):
    return settings.replaced(
        admin_token=SecretStr(ADMIN),
        worker_token=SecretStr(WORKER),
        routing_policy="threshold",
        max_json_bytes=4096,
        max_video_bytes=64 * 1024,
    )


@pytest.fixture
def client(secure_settings):
    app = create_app(secure_settings)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    app.state.engine.dispose()


def claimed_item(client) -> dict[str, Any]:
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    assert add(client, group, [{"photo_id": photo["id"], "prompt": "p"}]).status_code == 200
    claimed = claim(client)
    assert claimed is not None
    return claimed


# --- 1. a video must be a video ----------------------------------------------------------------


def still(fmt: str, frames: int = 1) -> bytes:
    buffer = io.BytesIO()
    pictures = [Image.new("RGB", (32, 32), (40 * n, 90, 160)) for n in range(frames)]
    pictures[0].save(buffer, format=fmt, save_all=frames > 1, append_images=pictures[1:])
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (still("JPEG"), "it is a JPEG picture"),
        (still("PNG"), "it is a PNG picture"),
        (still("GIF", frames=4), "it is a GIF picture"),
        (mp4_of(10)[:200], "not a playable mp4"),
    ],
)
def test_a_picture_is_not_accepted_as_a_video(client, data, why):
    task = claimed_item(client)
    answer = complete(client, task["item_id"], task["attempt"], "w1", data)
    assert answer.status_code == 400, answer.text
    assert why in answer.json()["error"]
    assert "reelroute-upload-" not in answer.text and "/tmp" not in answer.text  # no path


def test_a_one_frame_mp4_is_not_a_video(client):
    import numpy as np

    from reelroute.providers.video import encode_mp4

    one = encode_mp4(iter([np.zeros((16, 16, 3), np.uint8)]), fps=8, width=16, height=16)
    task = claimed_item(client)
    answer = complete(client, task["item_id"], task["attempt"], "w1", one)
    assert answer.status_code == 400 and "one frame" in answer.json()["error"]


def test_a_probe_that_times_out_answers_400(client, monkeypatch):
    monkeypatch.setattr(video_module, "PROBE_TIMEOUT_SECONDS", 0.0001)
    task = claimed_item(client)
    answer = complete(client, task["item_id"], task["attempt"], "w1", mp4_of(30))
    assert answer.status_code == 400
    assert "could not be checked within" in answer.json()["error"]


# --- 2. bodies: the token and the size first, never the whole upload in memory -------------


class Recorder:
    """An ASGI exchange: the body offered in chunks, what was read, what was answered."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.read = 0
        self.sent: list[MutableMapping[str, Any]] = []

    async def receive(self) -> MutableMapping[str, Any]:
        self.read += 1
        body = self.chunks.pop(0) if self.chunks else b""
        return {"type": "http.request", "body": body, "more_body": bool(self.chunks)}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]


def scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.9", 5000),
        "query_string": b"",
    }


async def never_called(_scope, _receive, _send):
    raise AssertionError("the route ran")


def test_a_body_without_the_token_is_never_read(secure_settings):
    guard = Guard(never_called, secure_settings)
    huge = Recorder([b"x" * 1024 * 1024] * 100)  # 100 MB offered
    headers = {"content-length": str(100 * 2**20)}
    asyncio.run(guard(scope("/api/admin/tasks/add", headers), huge.receive, huge.send))
    assert (huge.status, huge.read) == (401, 0)


def test_a_content_length_over_the_routes_limit_is_refused_unread(secure_settings):
    guard = Guard(never_called, secure_settings)
    big = Recorder([b"{}"])
    token = {"authorization": f"Bearer {ADMIN}", "content-length": "5000"}
    asyncio.run(guard(scope("/api/admin/tasks/add", token), big.receive, big.send))
    assert (big.status, big.read) == (413, 0)
    assert b"takes at most 4,096" in big.sent[1]["body"]


def test_a_streamed_body_is_cut_off_at_the_limit(client):
    def chunks():
        for _ in range(10):
            yield b"x" * 1024

    answer = client.post(
        "/api/admin/tasks/add",
        headers={**as_admin(), "content-type": "application/json"},
        content=chunks(),  # no Content-Length: counted as it arrives
    )
    assert answer.status_code == 413
    assert answer.json()["success"] is False


def test_a_video_over_its_limit_is_refused(client):
    task = claimed_item(client)
    answer = complete(client, task["item_id"], task["attempt"], "w1", b"\0" * (200 * 1024))
    assert answer.status_code == 413 and "at most" in answer.json()["error"]


# --- 3. guessing is throttled; tokens are long and distinct ----------------------------------


def test_failed_tokens_from_one_address_must_then_wait(client, caplog, secure_settings):
    wrong = {"Authorization": "Bearer not-the-token-at-all-not-at-all-x"}
    with caplog.at_level(logging.WARNING, logger="reelroute.security"):
        answers = [client.get("/api/admin/stats", headers=wrong) for _ in range(7)]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    assert answers[5].status_code == 429  # the fifth failure imposed a wait
    assert answers[6].status_code == 429 and int(answers[6].headers["retry-after"]) >= 1
    assert "too many failed" in answers[6].json()["error"]
    # Even the right token waits now; then it is served and clears the record.
    assert client.get("/api/admin/stats", headers=as_admin()).status_code == 429
    assert "refused GET /api/admin/stats from testclient: 401 unknown token" in caplog.text
    assert "not-the-token" not in caplog.text and ADMIN not in caplog.text


def test_failed_admin_logins_are_throttled(client):
    answers = [
        client.post("/admin/login", data={"username": "admin", "password": "guess"})
        for _ in range(7)
    ]
    assert [a.status_code for a in answers[:5]] == [400] * 5
    assert answers[-1].status_code == 429


def test_the_wait_doubles_and_a_success_clears_it():
    from reelroute.ui.api.guard import Throttle

    throttle = Throttle(free_failures=2, max_wait=300)
    waits = [throttle.failed("a", now=0.0) for _ in range(6)]
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0]  # from the second failure on: a wait
    assert throttle.wait_for("a", now=3.0) == 13.0 and throttle.wait_for("b", now=3.0) == 0.0
    throttle.succeeded("a")
    assert throttle.wait_for("a", now=3.0) == 0.0


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        ({"admin_token": "short"}, "REELROUTE_ADMIN_TOKEN: Value error, a token needs 32"),
        ({"worker_token": "w" * 31}, "REELROUTE_WORKER_TOKEN: Value error, a token needs 32"),
        ({"admin_token": "t" * 40, "worker_token": "t" * 40}, "are equal"),
    ],
)
def test_weak_or_shared_tokens_stop_the_start(tokens, problem):
    with pytest.raises(SettingsError, match=problem) as refused:
        load_settings(_env_file=None, **tokens)
    assert "t" * 40 not in str(refused.value) and "short" not in str(refused.value)


# --- 4. a 200 arrives after the commit ---------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_new_group_is_visible_the_moment_its_200_arrives(secure_settings):
    import httpx

    app = create_app(secure_settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    engine = make_engine(secure_settings.store.database_url)
    try:
        wait_until(f"http://127.0.0.1:{port}/docs", 30, "the app")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for n in range(20):
                answer = http.post(
                    "/api/admin/groups", headers=as_admin(), json={"name": f"race {n}"}
                )
                assert answer.status_code == 200
                group_id = uuid.UUID(answer.json()["data"]["id"])
                with engine.connect() as connection:
                    found = connection.execute(
                        sa.text("SELECT count(*) FROM groups WHERE id = :id"), {"id": group_id}
                    ).scalar_one()
                assert found == 1, f"try {n}: the 200 came before the commit"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
        app.state.engine.dispose()


# --- 5. control characters are refused, naming the field ---------------------------------------


def test_control_characters_are_refused_where_they_enter(client):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    prompt = add(client, group, [{"photo_id": photo["id"], "prompt": "waves\x00roll"}])
    assert prompt.status_code == 400
    assert "prompt: holds the control character U+0000 at position 5" in prompt.text
    multi_line = add(client, group, [{"photo_id": photo["id"], "prompt": "waves\nroll"}])
    assert multi_line.status_code == 200  # line breaks are text
    name = client.post("/api/admin/groups", headers=as_admin(), json={"name": "bell\x07"})
    assert name.status_code == 400 and "name: holds the control character U+0007" in name.text
    # httpx escapes control characters in file names: the raw multipart an attacker sends.
    boundary = "reelroute-boundary"
    raw = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="files"; filename="evil\x01.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    files = client.post(
        f"/api/admin/groups/{group}/photos",
        headers={**as_admin(), "content-type": f"multipart/form-data; boundary={boundary}"},
        content=raw,
    )
    assert files.status_code == 400 and "filename holds the control character U+0001" in files.text
    task = claim(client)
    failed = client.post(
        f"/api/worker/tasks/{task['item_id']}/fail",
        headers=as_admin(WORKER),
        json={"attempt": task["attempt"], "worker_id": "w1", "error": "CUDA\x00OOM"},
    )
    assert failed.status_code == 422 and "error: Value error, holds the control" in failed.text


# --- 6. one envelope; nothing leaks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/api/admin/stats", {}, 401),
        ("get", "/api/admin/stats", {"headers": {"Authorization": f"Bearer {WORKER}"}}, 403),
        ("delete", "/api/admin/stats", {"headers": {"Authorization": f"Bearer {ADMIN}"}}, 405),
        (
            "post",
            "/api/admin/groups",
            {
                "headers": {"Authorization": f"Bearer {ADMIN}", "content-type": "application/json"},
                "content": b"{not json",
            },
            422,
        ),
        ("get", "/api/nothing-here", {}, 404),
    ],
)
def test_every_error_uses_the_envelope(client, method, path, kwargs, status):
    answer = getattr(client, method)(path, **kwargs)
    assert answer.status_code == status
    body = answer.json()
    assert body["success"] is False and body["error"] and body["problems"]
    assert "detail" not in body


def test_a_crash_answers_500_in_the_envelope_without_details(client, monkeypatch):
    from reelroute.ui.api import admin

    def broken(_session):
        raise RuntimeError("/var/secret/place exploded")

    monkeypatch.setattr(admin, "provider_stats", broken)
    answer = client.get("/api/admin/stats", headers=as_admin())
    assert answer.status_code == 500
    assert answer.json() == {
        "success": False,
        "error": "internal error; the server's log has the details",
        "problems": ["internal error; the server's log has the details"],
    }


def test_a_missing_video_does_not_show_where_storage_is(client, secure_settings):
    task = claimed_item(client)
    assert complete(client, task["item_id"], task["attempt"], "w1", mp4_of(20)).status_code == 200
    from pathlib import Path

    root = Path(secure_settings.store.storage_url)
    for file in (root / "videos").rglob("*.mp4"):
        file.unlink()
    answer = client.get(f"/api/admin/items/{task['item_id']}/video", headers=as_admin())
    assert answer.status_code == 404
    assert str(root) not in answer.text and "in storage" in answer.json()["error"]


def test_an_unknown_item_is_404_for_a_worker(client):
    unknown = uuid.uuid4()
    for path, body in (
        ("heartbeat", {"attempt": 1, "worker_id": "w1"}),
        ("fail", {"attempt": 1, "worker_id": "w1", "error": "x"}),
    ):
        answer = client.post(
            f"/api/worker/tasks/{unknown}/{path}", headers=as_admin(WORKER), json=body
        )
        assert answer.status_code == 404, (path, answer.text)
        assert f"no item {unknown}" in answer.json()["error"]


def test_the_upload_size_message_states_the_limit(client, secure_settings):
    group = new_group(client)
    big = b"\xff" * (secure_settings.api.max_upload_bytes + 10_000)
    answer = client.post(
        f"/api/admin/groups/{group}/photos",
        headers=as_admin(),
        files=[("files", ("big.png", big, "image/png"))],
    )
    assert answer.status_code == 400
    limit = f"{secure_settings.api.max_upload_bytes:,}"
    assert f"photo 1 (big.png): over the limit of {limit} bytes" in answer.text
    assert str(secure_settings.api.max_upload_bytes + 1) not in answer.text


def test_a_database_url_in_an_error_hides_its_password():
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None, database_url="postgresql://app:hunter2@db/reelroute")
    assert "hunter2" not in str(refused.value) and "app:***@db" in str(refused.value)


# --- many-part uploads: counted as they arrive, refused before memory fills ------------------


def many_parts(name: str, count: int, size: int = 64) -> tuple[bytes, str]:
    boundary = "reelroute-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="p{n}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + b"x" * size
        + b"\r\n"
        for n in range(count)
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def test_an_upload_to_an_item_that_is_not_being_made_is_refused_unread(client):
    body, boundary = many_parts("video", 500)
    headers = {"content-type": f"multipart/form-data; boundary={boundary}", **as_admin(WORKER)}
    unknown = client.post(
        f"/api/worker/tasks/{uuid.uuid4()}/complete", content=body, headers=headers
    )
    assert unknown.status_code == 404
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    (item,) = add(client, group, [{"photo_id": photo["id"], "prompt": "p"}]).json()["data"]
    waiting = client.post(f"/api/worker/tasks/{item['id']}/complete", content=body, headers=headers)
    assert waiting.status_code == 409 and "not being made" in waiting.json()["error"]


def test_a_second_file_in_a_one_file_form_is_refused(client):
    task = claimed_item(client)
    body, boundary = many_parts("video", 500)
    headers = {"content-type": f"multipart/form-data; boundary={boundary}", **as_admin(WORKER)}
    answer = client.post(
        f"/api/worker/tasks/{task['item_id']}/complete", content=body, headers=headers
    )
    assert answer.status_code == 400
    assert "at most 1 file(s)" in answer.json()["error"]
    found = client.get(f"/api/admin/items/{task['item_id']}", headers=as_admin()).json()["data"]
    assert found["status"] == "processing" and found["output_path"] is None


def test_a_photo_upload_of_more_than_fifty_files_is_refused_as_they_arrive(client):
    group = new_group(client)
    body, boundary = many_parts("files", 51)
    answer = client.post(
        f"/api/admin/groups/{group}/photos",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}", **as_admin()},
    )
    assert answer.status_code == 400 and "at most 50 file(s)" in answer.json()["error"]


def test_uploaded_parts_are_spooled_to_disk_past_64_kib():
    from reelroute.ui.api.forms import SPOOL_BYTES, SpoolingParser

    assert SpoolingParser.spool_max_size == SPOOL_BYTES == 64 * 1024


def test_a_worker_cannot_report_more_than_one_video_can_cost(client):
    task = claimed_item(client)  # Gen-4 Turbo: at most 10 s at 5 credits a second
    too_much = client.post(
        f"/api/worker/tasks/{task['item_id']}/fail",
        headers=as_admin(WORKER),
        json={
            "attempt": task["attempt"],
            "worker_id": "w1",
            "error": "x",
            "cost_credits": 10**9,
        },
    )
    assert too_much.status_code == 400 and "more than one runway_gen4_turbo video" in too_much.text
    found = client.get(f"/api/admin/items/{task['item_id']}", headers=as_admin()).json()["data"]
    assert found["status"] == "processing" and found["cost_credits"] in (None, 0)
