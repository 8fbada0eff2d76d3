"""How durations and moments read, the same on every page, in every reason and in the CLI.

One set of cut-offs: under 90 seconds in seconds, under 90 minutes in minutes, under 48 hours
in hours, else in days. Moments are UTC: `14:05` today, `Nov 29 14:05` on another day.
"""

from __future__ import annotations

from datetime import datetime


def duration(seconds: float | None) -> str:
    """`42 s`, `25 min`, `3.5 h`, `2.5 d`; `-` when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def ago(moment: datetime, now: datetime) -> str:
    """How long ago `moment` was: `42 s`, `5 min`, `3.0 h`."""
    return duration((now - moment).total_seconds())


def clock(moment: datetime, now: datetime) -> str:
    """`14:05` when `moment` is on the day of `now`, else `Nov 29 14:05` (UTC)."""
    text = moment.strftime("%H:%M")
    return text if moment.date() == now.date() else f"{moment.strftime('%b')} {moment.day} {text}"


def from_now(moment: datetime, now: datetime) -> str:
    """`in 25 min (14:05 UTC)`, `in 3.5 h (Nov 29 02:10 UTC)`."""
    return f"in {duration((moment - now).total_seconds())} ({clock(moment, now)} UTC)"


def stamp(moment: datetime) -> str:
    """`2026-12-04 14:05 UTC`: a moment on its own (lists, logs, the CLI)."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")
