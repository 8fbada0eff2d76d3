"""Engines and sessions for SQLite (embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import logging
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session

from reelroute.models.core.errors import Conflict, DatabaseUnavailable

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, sqlite_foreign_keys: bool = True, **kwargs: Any) -> sa.Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys (unless turned off for migrations,
    which rebuild tables) and a busy timeout."""
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        event.listen(
            engine,
            "connect",
            lambda connection, _record: _sqlite_on_connect(connection, sqlite_foreign_keys),
        )
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, **kwargs)
    engine.dialect.do_ping = types.MethodType(_ping_keeping_interrupts, engine.dialect)  # type: ignore[method-assign]
    return engine


def _ping_keeping_interrupts(_dialect: Any, dbapi_connection: Any) -> bool:
    """The pool's pre-ping (as SQLAlchemy's psycopg dialect does it: `SELECT 1` in autocommit
    mode) without its flaw: when something interrupts the ping (Prefect's termination signal
    is an exception raised in the main thread), SQLAlchemy's version sets autocommit back in a
    `finally`, which psycopg refuses while the query is ACTIVE, so the signal came out as
    "ProgrammingError: can't change 'autocommit' now" and was recorded as a database error.
    Here the interruption propagates as it is, and the pool discards the connection."""
    before = dbapi_connection.autocommit
    if not before:
        dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    except BaseException:
        dbapi_connection.close()  # mid-query: never usable again
        raise
    cursor.close()
    if not before:
        dbapi_connection.autocommit = before
    return True


def _sqlite_on_connect(dbapi_connection: Any, foreign_keys: bool) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see _on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_on_begin(connection: sa.Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front: a transaction that reads and then writes
    # cannot fail half-way with "database is locked", it waits its turn (busy timeout) instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate the driver's errors into models' own: a constraint violation becomes Conflict,
    a lost or refused connection DatabaseUnavailable. Nothing above `models` catches SQLAlchemy
    or psycopg exceptions.

    The messages say what happened in general words; the driver's own (which names hosts,
    users, constraints) goes to the log only."""
    try:
        yield
    except sa.exc.IntegrityError as error:
        log.warning("the database refused a write: %s", _first_line(error.orig))
        raise Conflict(
            "the database refused the write: it clashes with what is stored (a concurrent "
            "change?); nothing was written"
        ) from error
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
        log.warning("the database is unavailable: %s", _first_line(error.orig))
        raise DatabaseUnavailable(
            "the database is unavailable; nothing is lost, try again shortly"
        ) from error
    except sa.exc.DBAPIError as error:
        if error.connection_invalidated:
            log.warning("the database connection was lost: %s", _first_line(error.orig))
            raise DatabaseUnavailable(
                "the database connection was lost; nothing is lost, try again shortly"
            ) from error
        raise


def _first_line(error: BaseException | None) -> str:
    """The driver's message without the SQL statement and its parameters."""
    text = str(error or "").strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back when it raises; driver errors
    come out as models.core.errors (database_errors)."""
    with database_errors(), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_postgres(session_or_engine: Session | sa.Engine | sa.Connection) -> bool:
    """True when the database behind the argument is PostgreSQL."""
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"
