"""Webhook endpoints and deliveries (the database side; `flows.webhooks` sends them).

- An **endpoint** is a receiver URL registered by an admin (`POST /api/admin/webhooks`) with the
  events it wants (default: all but `item.progress`). A group or a task names one by its URL;
  `REELROUTE_WEBHOOK_URL` names the one every item's events go to.
- Its **signing secret** (Standard Webhooks, `whsec_…`) is derived from
  REELROUTE_WEBHOOK_SIGNING_KEY and the URL (HMAC-SHA256): shown to the admin when the endpoint is
  registered, never stored, logged or shown again.
- **Fan-out**: the sender turns each outbox event into one delivery per endpoint that wants it.
- **Deliveries** are sent at least once, in order per item and endpoint (a delivery waits while
  an earlier one of its item to that endpoint is pending), retried with exponential backoff and
  jitter for REELROUTE_WEBHOOK_RETRY_HOURS, then dead (the admin lists them and can resend).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.errors import InvalidInput, NotFound
from reelroute.models.events import DEFAULT_EVENTS, EVENT_TYPES
from reelroute.models.settings import Settings
from reelroute.models.sql import rowcount, sql
from reelroute.models.tables import ItemEvent, WebhookDelivery, WebhookEndpoint, utcnow

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 3600.0


def endpoint_secret(settings: Settings, url: str) -> str:
    """The Standard Webhooks secret of the endpoint at `url` (`whsec_` + base64 of 32 bytes)."""
    if settings.webhook_signing_key is None:
        raise InvalidInput(
            [
                "webhooks: set REELROUTE_WEBHOOK_SIGNING_KEY (32 characters or more) first; "
                "every endpoint's signing secret is derived from it"
            ]
        )
    key = settings.webhook_signing_key.get_secret_value().encode()
    digest = hmac.new(key, f"reelroute webhook endpoint {url}".encode(), hashlib.sha256)
    return "whsec_" + base64.b64encode(digest.digest()).decode()


def check_url(url: str, settings: Settings, *, resolve: bool = False) -> str:
    """The URL, or InvalidInput saying why reelroute will not post to it: `https` only (`http`
    when REELROUTE_WEBHOOK_ALLOW_PRIVATE, for receivers on this host or network), no user or
    password in it, and (when `resolve`) no loopback, private, link-local or reserved address
    unless REELROUTE_WEBHOOK_ALLOW_PRIVATE."""
    parts = urlsplit(url.strip())
    problems = []
    allowed = {"https", "http"} if settings.webhook_allow_private else {"https"}
    if parts.scheme not in allowed:
        problems.append(f"webhook_url: {parts.scheme or 'no'} scheme; use an https:// URL")
    if not parts.hostname:
        problems.append("webhook_url: no host; give the receiver's full URL")
    if parts.username or parts.password:
        problems.append("webhook_url: holds a user or password; sign with the secret instead")
    if len(url) > 2000:
        problems.append("webhook_url: longer than 2000 characters")
    if problems:
        raise InvalidInput(problems)
    if resolve:
        refused = private_address(parts.hostname or "", parts.port or 443)
        if refused is not None and not settings.webhook_allow_private:
            raise InvalidInput(
                [
                    f"webhook_url: {parts.hostname} is {refused}; reelroute posts to public "
                    "addresses only (REELROUTE_WEBHOOK_ALLOW_PRIVATE=true allows these)"
                ]
            )
    return url.strip()


def private_address(host: str, port: int) -> str | None:
    """Why `host` is not a public address (e.g. `127.0.0.1, a loopback address`), or None."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        return "not resolvable"
    for address in sorted(found):
        ip = ipaddress.ip_address(str(address).split("%")[0])
        for flag, word in (
            (ip.is_loopback, "a loopback address"),
            (ip.is_private, "a private address"),
            (ip.is_link_local, "a link-local address"),
            (ip.is_multicast, "a multicast address"),
            (ip.is_reserved or ip.is_unspecified, "a reserved address"),
        ):
            if flag:
                return f"{address}, {word}"
    return None


def check_events(events: list[str] | None) -> list[str] | None:
    """The event filter, or InvalidInput naming an unknown event."""
    if events is None:
        return None
    unknown = [event for event in events if event not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            [f"events: {', '.join(unknown)} unknown; choose from {', '.join(EVENT_TYPES)}"]
        )
    return sorted(set(events))


def register(
    session: Session,
    settings: Settings,
    *,
    url: str,
    events: list[str] | None = None,
    is_default: bool = False,
) -> WebhookEndpoint:
    """Create or update the endpoint at `url` (its secret: `endpoint_secret`)."""
    url = check_url(url, settings)
    endpoint_secret(settings, url)  # refuse early without a signing key
    wanted = check_events(events)
    endpoint = session.exec(select(WebhookEndpoint).where(WebhookEndpoint.url == url)).first()
    if endpoint is None:
        endpoint = WebhookEndpoint(url=url)
    endpoint.events = wanted
    endpoint.is_default = endpoint.is_default or is_default
    session.add(endpoint)
    session.flush()
    return endpoint


