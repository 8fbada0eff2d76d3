"""One set of cut-offs for every duration and moment shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reelroute.models.core.formats import ago, clock, duration, from_now, stamp

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_durations_use_seconds_minutes_hours_then_days():
    assert [duration(s) for s in (None, 42, 89, 90, 600, 5399, 5400, 12_600, 172_800)] == [
        "-",
        "42 s",
        "89 s",
        "2 min",
        "10 min",
        "90 min",
        "1.5 h",
        "3.5 h",
        "2.0 d",
    ]
    assert duration(-3) == "0 s"  # a clock a little ahead never shows a negative span


def test_moments_are_times_today_and_dates_otherwise():
    assert clock(NOW + timedelta(minutes=5), NOW) == "12:05"
    assert clock(NOW + timedelta(days=2), NOW) == "Nov 29 12:00"
    assert from_now(NOW + timedelta(minutes=25), NOW) == "in 25 min (12:25 UTC)"
    assert ago(NOW - timedelta(seconds=7300), NOW) == "2.0 h"
    assert stamp(NOW) == "2026-11-27 12:00 UTC"
