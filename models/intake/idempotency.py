"""Idempotency keys: a request sent again with the same `Idempotency-Key` gets the first answer
again and creates nothing; the same key with a different request is refused (422, as the IETF
draft says), and a repeat while the first is still being answered is 409.

The key's row is inserted in the request's own transaction before anything is created, so two
concurrent requests with one key serialise on it: the second waits for the first to commit (the
primary key's lock on PostgreSQL, the single writer on SQLite), then finds its answer. A request
that fails stores nothing (its transaction rolls back with the key), so it may be sent again.
Keys are kept REELROUTE_IDEMPOTENCY_HOURS (24) and purged after.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from reelroute.models.core.errors import Conflict, InvalidInput
from reelroute.models.core.tables import utcnow
from reelroute.models.intake.tables import IdempotencyKey
from reelroute.models.store.queries.intake import CLAIM_KEY, DROP_EXPIRED_KEY
from reelroute.models.store.sql import rowcount, sql

MAX_KEY_CHARS = 255


def request_hash(*parts: bytes | str) -> str:
    """A fingerprint of a request's content."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def json_hash(value: Any) -> str:
    """The fingerprint of a JSON body (key order does not matter)."""
    return request_hash(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))


class KeyReused(InvalidInput):
    """The key was used for another request (422: the request cannot be processed as sent)."""


@dataclass(frozen=True)
class Replay:
    """The first answer to this key."""

    status_code: int
    body: Any


def check_key(key: str) -> str:
    """The key, or InvalidInput saying what is wrong with it."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise InvalidInput(
            [f"Idempotency-Key: use 1 to {MAX_KEY_CHARS} printable characters (e.g. a UUID)"]
        )
    return key


def begin(
    session: Session,
    *,
    key: str,
    scope: str,
    fingerprint: str,
    hours: float,
    now: datetime | None = None,
) -> Replay | None:
    """Take `key` for this request in the caller's transaction: None when it is new (go on and
    `finish` it), the first answer when it was used for this same request, Conflict when it
    was used for another."""
    key = check_key(key)
    now = now or utcnow()
    params = {
        "key": key,
        "scope": scope,
        "request_hash": fingerprint,
        "now": now,
        "expires_at": now + timedelta(hours=hours),
    }
    if rowcount(session.execute(sql(CLAIM_KEY), params)):
        return None
    found = session.get(IdempotencyKey, key, populate_existing=True)
    if found is None or found.expires_at <= now:  # purged or expired meanwhile: take it anew
        if found is not None:
            # A statement, not the ORM's delete: a concurrent repeat that took it back first
            # leaves nothing to delete here (PostgreSQL makes this wait for that one's end).
            session.execute(sql(DROP_EXPIRED_KEY), {"key": key, "now": now})
            session.expunge(found)
        if rowcount(session.execute(sql(CLAIM_KEY), params)):
            return None
        # Another request took it back first (two repeats of an expired key at once): that
        # one's answer is the answer.
        found = session.get(IdempotencyKey, key, populate_existing=True)
        if found is None:
            raise Conflict(f"Idempotency-Key {key!r}: another request is using it; try again")
    if found.scope != scope or found.request_hash != fingerprint:
        raise KeyReused(
            [
                f"Idempotency-Key {key!r} was used for a different request (at "
                f"{found.created_at:%Y-%m-%d %H:%M:%S} UTC); use a new key for a new request"
            ]
        )
    if found.response is None or found.status_code is None:
        raise Conflict(f"Idempotency-Key {key!r}: the first request is still being answered")
    return Replay(found.status_code, json.loads(found.response))


def finish(session: Session, *, key: str, status_code: int, body: Any) -> None:
    """Store the answer to `key` (in the same transaction as what the request created)."""
    row = session.get(IdempotencyKey, check_key(key))
    if row is None:
        raise RuntimeError(f"finish: key {key!r} was not begun in this transaction")
    row.status_code, row.response = status_code, json.dumps(body, default=str)
    session.add(row)
    session.flush()


def purge(session: Session, *, now: datetime | None = None) -> int:
    """Delete the expired keys; returns how many."""
    now = now or utcnow()
    done = session.execute(sa.delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) <= now))
    return rowcount(done)
