"""Idempotency keys on `tasks/add` and photo uploads, and in `reelroute add`."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from reelroute.deployments.cli import app as cli_app
from reelroute.models.assembly import get_settings
from reelroute.models.core.tables import Photo, VideoItem, utcnow
from reelroute.models.intake import idempotency
from reelroute.models.intake.tables import IdempotencyKey
from reelroute.ui.app import create_app
from tests.models.helpers import image_bytes
from tests.ui.api_client import as_admin, new_group, upload
from tests.ui.helpers import live_server


def add_with_key(client, key, body):
    return client.post(
        "/api/admin/tasks/add", headers={**as_admin(), "Idempotency-Key": key}, json=body
    )


def items(engine) -> list[VideoItem]:
    with Session(engine) as session:
        return list(session.exec(select(VideoItem)).all())


def test_the_same_key_twice_answers_the_first_answer_and_creates_nothing(client, engine):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    body = {"group_id": group, "tasks": [{"photo_id": photo["id"], "prompt": "waves"}] * 2}
    first = add_with_key(client, "batch-7f3a", body)
    again = add_with_key(client, "batch-7f3a", body)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(items(engine)) == 2


def test_the_same_key_with_another_body_is_422(client, engine):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    body = {"group_id": group, "tasks": [{"photo_id": photo["id"], "prompt": "waves"}]}
    assert add_with_key(client, "k-1", body).status_code == 200
    other = add_with_key(
        client, "k-1", body | {"tasks": [{"photo_id": photo["id"], "prompt": "x"}]}
    )
    assert other.status_code == 422  # the IETF draft's answer (409 is for one in flight)
    assert "was used for a different request" in other.json()["error"]
    assert len(items(engine)) == 1


def test_a_failed_request_keeps_no_key(client, engine):
    group = new_group(client)
    bad = {"group_id": group, "tasks": [{"photo_id": None, "prompt": "waves"}]}
    assert add_with_key(client, "k-2", bad).status_code == 400
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    good = {"group_id": group, "tasks": [{"photo_id": photo["id"], "prompt": "waves"}]}
    assert add_with_key(client, "k-2", good).status_code == 200  # the key was not taken


def test_a_photo_upload_with_a_key_is_stored_once(client, engine):
    group = new_group(client)
    files = [("files", ("a.png", image_bytes(70, 50), "image/png"))]
    headers = {**as_admin(), "Idempotency-Key": "photos-1"}
    first = client.post(f"/api/admin/groups/{group}/photos", headers=headers, files=files)
    again = client.post(f"/api/admin/groups/{group}/photos", headers=headers, files=files)
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    other = [("files", ("b.png", image_bytes(50, 70), "image/png"))]
    refused = client.post(f"/api/admin/groups/{group}/photos", headers=headers, files=other)
    assert refused.status_code == 422
    with Session(engine) as session:
        assert len(session.exec(select(Photo)).all()) == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_eight_concurrent_requests_with_one_key_create_one_batch(app_settings, engine):
    app = create_app(app_settings)
    try:
        with live_server(app) as url, httpx.Client(base_url=url) as http:
            group = http.post("/api/admin/groups", headers=as_admin(), json={"name": "race"})
            group_id = group.json()["data"]["id"]
            photo = http.post(
                f"/api/admin/groups/{group_id}/photos",
                headers=as_admin(),
                files=[("files", ("a.png", image_bytes(), "image/png"))],
            ).json()["data"][0]
            body = {"group_id": group_id, "tasks": [{"photo_id": photo["id"], "prompt": "p"}]}
            answers: list[httpx.Response] = []
            start = threading.Barrier(8)

            def send() -> None:
                with httpx.Client(base_url=url, timeout=60) as own:
                    start.wait()
                    answers.append(
                        own.post(
                            "/api/admin/tasks/add",
                            headers={**as_admin(), "Idempotency-Key": "concurrent"},
                            json=body,
                        )
                    )

            threads = [threading.Thread(target=send) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        app.state.engine.dispose()
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.text for a in answers}) == 1  # one answer, the first
    assert sum(1 for a in answers if "Idempotent-Replayed" not in a.headers) == 1
    assert len(items(engine)) == 1


def test_keys_expire_and_are_purged(session):
    now = utcnow()

    def begin(fingerprint, at):
        return idempotency.begin(
            session, key="old", scope="s", fingerprint=fingerprint, hours=24, now=at
        )

    assert begin("a", now) is None
    idempotency.finish(session, key="old", status_code=200, body={"n": 1})
    session.commit()
    replay = begin("a", now)
    assert replay is not None and replay.body == {"n": 1}
    with pytest.raises(idempotency.KeyReused):
        begin("b", now)
    later = now + timedelta(hours=25)
    assert begin("b", later) is None  # expired: the key is free again, for any request
    session.rollback()
    assert idempotency.purge(session, now=later) == 1
    session.commit()
    assert session.exec(select(IdempotencyKey)).all() == []


def test_the_cli_adds_the_same_photos_once_unless_told_new(monkeypatch, tmp_path, db_url):
    photo = tmp_path / "beach.png"
    photo.write_bytes(image_bytes())
    monkeypatch.setenv("REELROUTE_DATABASE_URL", db_url)
    monkeypatch.setenv("REELROUTE_STORAGE_URL", str(tmp_path / "storage"))
    monkeypatch.chdir(tmp_path)

    def run(*extra: str):
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(
                cli_app, ["add", str(photo), "--prompt", "waves", "--group", "beach", *extra]
            )
        finally:
            get_settings.cache_clear()

    first, again, new = run(), run(), run("--new")
    assert first.exit_code == again.exit_code == new.exit_code == 0, first.output
    assert again.output.startswith("already added (the same photos and options")
    assert first.output.strip() in again.output  # the first batch's lines
    ids = {line.split()[0] for line in (first.output + new.output).splitlines()[1:] if line}
    from reelroute.models.store.db import make_engine

    engine = make_engine(db_url)
    try:
        assert len(items(engine)) == 2  # the first and the --new batch
    finally:
        engine.dispose()
    assert len(ids) >= 2
