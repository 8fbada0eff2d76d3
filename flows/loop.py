"""The dispatcher's loop (`reelroute dispatch`, and a part of `reelroute up`): replan, dispatch
and reconcile, each at its own pace, until asked to stop; outages are waited out.

On PostgreSQL several `reelroute dispatch` processes may run, on different hosts: one leads
(models.health.leadership) and passes, the others stand by and take over when it goes."""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa
from prefect import get_client

from reelroute.flows.backoff import Backoff, Heartbeat
from reelroute.flows.dispatch import Dispatcher
from reelroute.flows.planning import Planner, runway_limits_source
from reelroute.flows.prefect_api import PrefectApi
from reelroute.flows.reconcile import reconcile_once
from reelroute.models.assembly import Settings
from reelroute.models.core import DatabaseUnavailable
from reelroute.models.health import Leadership
from reelroute.models.store import make_engine

log = logging.getLogger(__name__)


def dispatch_loop(
    settings: Settings, stop: threading.Event, *, client: PrefectApi | None = None
) -> None:
    """Dispatch every `dispatch_interval_seconds` and reconcile every
    `reconcile_interval_seconds` until `stop` is set. An outage of the database or of Prefect
    (or anything else a pass trips on) is logged and waited out with a growing backoff: the
    backlog is safe in the database, and the loop carries on when they are back."""
    engine = make_engine(settings.store.database_url)
    try:
        if client is not None:
            _dispatch_until(engine, client, settings, stop)
            return
        with get_client(sync_client=True) as own:
            _dispatch_until(engine, own, settings, stop)
    finally:
        engine.dispose()


def _dispatch_until(
    engine: sa.Engine, client: PrefectApi, settings: Settings, stop: threading.Event
) -> None:
    leadership = Leadership(
        settings.store.database_url,
        "dispatcher",
        poll_seconds=settings.dispatch.leader_poll_seconds,
        lease_seconds=settings.dispatch.leader_lease_seconds,
    )
    leadership.start()
    # One backoff across terms: an outage that also cost the lead is reported as recovered
    # by the first pass that goes through.
    backoff = Backoff("dispatcher", settings.dispatch.interval_seconds, log=log)
    try:
        while not stop.is_set():
            if not leadership.leading:
                stop.wait(leadership.poll_seconds)
                continue
            _lead(engine, client, settings, stop, leadership, backoff)
            if not stop.is_set() and not leadership.leading:  # the lock's session failed
                why = leadership.lost_because or "its session ended"
                stop.wait(backoff.failed(DatabaseUnavailable(f"the lead was lost ({why})")))
    finally:
        leadership.stop()


def _lead(
    engine: sa.Engine,
    client: PrefectApi,
    settings: Settings,
    stop: threading.Event,
    leadership: Leadership,
    backoff: Backoff,
) -> None:
    """One term as leader: fresh dispatcher and planner (a standby's view of the queue is
    never trusted), a reconcile first, then passes until the term ends or `stop` is set."""
    dispatcher = Dispatcher(engine, client, settings)
    runway = settings.sandbox or settings.runway.api_secret is not None
    planner = Planner(engine, settings, client, runway_limits_source(settings) if runway else None)
    dispatched, reconciled = (
        Heartbeat(engine, "dispatcher", log=log),
        Heartbeat(engine, "reconciler", log=log),
    )
    next_reconcile, term = 0.0, leadership.term
    while not stop.is_set() and leadership.leading and leadership.term == term:
        started = time.monotonic()
        ok = False
        try:
            planner.run_due()
            dispatcher.dispatch_once()
            if time.monotonic() >= next_reconcile:
                began, done = time.monotonic(), False
                try:
                    reconcile_once(engine, client, settings)
                    done = True
                finally:
                    reconciled(time.monotonic() - began, ok=done)
                next_reconcile = time.monotonic() + settings.dispatch.reconcile_interval_seconds
            wait = backoff.succeeded()
            ok = True
        except Exception as error:  # an outage, or a surprise: either way the loop goes on
            wait = backoff.failed(error)
        dispatched(time.monotonic() - started, ok=ok)
        stop.wait(wait)
