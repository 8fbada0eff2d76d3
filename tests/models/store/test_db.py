"""Engines and sessions: driver errors leave `models` as its own errors."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
import sqlalchemy as sa
from sqlmodel import select

from reelroute.models.core.errors import Conflict, DatabaseUnavailable
from reelroute.models.core.tables import Photo
from reelroute.models.store.db import make_engine, session_scope
from tests.models.helpers import add_group_with_photos


def test_a_constraint_violation_is_a_conflict_and_nothing_is_written(engine, session):
    group_id, _ = add_group_with_photos(session, 0)
    with (
        pytest.raises(Conflict, match="the database refused the write"),
        session_scope(engine) as scoped,
    ):
        for _ in range(2):  # (group_id, sha256) is unique
            scoped.add(Photo(group_id=group_id, storage_path="photos/x", sha256="x"))
            scoped.flush()
    assert session.exec(select(Photo)).all() == []


def test_an_unreachable_database_is_unavailable_without_its_password():
    engine = make_engine("postgresql+psycopg://reelroute:hunter2@127.0.0.1:1/none")
    with pytest.raises(DatabaseUnavailable) as error, session_scope(engine) as session:
        session.exec(select(Photo)).all()
    engine.dispose()
    assert "the database is unavailable" in str(error.value)
    assert "hunter2" not in str(error.value)


class SlowLink:
    """A TCP proxy to PostgreSQL that holds every answer from the server for `delay` seconds:
    a slow network, so that a query (even the pool's `SELECT 1` ping) is in flight long enough
    to be interrupted."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay = target, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server, 0), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(server, client, self.delay), daemon=True
            ).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, delay: float) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self.listener.close()


class Terminated(BaseException):
    """What Prefect's engine raises in the main thread on SIGTERM (an ExternalSignal)."""


def test_a_signal_during_the_pool_ping_stays_a_signal(pg_server):
    """The cause of "ProgrammingError: can't change 'autocommit' now: connection in transaction
    status ACTIVE" in a flow run: a termination signal arriving while the pool pings a reused
    connection. SQLAlchemy's psycopg ping sets autocommit, runs `SELECT 1`, and in a `finally`
    sets autocommit back, which psycopg refuses while the interrupted query is still ACTIVE: the
    signal became a database error, and the flow recorded it as a transient failure."""
    url = sa.make_url(pg_server.replace("postgresql://", "postgresql+psycopg://", 1))
    link = SlowLink((url.host or "127.0.0.1", url.port or 5432), delay=0.4)
    engine = make_engine(url.set(host="127.0.0.1", port=link.port).render_as_string(False))
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(Terminated()))
    try:
        with session_scope(engine) as session:  # a connection, then back in the pool
            session.execute(sa.text("SELECT 1"))
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(Terminated), session_scope(engine) as session:
            session.execute(sa.text("SELECT 1"))  # the checkout pings: the signal lands there
        with session_scope(engine) as session:  # the interrupted connection was not reused
            assert session.execute(sa.text("SELECT 2")).scalar_one() == 2
    finally:
        signal.signal(signal.SIGTERM, previous)
        engine.dispose()
        link.close()