def endpoint_for(session: Session, url: str | None) -> uuid.UUID | None:
    """The registered endpoint of `url` (None for None); InvalidInput when it is unknown."""
    if url is None:
        return None
    endpoint = session.exec(
        select(WebhookEndpoint).where(WebhookEndpoint.url == url.strip())
    ).first()
    if endpoint is None:
        raise InvalidInput(
            [f"webhook_url: {url} is not registered; register it with POST /api/admin/webhooks"]
        )
    return endpoint.id


def ensure_default(session: Session, settings: Settings) -> WebhookEndpoint | None:
    """The endpoint of REELROUTE_WEBHOOK_URL (registered on first use), if set."""
    if settings.webhook_url is None:
        return None
    return register(session, settings, url=settings.webhook_url, is_default=True)


def wants(endpoint: WebhookEndpoint, kind: str) -> bool:
    """Whether the endpoint subscribed to `kind`."""
    return kind in (endpoint.events if endpoint.events is not None else DEFAULT_EVENTS)


# --- fan-out: events -> deliveries ---------------------------------------------------------

NEW_EVENTS = """
SELECT e.id, e.item_id, e.type, g.webhook_endpoint_id AS group_endpoint,
       v.webhook_endpoint_id AS item_endpoint
FROM item_events AS e
LEFT JOIN video_items AS v ON v.id = e.item_id
LEFT JOIN groups AS g ON g.id = e.group_id
WHERE NOT e.fanned_out
ORDER BY e.id
LIMIT :limit
"""


