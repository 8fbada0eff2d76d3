"""Webhook deliveries (the database side; `flows.webhooks` sends them; the endpoints are
models.outbox.endpoints).

- **Fan-out**: the sender turns each outbox event into one delivery per enabled endpoint that
  wants it: the default endpoint (REELROUTE_WEBHOOK_URL), the item's group's, the item's own.
- **Deliveries** are sent at least once, in order per item and endpoint (a delivery waits while
  an earlier one of its item to that endpoint is pending), retried with exponential backoff and
  jitter for REELROUTE_WEBHOOK_RETRY_HOURS, then dead (the admin lists them and can resend).
  A disabled endpoint's pending deliveries wait until it is enabled again.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.core.enums import DeliveryOutcome, DeliveryStatus, EventType
from reelroute.models.core.errors import InvalidInput, NotFound
from reelroute.models.core.settings import SharedConfig
from reelroute.models.core.tables import utcnow
from reelroute.models.outbox.endpoints import signing_secrets, wants
from reelroute.models.outbox.payloads import event_payload
from reelroute.models.outbox.tables import ItemEvent, WebhookDelivery, WebhookEndpoint
from reelroute.models.store.queries.outbox import (
    DUE_POSTGRESQL,
    DUE_SQLITE,
    NEW_EVENTS,
)
from reelroute.models.store.sql import rowcount, sql
from reelroute.models.store.tallies import count_deliveries, delivery_counts

BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 3600.0


# --- fan-out: events -> deliveries ---------------------------------------------------------


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
        sa.column("sample", sa.Boolean()),
    )
    rows = session.execute(statement, {"limit": limit}).all()
    if not rows:
        return 0
    endpoints = {
        e.id: e for e in session.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.enabled)))
    }
    defaults = [e for e in endpoints.values() if e.is_default]
    deliveries = []
    for event_id, item_id, kind, group_endpoint, item_endpoint, sample in rows:
        if sample:  # an A/B sample's second video: the caller never asked for it
            continue
        targets = {e.id: e for e in defaults}
        for chosen in (group_endpoint, item_endpoint):
            if chosen is not None and chosen in endpoints:
                targets[chosen] = endpoints[chosen]
        for endpoint in targets.values():
            if wants(endpoint, EventType(kind)):
                deliveries.append(
                    {
                        "event_id": event_id,
                        "endpoint_id": endpoint.id,
                        "item_id": item_id,
                        "status": DeliveryStatus.pending,
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


@dataclass(frozen=True)
class Outgoing:
    """One delivery to make now: where, what, and the secrets to sign it with (never shown in
    its repr). `secrets` is empty when the endpoint's secret cannot be read (`problem` says
    why)."""

    delivery_id: int
    endpoint_id: uuid.UUID
    url: str
    message_id: str
    payload: dict[str, Any]
    secrets: tuple[str, ...] = field(default=(), repr=False)
    problem: str | None = None


def due(
    session: Session,
    settings: SharedConfig,
    *,
    limit: int,
    now: datetime,
    per_endpoint: int,
    skip: Collection[int] = (),
) -> list[Outgoing]:
    """The deliveries to send now, at most `per_endpoint` of each endpoint besides those in
    `skip` (being sent), oldest first, with their payloads."""
    text = DUE_POSTGRESQL if session.get_bind().dialect.name == "postgresql" else DUE_SQLITE
    parameters = {"now": now, "limit": limit + len(skip), "per_endpoint": per_endpoint + len(skip)}
    rows = session.execute(sql(text), parameters).all()
    ids = [row[0] for row in rows if row[0] not in skip][:limit]
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
        try:
            secrets, problem = tuple(signing_secrets(endpoint, settings, now)), None
        except InvalidInput as error:
            secrets, problem = (), error.problems[0]
        found.append(
            Outgoing(
                delivery_id=delivery.id,
                endpoint_id=endpoint.id,
                url=endpoint.url,
                message_id=f"evt_{event.id}",
                payload=event_payload(event, settings.api.public_url).to_json(),
                secrets=secrets,
                problem=problem,
            )
        )
    return found


def delivered(session: Session, delivery_ids: list[int], *, now: datetime) -> None:
    """The receivers answered 2xx to these deliveries (one statement for all)."""
    if not delivery_ids:
        return
    result = session.execute(
        sa.update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id).in_(delivery_ids),
            col(WebhookDelivery.status) == DeliveryStatus.pending,
        )
        .values(
            status=DeliveryStatus.delivered,
            attempts=WebhookDelivery.attempts + 1,
            first_attempt_at=sa.func.coalesce(WebhookDelivery.first_attempt_at, now),
            last_error=None,
            delivered_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    count_deliveries(session, DeliveryOutcome.delivered, rowcount(result))


def attempt_failed(
    session: Session,
    delivery_id: int,
    *,
    error: str,
    status: int | None,
    now: datetime,
    retry_hours: float,
    rng: random.Random | None = None,
) -> DeliveryStatus:
    """The attempt failed: try again after a growing, jittered wait, or give up (dead) once
    `retry_hours` have passed since the first attempt. Returns the new status."""
    delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if delivery is None:
        return DeliveryStatus.dead
    first = delivery.first_attempt_at or now
    attempts = delivery.attempts + 1
    wait = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (attempts - 1))
    wait *= (rng or random).uniform(0.5, 1.0)
    dead = now - first >= timedelta(hours=retry_hours)
    delivery.attempts, delivery.first_attempt_at = attempts, first
    delivery.last_error, delivery.last_status = error[:1000], status
    delivery.status = DeliveryStatus.dead if dead else DeliveryStatus.pending
    delivery.next_attempt_at = now + timedelta(seconds=wait)
    session.add(delivery)
    session.flush()
    count_deliveries(session, DeliveryOutcome.dead if dead else DeliveryOutcome.failed)
    return delivery.status


@dataclass(frozen=True)
class DeadLetter:
    """A delivery given up on, with where it was going and what it carried."""

    delivery: WebhookDelivery
    endpoint_url: str
    event_type: EventType


def dead_letters(session: Session, *, limit: int = 200) -> list[DeadLetter]:
    """The deliveries given up on, newest first."""
    query = (
        select(WebhookDelivery, WebhookEndpoint.url, ItemEvent.type)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .join(ItemEvent, col(ItemEvent.id) == col(WebhookDelivery.event_id))
        .where(col(WebhookDelivery.status) == DeliveryStatus.dead)
        .order_by(col(WebhookDelivery.id).desc())
        .limit(limit)
    )
    return [DeadLetter(d, url, EventType(kind)) for d, url, kind in session.exec(query).all()]


def resend(session: Session, delivery_id: int, *, now: datetime | None = None) -> None:
    """Send a dead delivery again (a fresh 24 h of retries)."""
    done = session.execute(
        sa.update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == delivery_id,
            col(WebhookDelivery.status) == DeliveryStatus.dead,
        )
        .values(
            status=DeliveryStatus.pending,
            attempts=0,
            first_attempt_at=None,
            next_attempt_at=now or utcnow(),
        )
    )
    if rowcount(done) == 0:
        found = session.get(WebhookDelivery, delivery_id)
        if found is None:
            raise NotFound(f"no delivery {delivery_id}")
        raise InvalidInput([f"delivery {delivery_id} is {found.status}, not dead"])


def counts(session: Session) -> dict[str, int]:
    """Deliveries per status (the ledger the table's triggers keep: no count of its rows)."""
    return {status: number for status, number in delivery_counts(session).items() if number}
