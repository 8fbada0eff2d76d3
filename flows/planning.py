"""The dispatcher's slower duties, each at its own pace:

- every REELROUTE_ETA_REFRESH_SECONDS: replay the queues (models.planning.snapshot) into ETAs,
  move waiting items whose prediction changed (models.planning.replanning), and count the GPUs
  the waiting Wan work wants (models.planning.demand: `reelroute_gpu_hosts_wanted`);
- every REELROUTE_RUNWAY_LIMITS_REFRESH_SECONDS (and at start): read Runway's limits and balance
  (`organization.retrieve()`), keep them for routing and dispatch, and set the `cloud` pool's
  concurrency to the sum of the per-model limits. When Runway cannot be asked, the last answer
  stays and the failure is logged: it never stops work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.states import Cancelled

from reelroute.flows.prefect_api import PrefectApi
from reelroute.models.assembly import Settings
from reelroute.models.core import Pool, utcnow
from reelroute.models.items import runway_slots
from reelroute.models.money import RunwayLimits, store_limits
from reelroute.models.planning import (
    Move,
    StoredEtas,
    build_snapshot,
    demand_of,
    reroute_waiting,
    store_demand,
    store_etas,
)
from reelroute.models.store import session_scope
from reelroute.providers.base import ProviderError

log = logging.getLogger(__name__)

LimitsSource = Callable[[], RunwayLimits]


def runway_limits_source(settings: Settings) -> LimitsSource:
    """Runway's own answer, through the SDK (the emulator's in sandbox mode)."""

    def fetch() -> RunwayLimits:
        from reelroute.providers.registry import runway_settings
        from reelroute.providers.runway import RunwayProvider

        return RunwayProvider(runway_settings(settings)).limits()

    return fetch


@dataclass
class Planner:
    """ETAs, moves and Runway's limits, for one dispatcher."""

    engine: sa.Engine
    settings: Settings
    client: PrefectApi | None = None
    limits_source: LimitsSource | None = None
    _next_etas: float = 0.0
    _next_limits: float = 0.0
    _cloud_slots: int | None = None
    _etas: StoredEtas | None = None
    """What item_etas holds after this planner's last committed pass (None: write every row)."""
    moves: list[Move] = field(default_factory=list)

    def run_due(self, now: float | None = None) -> None:
        """Do what is due (monotonic `now`)."""
        now = time.monotonic() if now is None else now
        if now >= self._next_limits:
            self.refresh_limits()
            self._next_limits = now + self.settings.runway.limits_refresh_seconds
        if now >= self._next_etas:
            started = time.monotonic()
            self.replan()
            took = time.monotonic() - started
            # A long queue makes a pass slow (its first pass writes every ETA): the dispatcher
            # then replans less often, spending at most a tenth of its time on it.
            self._next_etas = now + max(self.settings.routing.eta_refresh_seconds, 10 * took)

    def replan(self) -> list[Move]:
        """Replay every queue, move what should move, store the ETAs; returns the moves."""
        stored, self._etas = self._etas, None  # a pass that fails leaves it unknown
        with session_scope(self.engine) as session:
            snapshot = build_snapshot(session, self.settings, now=utcnow())
            moves = reroute_waiting(session, snapshot)
            etas = store_etas(session, snapshot, stored)
            store_demand(session, demand_of(session, snapshot), snapshot.now)
        self._etas = etas
        for move in moves:
            log.info(
                "item %s moved %s -> %s: %s",
                move.item_id,
                move.from_provider.value,
                move.to_provider.value,
                move.reason,
            )
            if move.abandoned_run is not None and self.client is not None:
                self._cancel(move)
        self.moves += moves
        return moves

    def _cancel(self, move: Move) -> None:
        """Cancel the run left behind by a moved item (it can no longer claim the item: its
        claim is fenced on the provider); a failure only leaves it to skip when it starts."""
        assert self.client is not None and move.abandoned_run is not None
        message = f"reelroute: the item moved to {move.to_provider.value} before this run started"
        try:
            self.client.set_flow_run_state(
                move.abandoned_run, Cancelled(message=message), force=True
            )
        except Exception as error:  # the fence keeps the item safe either way
            log.warning("could not cancel flow run %s: %s", move.abandoned_run, error)

    def refresh_limits(self) -> RunwayLimits | None:
        """Ask Runway; keep its answer; follow its concurrency with the cloud pool's slots."""
        if self.limits_source is None:
            return None
        try:
            limits = self.limits_source()
        except ProviderError as error:
            log.warning("could not read Runway's limits (keeping the last answer): %s", error)
            return None
        with session_scope(self.engine) as session:
            store_limits(session, limits)
        slots = runway_slots(self.settings, limits)
        if self.client is not None and slots != self._cloud_slots:
            self.client.update_work_pool(Pool.cloud.value, WorkPoolUpdate(concurrency_limit=slots))
            log.info("cloud pool: %s slots, after Runway's per-model concurrency", slots)
            self._cloud_slots = slots
        return limits
