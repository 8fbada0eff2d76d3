"""The webhook sender (`reelroute webhooks`, and a child of `reelroute up`): every quarter second
(at once again while there is work) it turns new outbox events into deliveries
(`models.webhooks.fan_out`), then posts the due ones, signed per the Standard Webhooks
specification (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with the
endpoint's secret).

Delivery is at least once: a delivery is marked delivered only after its receiver answered
2xx, so a sender killed mid-delivery sends it again (with the same `webhook-id`, for the
receiver to drop the repeat). No redirect is followed, a receiver has
REELROUTE_WEBHOOK_TIMEOUT_SECONDS to answer, and the target's address is checked before every
post (no loopback, private, link-local or reserved address unless
REELROUTE_WEBHOOK_ALLOW_PRIVATE). Database and network outages are waited out; expired
idempotency keys are purged on the way.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from standardwebhooks import Webhook

from reelroute.flows.backoff import Backoff
from reelroute.models import idempotency
from reelroute.models import webhooks as hooks
from reelroute.models.db import make_engine, session_scope
from reelroute.models.settings import Settings
from reelroute.models.tables import utcnow

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.25
BATCH = 200
SENDERS = 8
PURGE_EVERY_SECONDS = 3600.0
USER_AGENT = "reelroute-webhooks/1"


@dataclass(frozen=True)
class Attempt:
    """What one post gave."""

    delivery_id: int
    ok: bool
    status: int | None
    error: str


class Sender:
    """Fan-out and delivery for one installation (run one; two would share the work)."""

    def __init__(
        self, engine: sa.Engine, settings: Settings, client: httpx.Client | None = None
    ) -> None:
        self.engine, self.settings = engine, settings
        self.client = client or httpx.Client(follow_redirects=False)
        self.pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="webhook")
        self._next_purge = 0.0

    def start(self) -> None:
        """Register the default endpoint (REELROUTE_WEBHOOK_URL), when there is one."""
        with session_scope(self.engine) as session:
            hooks.ensure_default(session, self.settings)

    def pass_once(self, now: datetime | None = None) -> int:
        """Fan out new events and post what is due; returns how many posts were made."""
        now = now or utcnow()
        with session_scope(self.engine) as session:
            while hooks.fan_out(session, limit=1000, now=now) == 1000:
                pass
        with session_scope(self.engine) as session:
            outgoing = hooks.due(session, self.settings, limit=BATCH, now=now)
        if not outgoing:
            self._purge()
            return 0
        attempts = list(self.pool.map(self.post, outgoing))
        finished = utcnow()
        with session_scope(self.engine) as session:
            hooks.delivered(session, [a.delivery_id for a in attempts if a.ok], now=finished)
            for attempt in attempts:
                if attempt.ok:
                    continue
                state = hooks.attempt_failed(
                    session,
                    attempt.delivery_id,
                    error=attempt.error,
                    status=attempt.status,
                    now=finished,
                    retry_hours=self.settings.webhook_retry_hours,
                )
                if state == hooks.DEAD:
                    log.warning(
                        "webhook delivery %s dead after %.0f h: %s",
                        attempt.delivery_id,
                        self.settings.webhook_retry_hours,
                        attempt.error,
                    )
        return len(attempts)

    def post(self, outgoing: hooks.Outgoing) -> Attempt:
        """One signed post; never raises."""
        host = urlsplit(outgoing.url).hostname or ""
        port = urlsplit(outgoing.url).port or 443
        if not self.settings.webhook_allow_private:
            refused = hooks.private_address(host, port)
            if refused is not None:
                return Attempt(outgoing.delivery_id, False, None, f"refused: {host} is {refused}")
        body = json.dumps(outgoing.payload, separators=(",", ":"))
        signature = Webhook(outgoing.secret).sign(outgoing.message_id, outgoing.timestamp, body)
        headers = {
            "webhook-id": outgoing.message_id,
            "webhook-timestamp": str(int(outgoing.timestamp.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            answer = self.client.post(
                outgoing.url,
                content=body,
                headers=headers,
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,
            )
        except httpx.HTTPError as error:
            return Attempt(outgoing.delivery_id, False, None, f"{type(error).__name__}: {error}")
        if 200 <= answer.status_code < 300:
            return Attempt(outgoing.delivery_id, True, answer.status_code, "")
        why = "a redirect (not followed)" if 300 <= answer.status_code < 400 else "an error"
        return Attempt(
            outgoing.delivery_id, False, answer.status_code, f"answered {answer.status_code}, {why}"
        )

    def _purge(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        with session_scope(self.engine) as session:
            purged = idempotency.purge(session)
        if purged:
            log.info("purged %d expired idempotency keys", purged)
        self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS

    def close(self) -> None:
        """Stop the posting threads and the HTTP client."""
        self.pool.shutdown(wait=True)
        self.client.close()


def run_sender(settings: Settings, stop: threading.Event) -> None:
    """Deliver until `stop` is set, waiting out outages with a growing backoff."""
    engine = make_engine(settings.database_url)
    sender = Sender(engine, settings)
    backoff = Backoff("webhook sender", INTERVAL_SECONDS, log=log)
    started = False
    try:
        while not stop.is_set():
            try:
                if not started:
                    sender.start()
                    started = True
                posted = sender.pass_once()
                wait = backoff.succeeded() if posted == 0 else 0.0  # busy: straight on
            except Exception as error:  # an outage, or a surprise: the loop goes on
                wait = backoff.failed(error)
            stop.wait(wait)
    finally:
        sender.close()
        engine.dispose()
