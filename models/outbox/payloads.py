"""What a receiver gets: the published shape of an event, the same on a webhook and on the SSE
stream (`data`), in the OpenAPI document under `webhooks`."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from reelroute.models.core.enums import EventType
from reelroute.models.outbox.tables import ItemEvent


class EventData(BaseModel):
    """The item as it was when the event happened (provider.* events: the breaker)."""

    item_id: uuid.UUID
    group_id: uuid.UUID | None
    status: str = Field(
        description="pending, processing, review (held for a person), completed, failed or "
        "cancelled."
    )
    provider: str = Field(description="The item's provider at the time (e.g. wan_local).")
    attempt: int = Field(description="The attempt (1 for the first claim; 0 before any).")
    progress: float | None = Field(default=None, description="0..1 (item.progress only).")
    reason: str | None = Field(
        default=None,
        description="Why: the routing reason (item.created, item.rerouted), the failure "
        "(item.failed), why the video is held (item.review_requested) or made again "
        "(item.rejected: `provider` is then the one that makes it again).",
    )
    video_url: str | None = Field(
        default=None, description="Where to fetch it (item.completed, item.review_requested)."
    )
    cost_credits: int | None = Field(default=None, description="What it cost (item.completed).")
    cost_dollars: float | None = Field(default=None, description="cost_credits / 100.")
    breaker: str | None = Field(
        default=None,
        description="provider.opened and provider.closed: the breaker (`model:runway_gen4_turbo`, "
        "`host:gpu-a`, `pool:gpu`); `item_id` is then that breaker's fixed id and `status` its "
        "state.",
    )


class EventPayload(BaseModel):
    """One event: its number (ids grow with time), its type, when, and the item."""

    id: int
    type: EventType
    timestamp: datetime
    data: EventData

    def to_json(self) -> dict[str, object]:
        """As sent: fields that do not apply to this type of event are left out."""
        return self.model_dump(mode="json", exclude_unset=True)


def event_payload(event: ItemEvent, public_url: str | None) -> EventPayload:
    """The payload of an outbox event."""
    assert event.id is not None
    data = EventData(
        item_id=event.item_id,
        group_id=event.group_id,
        status=event.status,
        provider=event.provider,
        attempt=event.attempt,
    )
    if event.progress is not None:
        data.progress = event.progress
    if event.detail is not None:
        data.reason = event.detail
    if event.subject is not None:
        data.breaker = event.subject
    if event.type in (EventType.completed, EventType.review_requested):
        path = f"/api/admin/items/{event.item_id}/video"
        data.video_url = f"{public_url.rstrip('/')}{path}" if public_url else path
    if event.type is EventType.completed:
        data.cost_credits = event.cost_credits or 0
        data.cost_dollars = (event.cost_credits or 0) / 100
    return EventPayload(id=event.id, type=event.type, timestamp=event.created_at, data=data)
