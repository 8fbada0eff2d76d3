"""The SSE stream of item events (`GET /api/admin/events`), read from the outbox.

One poller serves every stream of a web process (`Broadcaster`): it reads the new events every
POLL_SECONDS, once, and hands each to the streams that want it, so the database sees the same
queries whether one client listens or a hundred. A client that resumes (`Last-Event-ID`) first
reads what it missed from the database, once, then follows the poller. Open streams are
limited (REELROUTE_SSE_MAX_STREAMS): one more is answered 503 with Retry-After. A client too
slow to take its events is dropped; it reconnects with Last-Event-ID and misses nothing.

Event ids come from a sequence and are taken when an event is written, not when it is
committed: on PostgreSQL a later id can be visible before an earlier one. The poller therefore
stops at a gap in the ids for up to GAP_GRACE_SECONDS (the earlier event is usually a moment
from commit); a gap older than that is an id no event will ever have (its transaction rolled
back), and is passed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import sqlalchemy as sa
from anyio.to_thread import run_sync
from sqlmodel import Session, col, select

from reelroute.models.core import utcnow
from reelroute.models.outbox import ItemEvent, event_payload

POLL_SECONDS = 0.5
KEEP_ALIVE_SECONDS = 15.0
GAP_GRACE_SECONDS = 5.0
PAGE = 500
BACKLOG = 1000
"""Events waiting for one slow stream before it is dropped (it resumes by Last-Event-ID)."""


class TooManyStreams(Exception):
    """REELROUTE_SSE_MAX_STREAMS are open already."""


def last_event_id(engine: sa.Engine) -> int:
    """The newest event's id (0 without events)."""
    with Session(engine) as session:
        found = session.execute(sa.select(sa.func.max(ItemEvent.id))).scalar_one()
    return int(found or 0)


def read_after(
    engine: sa.Engine, after: int, *, until: int | None = None
) -> tuple[list[ItemEvent], int]:
    """Events after id `after` that may be sent now (up to `until`, when given, with no waiting
    at gaps: every id up to it is settled), and the new cursor."""
    query = select(ItemEvent).where(col(ItemEvent.id) > after)
    if until is not None:
        query = query.where(col(ItemEvent.id) <= until)
    with Session(engine) as session:
        rows = list(session.exec(query.order_by(col(ItemEvent.id)).limit(PAGE)).all())
    if until is not None:
        return rows, (rows[-1].id or after) if len(rows) == PAGE else until
    ready: list[ItemEvent] = []
    cursor = after
    grace = utcnow() - timedelta(seconds=GAP_GRACE_SECONDS)
    for event in rows:
        assert event.id is not None
        if event.id != cursor + 1 and event.created_at > grace:
            break  # an earlier id may still commit: wait for it a moment
        cursor = event.id
        ready.append(event)
    return ready, cursor


def format_event(event: ItemEvent, public_url: str | None) -> str:
    """One SSE message."""
    data = json.dumps(event_payload(event, public_url).to_json(), separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"


@dataclass(eq=False)
class Subscriber:
    """One open stream: what it wants, where it joined the poller, what waits for it."""

    group_id: uuid.UUID | None
    joined_at: int
    """The poller's cursor when it joined: later events come through `queue`."""
    queue: asyncio.Queue[ItemEvent | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=BACKLOG)
    )

    def offer(self, event: ItemEvent) -> bool:
        """Queue the event if this stream wants it; False when the stream fell too far behind."""
        if self.group_id is not None and event.group_id != self.group_id:
            return True
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True


@dataclass
class Broadcaster:
    """The one poller of a web process, and its streams (created on the first stream, in the
    server's event loop)."""

    engine: sa.Engine
    max_streams: int
    subscribers: set[Subscriber] = field(default_factory=set)
    cursor: int | None = None
    polls: int = 0
    """Database reads of the poller so far (the benchmark compares them with the streams)."""
    _task: asyncio.Task[None] | None = None

    async def subscribe(self, group_id: uuid.UUID | None) -> Subscriber:
        """A new stream, live from now; TooManyStreams when the limit is reached."""
        if len(self.subscribers) >= self.max_streams:
            raise TooManyStreams
        if self.cursor is None:
            self.cursor = await run_sync(last_event_id, self.engine)
        subscriber = Subscriber(group_id, self.cursor)
        self.subscribers.add(subscriber)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """The stream closed."""
        self.subscribers.discard(subscriber)

    async def _poll(self) -> None:
        while self.subscribers:
            assert self.cursor is not None
            ready, self.cursor = await run_sync(read_after, self.engine, self.cursor)
            self.polls += 1
            for event in ready:
                for subscriber in list(self.subscribers):
                    if not subscriber.offer(event):  # too slow: dropped, it resumes
                        self.subscribers.discard(subscriber)
                        subscriber.queue.put_nowait(None)
            if len(ready) < PAGE:
                await asyncio.sleep(POLL_SECONDS)


async def event_stream(
    broadcaster: Broadcaster,
    subscriber: Subscriber,
    public_url: str | None,
    *,
    after: int | None,
) -> AsyncIterator[str]:
    """The stream of one subscriber: what it missed since `after` (read once), then the
    poller's events as they come, a comment every KEEP_ALIVE_SECONDS of silence. Ends when the
    client goes away (the server cancels it) or falls too far behind."""
    engine = broadcaster.engine
    try:
        yield "retry: 2000\n\n"
        cursor = after if after is not None else subscriber.joined_at
        until = subscriber.joined_at
        while cursor < until:  # catching up, from the database
            missed, cursor = await run_sync(partial(read_after, until=until), engine, cursor)
            for event in missed:
                if subscriber.group_id is None or event.group_id == subscriber.group_id:
                    yield format_event(event, public_url)
        while True:
            try:
                live = await asyncio.wait_for(subscriber.queue.get(), KEEP_ALIVE_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if live is None:
                return  # dropped: the client reconnects with Last-Event-ID
            yield format_event(live, public_url)
    finally:
        broadcaster.unsubscribe(subscriber)
