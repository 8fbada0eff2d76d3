"""The holder's side of a lease: renew it in the background, report progress, notice its loss."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa

from reelroute.models.core import DatabaseUnavailable, StaleAttempt
from reelroute.models.items import renew_lease
from reelroute.models.store import session_scope

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews an item's lease every third of its length and stores the latest progress.

    `report(fraction)` is the provider's progress callback: it raises StaleAttempt once the lease
    was lost (another attempt took the item, or it was cancelled), which stops the provider.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        item_id: uuid.UUID,
        attempt: int,
        worker_id: str,
        lease_seconds: int,
        on_progress: Callable[[float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.item_id = item_id
        self.attempt = attempt
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.progress = 0.0
        self.lost = threading.Event()
        self._on_progress = on_progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            self.renew()

    def renew(self) -> None:
        """Extend the lease now; marks the lease lost when the attempt no longer holds it."""
        try:
            with session_scope(self.engine) as session:
                renew_lease(
                    session,
                    item_id=self.item_id,
                    attempt=self.attempt,
                    worker_id=self.worker_id,
                    lease_seconds=self.lease_seconds,
                    progress=self.progress,
                )
        except StaleAttempt:
            log.warning("attempt %s lost item %s", self.attempt, self.item_id)
            self.lost.set()
        except DatabaseUnavailable as error:  # database briefly away: the lease has slack
            log.warning("could not renew the lease of %s: %s", self.item_id, error)

    def report(self, fraction: float) -> None:
        """Progress from the provider (0..1)."""
        if self.lost.is_set():
            raise StaleAttempt(f"attempt {self.attempt} lost item {self.item_id}")
        self.progress = fraction
        if self._on_progress is not None:
            self._on_progress(fraction)


class Throttle:
    """Calls `action` at most once every `seconds`, only when the value changed (a task waiting
    THROTTLED at Runway reports 0.0 at every poll), and always for the final value 1.0.

    `initial` is the value already shown (the progress artifact starts at 0.0).
    """

    def __init__(
        self, action: Callable[[float], None], seconds: float, initial: float | None = None
    ) -> None:
        self.action = action
        self.seconds = seconds
        self._last = 0.0
        self._shown = initial

    def __call__(self, value: float) -> None:
        if value == self._shown:
            return
        now = time.monotonic()
        if value >= 1.0 or now - self._last >= self.seconds:
            self._last = now
            self._shown = value
            self.action(value)
