"""The SSE stream of item events (`GET /api/admin/events`), read from the outbox.

Event ids come from a sequence and are taken when an event is written, not when it is
committed: on PostgreSQL a later id can be visible before an earlier one. The stream therefore
stops at a gap in the ids for up to GAP_GRACE_SECONDS (the earlier event is usually a moment
from commit); a gap older than that is an id no event will ever have (its transaction rolled
back), and is passed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import sqlalchemy as sa
from anyio.to_thread import run_sync
from sqlmodel import Session, col, select

from reelroute.models.tables import ItemEvent, utcnow
from reelroute.models.webhooks import event_payload

POLL_SECONDS = 0.5
KEEP_ALIVE_SECONDS = 15.0
GAP_GRACE_SECONDS = 5.0
PAGE = 500


def last_event_id(engine: sa.Engine) -> int:
    """The newest event's id (0 without events)."""
    with Session(engine) as session:
        found = session.execute(sa.select(sa.func.max(ItemEvent.id))).scalar_one()
    return int(found or 0)


def read_after(
    engine: sa.Engine, after: int, group_id: uuid.UUID | None
) -> tuple[list[ItemEvent], int]:
    """Events after id `after` that may be sent now, and the new cursor."""
    query = select(ItemEvent).where(col(ItemEvent.id) > after).order_by(col(ItemEvent.id))
    with Session(engine) as session:
        rows = list(session.exec(query.limit(PAGE)).all())
    ready: list[ItemEvent] = []
    cursor = after
    grace = utcnow() - timedelta(seconds=GAP_GRACE_SECONDS)
    for event in rows:
        assert event.id is not None
        if event.id != cursor + 1 and event.created_at > grace:
            break  # an earlier id may still commit: wait for it a moment
        cursor = event.id
        if group_id is None or event.group_id == group_id:
            ready.append(event)
    return ready, cursor


def format_event(event: ItemEvent, public_url: str | None) -> str:
    """One SSE message."""
    data = json.dumps(event_payload(event, public_url), separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"


async def event_stream(
    engine: sa.Engine,
    public_url: str | None,
    *,
    group_id: uuid.UUID | None,
    after: int | None,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """The stream: events as they come, a comment every KEEP_ALIVE_SECONDS of silence; it ends
    when the client goes away (checked between reads, which run in a worker thread)."""
    cursor = (await run_sync(last_event_id, engine)) if after is None else after
    yield "retry: 2000\n\n"
    quiet_since = time.monotonic()
    while not await disconnected():
        ready, cursor = await run_sync(read_after, engine, cursor, group_id)
        for event in ready:
            yield format_event(event, public_url)
        if ready:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEP_ALIVE_SECONDS:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)
