"""A webhook receiver on loopback that verifies every signature, and the steps the webhook tests
share: register it, make items that name it, run the sender until something holds."""

from __future__ import annotations

import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlmodel import Session, select
from standardwebhooks import Webhook

from reelroute.deployments.launcher import free_port
from reelroute.flows.webhooks import Sender
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.outbox import endpoints
from reelroute.models.outbox.tables import WebhookDelivery
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
                    payload = Webhook(receiver.secret or "").verify(body, dict(self.headers))
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


def register(engine, settings, receiver, events_wanted=None):
    with Session(engine, expire_on_commit=False) as session:
        endpoint, secret = endpoints.register(
            session, settings, url=receiver.url, events=events_wanted
        )
        session.commit()
        receiver.secret = secret
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
