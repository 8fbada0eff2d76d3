"""What callers hear about: the item-event outbox (written in the transaction of each change) and
the webhook endpoints and deliveries fed from it. The sender itself is `flows.webhooks`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelroute.models.core.lazy import load

if TYPE_CHECKING:
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

_WHERE = {
    "DeadLetter": "reelroute.models.outbox.webhooks",
    "EventPayload": "reelroute.models.outbox.payloads",
    "ItemEvent": "reelroute.models.outbox.tables",
    "PROGRESS_EVERY": "reelroute.models.outbox.events",
    "Refused": "reelroute.models.outbox.addresses",
    "Resolver": "reelroute.models.outbox.addresses",
    "Target": "reelroute.models.outbox.addresses",
    "WebhookDelivery": "reelroute.models.outbox.tables",
    "WebhookEndpoint": "reelroute.models.outbox.tables",
    "enabled": "reelroute.models.outbox.events",
    "endpoint_for": "reelroute.models.outbox.endpoints",
    "endpoints": "reelroute.models.outbox.endpoints",
    "event_payload": "reelroute.models.outbox.payloads",
    "parse_url": "reelroute.models.outbox.addresses",
    "record": "reelroute.models.outbox.events",
    "record_started": "reelroute.models.outbox.events",
    "record_subject": "reelroute.models.outbox.events",
    "resolve": "reelroute.models.outbox.addresses",
    "system_resolver": "reelroute.models.outbox.addresses",
    "tables": "reelroute.models.outbox.tables",
    "webhooks": "reelroute.models.outbox.webhooks",
    "with_started_event": "reelroute.models.outbox.events",
}
"""Each public name's module, imported when the name is first used."""


def __getattr__(name: str) -> object:
    """A public name, loaded on first use (models.core.lazy)."""
    return load(__name__, _WHERE, name)
