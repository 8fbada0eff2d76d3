"""Webhooks from the outbox to a local receiver that verifies every signature: each event of an
item's life, a receiver down for a while, one that always fails (dead letter, then resend), a
sender killed mid-delivery, and a private address refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select
from standardwebhooks import Webhook

from reelroute.deployments.launcher import free_port
from reelroute.flows.webhooks import Sender
from reelroute.models import events
from reelroute.models import webhooks as hooks
from reelroute.models.batches import add_batch
from reelroute.models.errors import InvalidInput
from reelroute.models.lifecycle import (
    cancel_item,
    claim_item,
    complete_item,
    fail_item,
    renew_lease,
)
from reelroute.models.tables import WebhookDelivery, utcnow
from reelroute.models.tasks import TaskSpec
from tests.models.helpers import add_group_with_photos

REPO = Path(__file__).resolve().parents[2]
KEY = "webhook-signing-key-" + "k" * 24


class Receiver:
    """A webhook receiver on loopback: verifies each signature, records what it accepted."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.accepted: list[dict] = []
        self.ids: list[str] = []
        self.refused_signatures = 0
        self.fail_until = 0.0  # answer 503 until this monotonic time
        self.always_fail = False
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.always_fail or time.monotonic() < receiver.fail_until:
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers))
                except Exception:
                    receiver.refused_signatures += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.accepted.append(payload)
                    receiver.ids.append(self.headers["webhook-id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def types_of(self, item_id: uuid.UUID) -> list[str]:
        with self.lock:
            return [p["type"] for p in self.accepted if p["data"]["item_id"] == str(item_id)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def hook_settings(settings):
    return settings.model_copy(
        update={
            "webhook_signing_key": SecretStr(KEY),
            "webhook_allow_private": True,
            "public_url": "https://videos.example.com",
        }
    )


def register(engine, settings, receiver, events_wanted=None):
    with Session(engine) as session:
        endpoint = hooks.register(session, settings, url=receiver.url, events=events_wanted)
        session.commit()
        receiver.secret = hooks.endpoint_secret(settings, receiver.url)
        return endpoint


def new_items(engine, settings, count, *, webhook_url=None):
    with Session(engine, expire_on_commit=False) as session:
        group_id, (photo_id,) = add_group_with_photos(session, 1)
        tasks = [
            TaskSpec(
                photo_id=photo_id,
                prompt=f"p{n}",
                inference_provider="runway_gen4_turbo",
                webhook_url=webhook_url,
            )
            for n in range(count)
        ]
        items = add_batch(session, group_id=group_id, tasks=tasks, settings=settings)
        session.commit()
        return items


def statuses(engine) -> set[str]:
    with Session(engine) as session:
        return {d.status for d in session.exec(select(WebhookDelivery)).all()}


def drain(sender: Sender, until, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "not delivered in time"
        sender.pass_once()
        time.sleep(0.1)


def test_every_event_of_an_items_life_arrives_signed_and_in_order(engine, hook_settings, receiver):
    register(engine, hook_settings, receiver, events_wanted=list(events.EVENT_TYPES))
    done, failed, cancelled = new_items(engine, hook_settings, 3, webhook_url=receiver.url)
    with Session(engine) as session:
        claim_item(session, item_id=done.id, attempt=1, worker_id="w", settings=hook_settings)
        renew_lease(
            session, item_id=done.id, attempt=1, worker_id="w", lease_seconds=60, progress=0.5
        )
        complete_item(
            session, item_id=done.id, attempt=1, worker_id="w", output_path="v", cost_credits=25
        )
        claim_item(session, item_id=failed.id, attempt=1, worker_id="w", settings=hook_settings)
        fail_item(
            session,
            item_id=failed.id,
            attempt=1,
            worker_id="w",
            error="moderation",
            permanent=True,
            settings=hook_settings,
        )
        cancel_item(session, item_id=cancelled.id)
        session.commit()
    sender = Sender(engine, hook_settings)
    try:
        drain(sender, lambda: len(receiver.accepted) == 9)
    finally:
        sender.close()
    assert receiver.types_of(done.id) == [
        "item.created",
        "item.started",
        "item.progress",
        "item.completed",
    ]
    assert receiver.types_of(failed.id) == ["item.created", "item.started", "item.failed"]
    assert receiver.types_of(cancelled.id) == ["item.created", "item.cancelled"]
    completed = next(p for p in receiver.accepted if p["type"] == "item.completed")
    assert completed["data"]["video_url"] == (
        f"https://videos.example.com/api/admin/items/{done.id}/video"
    )
    assert completed["data"]["cost_dollars"] == 0.25
    reason = next(p for p in receiver.accepted if p["type"] == "item.failed")["data"]["reason"]
    assert reason == "moderation"
    assert receiver.refused_signatures == 0


def test_progress_is_opt_in_and_a_filter_is_honoured(engine, hook_settings, receiver):
    register(engine, hook_settings, receiver)  # the default: all but progress
    (item,) = new_items(engine, hook_settings, 1, webhook_url=receiver.url)
    with Session(engine) as session:
        claim_item(session, item_id=item.id, attempt=1, worker_id="w", settings=hook_settings)
        for value in (0.2, 0.4):  # the second is within 30 s: no second event either
            renew_lease(
                session, item_id=item.id, attempt=1, worker_id="w", lease_seconds=60, progress=value
            )
        session.commit()
    sender = Sender(engine, hook_settings)
    try:
        drain(sender, lambda: len(receiver.accepted) == 2)
        sender.pass_once()
    finally:
        sender.close()
    assert receiver.types_of(item.id) == ["item.created", "item.started"]
    with Session(engine) as session:
        progress = session.exec(
            select(events.ItemEvent).where(events.ItemEvent.type == events.PROGRESS)
        ).all()
    assert len(progress) == 1  # at most one every 30 s


def test_a_receiver_down_for_a_while_gets_everything_later_in_order(
    engine, hook_settings, receiver
):
    register(engine, hook_settings, receiver)
    items = new_items(engine, hook_settings, 3, webhook_url=receiver.url)
    with Session(engine) as session:
        for item in items:
            cancel_item(session, item_id=item.id)
        session.commit()
    receiver.fail_until = time.monotonic() + 3.0
    sender = Sender(engine, hook_settings)
    try:
        sender.pass_once()  # all refused: retried after 1-2 s, then 2-4 s
        assert receiver.accepted == []
        drain(sender, lambda: len(receiver.accepted) == 6, timeout=60)
    finally:
        sender.close()
    for item in items:
        assert receiver.types_of(item.id) == ["item.created", "item.cancelled"]
    with Session(engine) as session:
        attempts = [d.attempts for d in session.exec(select(WebhookDelivery)).all()]
    assert max(attempts) >= 2


def test_a_receiver_that_always_fails_gets_a_dead_letter_then_a_resend(
    engine, hook_settings, receiver
):
    settings = hook_settings.model_copy(update={"webhook_retry_hours": 0.0008})  # about 3 s
    register(engine, settings, receiver)
    (item,) = new_items(engine, settings, 1, webhook_url=receiver.url)
    receiver.always_fail = True
    sender = Sender(engine, settings)
    try:
        deadline = time.monotonic() + 60
        while True:
            sender.pass_once()
            with Session(engine) as session:
                dead = hooks.dead_letters(session)
            if dead:
                break
            assert time.monotonic() < deadline, "no dead letter"
            time.sleep(0.2)
        [(delivery, url, kind)] = dead
        assert (url, kind, delivery.last_status) == (receiver.url, "item.created", 503)
        assert "answered 503" in (delivery.last_error or "")
        receiver.always_fail = False
        with Session(engine) as session:
            hooks.resend(session, delivery.id)
            session.commit()
        drain(sender, lambda: receiver.types_of(item.id) == ["item.created"])
    finally:
        sender.close()
    with Session(engine) as session:
        assert hooks.dead_letters(session) == []
        with pytest.raises(InvalidInput, match="not dead"):
            hooks.resend(session, delivery.id)


def test_a_private_address_is_refused_unless_allowed(engine, hook_settings, receiver):
    strict = hook_settings.model_copy(update={"webhook_allow_private": False})
    with Session(engine) as session, pytest.raises(InvalidInput, match="use an https:// URL"):
        hooks.register(session, strict, url=receiver.url)
    # Registered as https, resolving to loopback: every post is refused, nothing is sent.
    loopback = "https://localhost:9/hooks"
    with Session(engine) as session:
        hooks.register(session, strict, url=loopback)
        session.commit()
    new_items(engine, strict, 1, webhook_url=loopback)
    sender = Sender(engine, strict)
    try:
        sender.pass_once()
    finally:
        sender.close()
    with Session(engine) as session:
        [delivery] = session.exec(select(WebhookDelivery)).all()
    assert delivery.status == hooks.PENDING and delivery.attempts == 1
    assert (delivery.last_error or "").startswith("refused: localhost is ")
    assert "a loopback address" in (delivery.last_error or "")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_sender_killed_mid_delivery_sends_again_and_loses_nothing(
    engine, hook_settings, receiver, db_url, tmp_path
):
    register(engine, hook_settings, receiver)
    items = new_items(engine, hook_settings, 5, webhook_url=receiver.url)
    receiver.delay = 3.0  # the sender waits on the receiver: killed meanwhile
    env = {
        **os.environ,
        "REELROUTE_DATABASE_URL": db_url,
        "REELROUTE_WEBHOOK_SIGNING_KEY": KEY,
        "REELROUTE_WEBHOOK_ALLOW_PRIVATE": "true",
        "REELROUTE_STORAGE_URL": str(tmp_path / "storage"),
    }
    argv = [sys.executable, "-m", "reelroute", "webhooks"]
    first = subprocess.Popen(argv, env=env, cwd=REPO, start_new_session=True)
    try:
        time.sleep(4.0)  # fanned out, posts on their way, none answered yet
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        receiver.delay = 0.0
        with open(tmp_path / "second.log", "wb") as log:
            second = subprocess.Popen(
                argv,
                env=env,
                cwd=REPO,
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while any(set(receiver.types_of(i.id)) != {"item.created"} for i in items) or (
                statuses(engine) != {hooks.DELIVERED}
            ):
                assert time.monotonic() < deadline, (tmp_path / "second.log").read_text()[-3000:]
                time.sleep(0.2)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert statuses(engine) == {hooks.DELIVERED}
    # Posts the killed sender had made may arrive twice: with the same webhook-id, so the
    # receiver can tell; every event arrived.
    assert len(set(receiver.ids)) == 5 and len(receiver.ids) >= 5


def test_signatures_use_the_endpoints_own_secret(hook_settings):
    one = hooks.endpoint_secret(hook_settings, "https://a.example/hooks")
    two = hooks.endpoint_secret(hook_settings, "https://b.example/hooks")
    assert one.startswith("whsec_") and one != two
    assert one == hooks.endpoint_secret(hook_settings, "https://a.example/hooks")
    other_key = hook_settings.model_copy(update={"webhook_signing_key": SecretStr("x" * 40)})
    assert hooks.endpoint_secret(other_key, "https://a.example/hooks") != one
    payload = json.dumps({"type": "item.created"})
    signed = Webhook(one).sign("evt_1", utcnow() - timedelta(seconds=1), payload)
    assert signed.startswith("v1,")
