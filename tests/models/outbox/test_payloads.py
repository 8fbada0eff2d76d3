"""The published shape of an event: fields that do not apply to its type are left out."""

from __future__ import annotations

import uuid

from reelroute.models.core.enums import EventType
from reelroute.models.core.tables import utcnow
from reelroute.models.outbox.payloads import EventPayload, event_payload
from reelroute.models.outbox.tables import ItemEvent


def event(
    kind: EventType, *, detail: str | None = None, cost_credits: int | None = None
) -> ItemEvent:
    return ItemEvent(
        id=7,
        item_id=uuid.uuid4(),
        group_id=None,
        type=kind,
        status="completed" if kind is EventType.completed else "pending",
        provider="runway_gen4_turbo",
        attempt=1,
        detail=detail,
        cost_credits=cost_credits,
        created_at=utcnow(),
    )


def test_a_completed_event_carries_its_video_and_cost():
    found = event(EventType.completed, cost_credits=25)
    sent = event_payload(found, "https://reel.example/").to_json()
    assert sent["type"] == "item.completed"
    data = sent["data"]
    assert isinstance(data, dict)
    assert data["video_url"] == f"https://reel.example/api/admin/items/{found.item_id}/video"
    assert (data["cost_credits"], data["cost_dollars"]) == (25, 0.25)
    assert "progress" not in data and "reason" not in data
    assert EventPayload.model_validate(sent) == event_payload(found, "https://reel.example/")


def test_other_events_say_only_what_applies():
    sent = event_payload(event(EventType.created, detail="the reason"), None).to_json()
    data = sent["data"]
    assert isinstance(data, dict)
    assert data["reason"] == "the reason" and data["group_id"] is None
    assert not {"video_url", "cost_credits", "progress"} & set(data)
