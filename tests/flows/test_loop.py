"""The dispatcher's loop rides out outages (against a Prefect stand-in, on PostgreSQL)."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from sqlmodel import Session

from reelroute.flows.backoff import Heartbeat
from reelroute.flows.loop import dispatch_loop
from reelroute.models.health.loops import BEAT_EVERY, read_beats
from reelroute.models.health.tables import LoopBeat
from reelroute.models.store.db import make_engine
from tests.conftest import database_outage
from tests.flows.conftest import FakePrefect
from tests.models.helpers import add_items


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_dispatch_loop_rides_out_a_database_outage(db_url, engine, session, settings, caplog):
    settings = settings.replaced(dispatch_interval_seconds=0.1, reconcile_interval_seconds=0.2)
    prefect = FakePrefect()
    stop = threading.Event()
    loop = threading.Thread(
        target=dispatch_loop, args=(settings, stop), kwargs={"client": prefect}, daemon=True
    )
    add_items(session, settings, 1)
    loop.start()
    try:
        wait_for(lambda: len(prefect.created) == 1)
        with database_outage(db_url):
            time.sleep(2)  # several passes fail meanwhile
            assert loop.is_alive()
        add_items(session, settings, 1)  # after the outage: dispatched as usual
        wait_for(lambda: len(prefect.created) == 2, timeout=30)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    logged = [r.getMessage() for r in caplog.records if r.name.endswith("flows.loop")]
    assert any("dispatcher: outage (DatabaseUnavailable" in m for m in logged), logged
    assert any("dispatcher: recovered" in m for m in logged), logged


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_loop_records_heartbeats_of_the_dispatcher_and_the_reconciler(engine, settings):
    settings = settings.replaced(dispatch_interval_seconds=0.1, reconcile_interval_seconds=0.2)
    stop = threading.Event()
    loop = threading.Thread(
        target=dispatch_loop, args=(settings, stop), kwargs={"client": FakePrefect()}, daemon=True
    )
    loop.start()
    try:

        def beats() -> dict[str, LoopBeat]:
            with Session(engine) as session:
                return {row.name: row for row in read_beats(session)}

        wait_for(lambda: set(beats()) == {"dispatcher", "reconciler"})
    finally:
        stop.set()
        loop.join(timeout=30)
    found = beats()
    assert all(row.ok and row.took_seconds >= 0 for row in found.values())
    assert found["dispatcher"].host == socket.gethostname()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_heartbeat_is_written_at_most_every_few_seconds_and_never_raises(engine, tmp_path):
    heartbeat = Heartbeat(engine, "webhooks", log=logging.getLogger("test"))
    assert heartbeat(0.1, ok=True, now=100.0)
    assert not heartbeat(0.1, ok=True, now=100.0 + BEAT_EVERY / 2)  # not due yet
    assert heartbeat(0.2, ok=False, now=100.0 + BEAT_EVERY)
    with Session(engine) as session:
        [row] = read_beats(session)
    assert (row.name, row.took_seconds, row.ok) == ("webhooks", 0.2, False)
    gone = make_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}")  # cannot be opened
    assert not Heartbeat(gone, "webhooks", log=logging.getLogger("test"))(0.1, ok=True)
