"""The background loops' heartbeats: one row per loop, the latest pass, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reelroute.models.core.tables import utcnow
from reelroute.models.health.loops import beat, read_beats


def test_a_loop_keeps_its_latest_pass(session):
    now = utcnow()
    beat(session, "dispatcher", took_seconds=0.5, ok=True, host="a", now=now)
    beat(session, "reconciler", took_seconds=2.0, ok=False, host="a", now=now)
    session.commit()
    later = now + timedelta(seconds=30)
    beat(session, "dispatcher", took_seconds=0.25, ok=False, host="b", now=later)
    session.commit()
    rows = {row.name: row for row in read_beats(session)}
    assert set(rows) == {"dispatcher", "reconciler"}
    dispatcher = rows["dispatcher"]
    assert (dispatcher.host, dispatcher.beat_at, dispatcher.took_seconds, dispatcher.ok) == (
        "b",
        later,
        0.25,
        False,
    )
    assert rows["reconciler"].ok is False


def test_an_unknown_loop_is_refused(session):
    with pytest.raises(ValueError, match="unknown loop 'dispatch'"):
        beat(session, "dispatch", took_seconds=0.1, ok=True)
