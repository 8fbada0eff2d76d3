"""Webhooks from the outbox to a local receiver that verifies every signature: each event of an
item's life, a receiver down for a while, one that always fails (dead letter, then resend), a
sender killed mid-delivery, and a private address refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select
from standardwebhooks import Webhook

from reelroute.flows.webhooks import Sender
from reelroute.models.core.enums import DeliveryStatus, EventType
from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.tables import utcnow
from reelroute.models.items.lifecycle import (
    cancel_item,
    claim_item,
    complete_item,
    fail_item,
    renew_lease,
)
from reelroute.models.outbox import endpoints
from reelroute.models.outbox import webhooks as hooks
from reelroute.models.outbox.tables import ItemEvent, WebhookDelivery
from reelroute.models.store.tallies import delivery_tallies
from tests.flows.receivers import KEY, REPO, drain, new_items, register, statuses


def test_every_event_of_an_items_life_arrives_signed_and_in_order(engine, hook_settings, receiver):
    register(engine, hook_settings, receiver, events_wanted=[kind.value for kind in EventType])
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
        progress = session.exec(select(ItemEvent).where(ItemEvent.type == EventType.progress)).all()
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
        tallies = delivery_tallies(session)
    assert max(attempts) >= 2
    # Every attempt counted once, by outcome (the metrics' reelroute_webhook_attempts_total).
    assert tallies.get("delivered") == 6 and tallies.get("dead") is None
    assert tallies["failed"] == sum(attempts) - 6 > 0


def test_a_receiver_that_always_fails_gets_a_dead_letter_then_a_resend(
    engine, hook_settings, receiver
):
    settings = hook_settings.replaced(webhook_retry_hours=0.0008)  # about 3 s
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
        [letter] = dead
        delivery = letter.delivery
        assert (letter.endpoint_url, letter.event_type, delivery.last_status) == (
            receiver.url,
            EventType.created,
            503,
        )
        assert "answered 503" in (delivery.last_error or "")
        receiver.always_fail = False
        with Session(engine) as session:
            hooks.resend(session, delivery.id or 0)
            session.commit()
        drain(sender, lambda: receiver.types_of(item.id) == ["item.created"])
    finally:
        sender.close()
    with Session(engine) as session:
        assert hooks.dead_letters(session) == []
        tallies = delivery_tallies(session)
        assert (tallies["dead"], tallies["delivered"]) == (1, 1) and tallies["failed"] >= 1
        with pytest.raises(InvalidInput, match="not dead"):
            hooks.resend(session, delivery.id or 0)


def test_a_private_address_is_refused_unless_allowed(engine, hook_settings, receiver):
    strict = hook_settings.replaced(webhook_allow_networks="")
    with Session(engine) as session, pytest.raises(InvalidInput, match="a loopback address"):
        endpoints.register(session, strict, url=receiver.url)
    with Session(engine) as session, pytest.raises(InvalidInput, match="plain http"):
        endpoints.register(session, strict, url="http://example.com/hooks", resolver=public)
    # Registered when its name resolved to a public address; by the post it resolves to
    # loopback (DNS rebinding): the post is refused, nothing is sent.
    rebound = "https://rebinding.example/hooks"
    with Session(engine) as session:
        endpoints.register(session, strict, url=rebound, resolver=public)
        session.commit()
    new_items(engine, strict, 1, webhook_url=rebound)
    sender = Sender(engine, strict, resolver=lambda _host, _port: ["127.0.0.1"])
    try:
        sender.pass_once()
        sender.wait_idle()
    finally:
        sender.close()
    with Session(engine) as session:
        [delivery] = session.exec(select(WebhookDelivery)).all()
    assert delivery.status is DeliveryStatus.pending and delivery.attempts == 1
    assert (delivery.last_error or "").startswith("refused: rebinding.example is 127.0.0.1")
    assert "a loopback address" in (delivery.last_error or "")
    assert receiver.accepted == []


def public(_host: str, _port: int) -> list[str]:
    """A resolver that answers a public address (example.com's)."""
    return ["93.184.216.34"]


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
        "REELROUTE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
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
                statuses(engine) != {DeliveryStatus.delivered}
            ):
                assert time.monotonic() < deadline, (tmp_path / "second.log").read_text()[-3000:]
                time.sleep(0.2)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert statuses(engine) == {DeliveryStatus.delivered}
    # Posts the killed sender had made may arrive twice: with the same webhook-id, so the
    # receiver can tell; every event arrived.
    assert len(set(receiver.ids)) == 5 and len(receiver.ids) >= 5


def test_each_endpoint_has_a_random_secret_kept_encrypted(engine, hook_settings):
    with Session(engine, expire_on_commit=False) as session:
        one, first = endpoints.register(
            session, hook_settings, url="https://a.example/hooks", resolver=public
        )
        two, second = endpoints.register(
            session, hook_settings, url="https://b.example/hooks", resolver=public
        )
        session.commit()
    assert first.startswith("whsec_") and second.startswith("whsec_") and first != second
    with engine.connect() as connection:  # nowhere in the database in clear
        rows = connection.exec_driver_sql("SELECT * FROM webhook_endpoints").all()
    assert first not in repr(rows) and first.removeprefix("whsec_") not in repr(rows)
    assert endpoints.signing_secrets(one, hook_settings) == [first]
    other_key = hook_settings.replaced(webhook_signing_key=SecretStr("x" * 40))
    with pytest.raises(InvalidInput, match="rotate the endpoint's secret"):
        endpoints.signing_secrets(one, other_key)
    payload = json.dumps({"type": "item.created"})
    signed = Webhook(first).sign("evt_1", utcnow() - timedelta(seconds=1), payload)
    assert signed.startswith("v1,")
    assert two.id != one.id