def fan_out(session: Session, *, limit: int = 1000, now: datetime | None = None) -> int:
    """Make the deliveries of up to `limit` new events; returns how many events were done."""
    now = now or utcnow()
    text = NEW_EVENTS
    if session.get_bind().dialect.name == "postgresql":  # two senders never take one event
        text = text.replace("LIMIT :limit", "LIMIT :limit FOR UPDATE OF e SKIP LOCKED")
    statement = sql(text).columns(
        sa.column("id", sa.BigInteger()),
        sa.column("item_id", sa.Uuid()),
        sa.column("type", sa.String()),
        sa.column("group_endpoint", sa.Uuid()),
        sa.column("item_endpoint", sa.Uuid()),
    )
    rows = session.execute(statement, {"limit": limit}).all()
    if not rows:
        return 0
    endpoints = {e.id: e for e in session.exec(select(WebhookEndpoint)).all()}
    defaults = [e for e in endpoints.values() if e.is_default]
    deliveries = []
    for event_id, item_id, kind, group_endpoint, item_endpoint in rows:
        targets = {e.id: e for e in defaults}
        for chosen in (group_endpoint, item_endpoint):
            if chosen is not None and chosen in endpoints:
                targets[chosen] = endpoints[chosen]
        for endpoint in targets.values():
            if wants(endpoint, kind):
                deliveries.append(
                    {
                        "event_id": event_id,
                        "endpoint_id": endpoint.id,
                        "item_id": item_id,
                        "status": PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                )
    if deliveries:
        session.execute(sa.insert(WebhookDelivery), deliveries)
    session.execute(
        sa.update(ItemEvent)
        .where(col(ItemEvent.id).in_([row[0] for row in rows]))
        .values(fanned_out=True)
        .execution_options(synchronize_session=False)
    )
    return len(rows)


# --- deliveries ------------------------------------------------------------------------------

# The due deliveries that are first in line for their item and endpoint.
DUE = """
SELECT d.id FROM webhook_deliveries AS d
WHERE d.status = 'pending' AND d.next_attempt_at <= :now
  AND NOT EXISTS (
      SELECT 1 FROM webhook_deliveries AS earlier
      WHERE earlier.endpoint_id = d.endpoint_id AND earlier.item_id = d.item_id
        AND earlier.event_id < d.event_id AND earlier.status = 'pending'
  )
ORDER BY d.next_attempt_at, d.id
LIMIT :limit
"""


@dataclass(frozen=True)
class Outgoing:
    """One delivery to make now: where, what, signed with which secret."""

    delivery_id: int
    url: str
    secret: str
    message_id: str
    payload: dict[str, Any]
    timestamp: datetime


def due(session: Session, settings: Settings, *, limit: int, now: datetime) -> list[Outgoing]:
    """The deliveries to send now, with their payloads."""
    ids = [row[0] for row in session.execute(sql(DUE), {"now": now, "limit": limit}).all()]
    if not ids:
        return []
    query = (
        select(WebhookDelivery, ItemEvent, WebhookEndpoint)
        .join(ItemEvent, col(ItemEvent.id) == col(WebhookDelivery.event_id))
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(col(WebhookDelivery.id).in_(ids))
        .order_by(col(WebhookDelivery.id))
    )
    found = []
    for delivery, event, endpoint in session.exec(query).all():
        assert delivery.id is not None
        found.append(
            Outgoing(
                delivery_id=delivery.id,
                url=endpoint.url,
                secret=endpoint_secret(settings, endpoint.url),
                message_id=f"evt_{event.id}",
                payload=payload_of(session, event, settings),
                timestamp=now,
            )
        )
    return found


def payload_of(session: Session, event: ItemEvent, settings: Settings) -> dict[str, Any]:
    """What a receiver gets for an event (the same as the SSE stream's `data`)."""
    return event_payload(event, settings.public_url)


def event_payload(event: ItemEvent, public_url: str | None) -> dict[str, Any]:
    """An event as JSON: its type, when, and the item as it was then."""
    data: dict[str, Any] = {
        "item_id": str(event.item_id),
        "group_id": str(event.group_id) if event.group_id else None,
        "status": event.status,
        "provider": event.provider,
        "attempt": event.attempt,
    }
    if event.progress is not None:
        data["progress"] = event.progress
    if event.detail is not None:
        data["reason"] = event.detail
    if event.type == "item.completed":
        path = f"/api/admin/items/{event.item_id}/video"
        data["video_url"] = f"{public_url.rstrip('/')}{path}" if public_url else path
        data["cost_credits"] = event.cost_credits or 0
        data["cost_dollars"] = (event.cost_credits or 0) / 100
    return {
        "id": event.id,
        "type": event.type,
        "timestamp": event.created_at.isoformat(),
        "data": data,
    }


def delivered(session: Session, delivery_ids: list[int], *, now: datetime) -> None:
    """The receivers answered 2xx to these deliveries (one statement for all)."""
    if not delivery_ids:
        return
    session.execute(
        sa.update(WebhookDelivery)
        .where(col(WebhookDelivery.id).in_(delivery_ids))
        .values(
            status=DELIVERED,
            attempts=WebhookDelivery.attempts + 1,
            first_attempt_at=sa.func.coalesce(WebhookDelivery.first_attempt_at, now),
            last_error=None,
            delivered_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def attempt_failed(
    session: Session,
    delivery_id: int,
    *,
    error: str,
    status: int | None,
    now: datetime,
    retry_hours: float,
    rng: random.Random | None = None,
) -> str:
    """The attempt failed: try again after a growing, jittered wait, or give up (dead) once
    `retry_hours` have passed since the first attempt. Returns the new status."""
    delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if delivery is None:
        return DEAD
    first = delivery.first_attempt_at or now
    attempts = delivery.attempts + 1
    wait = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (attempts - 1))
    wait *= (rng or random).uniform(0.5, 1.0)
    dead = now - first >= timedelta(hours=retry_hours)
    delivery.attempts, delivery.first_attempt_at = attempts, first
    delivery.last_error, delivery.last_status = error[:1000], status
    delivery.status = DEAD if dead else PENDING
    delivery.next_attempt_at = now + timedelta(seconds=wait)
    session.add(delivery)
    session.flush()
    return delivery.status


def dead_letters(session: Session, *, limit: int = 200) -> list[tuple[WebhookDelivery, str, str]]:
    """The deliveries given up on, newest first: (delivery, endpoint URL, event type)."""
    query = (
        select(WebhookDelivery, WebhookEndpoint.url, ItemEvent.type)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .join(ItemEvent, col(ItemEvent.id) == col(WebhookDelivery.event_id))
        .where(col(WebhookDelivery.status) == DEAD)
        .order_by(col(WebhookDelivery.id).desc())
        .limit(limit)
    )
    return [(d, url, kind) for d, url, kind in session.exec(query).all()]


def resend(session: Session, delivery_id: int, *, now: datetime | None = None) -> None:
    """Send a dead delivery again (a fresh 24 h of retries)."""
    done = session.execute(
        sa.update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.status) == DEAD)
        .values(status=PENDING, attempts=0, first_attempt_at=None, next_attempt_at=now or utcnow())
    )
    if rowcount(done) == 0:
        found = session.get(WebhookDelivery, delivery_id)
        if found is None:
            raise NotFound(f"no delivery {delivery_id}")
        raise InvalidInput([f"delivery {delivery_id} is {found.status}, not dead"])


def counts(session: Session) -> dict[str, int]:
    """Deliveries per status."""
    rows = session.execute(
        sa.text("SELECT status, count(*) FROM webhook_deliveries GROUP BY status")
    ).all()
    return {status: int(number) for status, number in rows}
