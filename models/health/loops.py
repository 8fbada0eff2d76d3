"""The background loops' heartbeats: the dispatcher, the reconciler and the webhook sender each
record their last pass (host, when, how long, whether it went through) at most every
BEAT_EVERY seconds, so that the metrics show them and an alert fires when one goes silent."""

from __future__ import annotations

import socket
from datetime import datetime

from sqlmodel import Session, col, select

from reelroute.models.core.tables import utcnow
from reelroute.models.health.tables import LoopBeat

BEAT_EVERY = 10.0
"""Seconds between two heartbeats of one loop (a pass in between is not recorded)."""
LOOPS = ("dispatcher", "reconciler", "webhooks")


def beat(
    session: Session,
    name: str,
    *,
    took_seconds: float,
    ok: bool,
    host: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record one pass of loop `name`."""
    if name not in LOOPS:
        raise ValueError(f"unknown loop {name!r}; one of {', '.join(LOOPS)}")
    host = (host or socket.gethostname())[:200]
    now = now or utcnow()
    row = session.get(LoopBeat, name, populate_existing=True)
    if row is None:
        row = LoopBeat(name=name, host=host, beat_at=now, took_seconds=took_seconds, ok=ok)
    else:
        row.host, row.beat_at, row.took_seconds, row.ok = host, now, took_seconds, ok
    session.add(row)


def read_beats(session: Session) -> list[LoopBeat]:
    """Every loop's last recorded pass."""
    return list(session.exec(select(LoopBeat).order_by(col(LoopBeat.name))).all())
