"""How a long-running loop rides out an outage: log it once, wait longer each time, carry on.

The dispatcher, the reconciler, the lease keeper and the webhook sender all run for days; a
database failover or a Prefect restart must make them wait, never stop them.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import httpx
from prefect.exceptions import PrefectHTTPStatusError

from reelroute.models.core import DatabaseUnavailable

OUTAGES: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,  # the database (models translates the driver's errors)
    httpx.HTTPError,  # Prefect's API unreachable or timing out
    PrefectHTTPStatusError,  # Prefect answering 5xx while it restarts
    OSError,
)
"""What an outage looks like to our loops: wait and try again."""


class Backoff:
    """The waits of one loop: `interval` while all is well; after each failure in a row twice
    the last wait (with jitter), up to `ceiling`. Logs the first failure of an outage, every
    tenth after it, and the recovery."""

    def __init__(
        self, name: str, interval: float, *, ceiling: float = 30.0, log: logging.Logger
    ) -> None:
        self.name = name
        self.interval = interval
        self.ceiling = max(ceiling, interval)
        self.failures = 0
        self._log = log

    def succeeded(self) -> float:
        """All went well: the wait before the next pass."""
        if self.failures:
            self._log.warning("%s: recovered after %s failed passes", self.name, self.failures)
        self.failures = 0
        return self.interval

    def failed(self, error: BaseException) -> float:
        """A pass failed with `error`: the wait before the next try (logged)."""
        self.failures += 1
        grown = self.interval * float(2**self.failures)
        wait = min(self.ceiling, grown) * random.uniform(0.8, 1.0)  # noqa: S311 (jitter)
        expected = isinstance(error, OUTAGES)
        if self.failures == 1 or self.failures % 10 == 0 or not expected:
            self._log.warning(
                "%s: %s (%s); retrying in %.1f s",
                self.name,
                "outage" if expected else "unexpected error",
                _describe(error),
                wait,
                exc_info=not expected,
            )
        return wait


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


class Heartbeat:
    """A loop's heartbeat in the database (models.health.loops), at most every BEAT_EVERY
    seconds; a beat that cannot be written is skipped (the loop's own backoff handles the
    outage)."""

    def __init__(self, engine: Any, name: str, *, log: logging.Logger) -> None:
        self.engine = engine
        self.name = name
        self._next = 0.0
        self._log = log

    def __call__(self, took_seconds: float, ok: bool, now: float | None = None) -> bool:
        """Record a pass when a beat is due; returns whether one was written."""
        from reelroute.models.health import BEAT_EVERY, beat
        from reelroute.models.store import session_scope

        now = time.monotonic() if now is None else now
        if now < self._next:
            return False
        self._next = now + BEAT_EVERY
        try:
            with session_scope(self.engine) as session:
                beat(session, self.name, took_seconds=took_seconds, ok=ok)
        except Exception as error:  # never the loop's problem
            self._log.debug("no heartbeat for %s: %s", self.name, error)
            return False
        return True
