"""What callers hear about: the item-event outbox (written in the transaction of each change) and
the webhook endpoints and deliveries fed from it. The sender itself is `flows.webhooks`."""

from __future__ import annotations

from reelroute.models.outbox import endpoints, tables, webhooks
from reelroute.models.outbox.addresses import (
    Refused,
    Resolver,
    Target,
    parse_url,
    resolve,
    system_resolver,
)
from reelroute.models.outbox.endpoints import endpoint_for
from reelroute.models.outbox.events import (
    PROGRESS_EVERY,
    enabled,
    record,
    record_started,
    record_subject,
    with_started_event,
)
from reelroute.models.outbox.payloads import EventPayload, event_payload
from reelroute.models.outbox.tables import ItemEvent, WebhookDelivery, WebhookEndpoint
from reelroute.models.outbox.webhooks import DeadLetter

__all__ = [
    "PROGRESS_EVERY",
    "DeadLetter",
    "EventPayload",
    "ItemEvent",
    "Refused",
    "Resolver",
    "Target",
    "WebhookDelivery",
    "WebhookEndpoint",
    "enabled",
    "endpoint_for",
    "endpoints",
    "event_payload",
    "parse_url",
    "record",
    "record_started",
    "record_subject",
    "resolve",
    "system_resolver",
    "tables",
    "webhooks",
    "with_started_event",
]
