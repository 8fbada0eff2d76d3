"""Who runs the led loops: the dispatcher (with its planner and reconciler) and the webhook
sender run in two or more processes, on different hosts, and one of them leads each.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own; the
others stand by and try to take the lock at every poll. The lock goes when its session does:

- the leader stops or dies: the server sees the socket close at once, a standby takes over at
  its next poll (within `poll_seconds`);
- the leader's host or network is gone: the server's TCP keepalives and user timeout (set per
  session below) end the session within about `lease_seconds`; a leader frozen with its socket
  open (stopped, swapping) is ended by `idle_session_timeout`, since a live one pings at every
  poll. A standby takes over at its next poll after that;
- the leader loses its connection: its ping fails, it stops leading at once and tries again
  as a standby at its next poll.

A leader that was frozen (stopped, swapping, its host cut off) and resumes does not act on
its old belief: `leading` holds only while its last successful ping is younger than the lease,
so after a freeze longer than the lease it waits for its next ping, which fails when a standby
has taken over. What is left of the window is a pass already under way when it froze.
Leadership spares work, it does not make work safe: a deposed leader's pass in flight can
still finish, and that is harmless because claims are fenced and flow runs carry idempotency
keys (item and attempt). SQLite has one process by design: it always leads.

Every member records itself in `loop_members` (leading or not, since when, last seen), which the
metrics and the Providers page read.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from reelroute.models.core.tables import utcnow
from reelroute.models.health.tables import LoopMember

ROLES = ("dispatcher", "webhooks")
"""The led roles: the dispatcher's loop (planner, dispatcher, reconciler) and the webhook
sender."""
LOCK_SPACE = zlib.crc32(b"reelroute") & 0x7FFFFFFF
"""The first key of reelroute's advisory locks (the second is the role's number)."""
MEMBER_GONE_AFTER = timedelta(seconds=60)
"""A member not seen for this long no longer counts (in the metrics and on the page)."""

log = logging.getLogger(__name__)


def default_holder() -> str:
    """This process's name among members: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


class Leadership:
    """One process's claim to lead `role`. `check()` polls once; `start()` polls in a thread
    every `poll_seconds` until `stop()`. `leading` says whether this process leads now, `term`
    counts the times it became leader (a loop starts afresh on a new term)."""

    def __init__(
        self,
        url: str,
        role: str,
        *,
        holder: str | None = None,
        poll_seconds: float = 2.0,
        lease_seconds: float = 15.0,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        self.role = role
        self.holder = (holder or default_holder())[:200]
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.term = 0
        self._leading = False
        self._confirmed_at = 0.0
        self._since = utcnow()
        self._postgres = not url.startswith("sqlite")
        self._engine = (
            _lock_engine(url, lease_seconds, f"reelroute-lead {role} {self.holder}")
            if self._postgres
            else _plain_engine(url)
        )
        self._connection: sa.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._took_over = False
        self.lost_because: str | None = None
        """Why the lock's session last failed (None: it never did)."""

    @property
    def leading(self) -> bool:
        """Whether this process leads its role now: it won or kept the lock at a ping younger
        than the lease (a leader that froze longer waits for its next ping)."""
        if not self._leading or not self._postgres:
            return self._leading
        return time.monotonic() - self._confirmed_at < self.lease_seconds

    def check(self) -> bool:
        """Poll once: a leader makes sure its lock's session lives, a standby tries to take
        the lock. Records this member's row. Returns whether this process leads."""
        with self._lock:
            try:
                if self._postgres:
                    connection = self._connect()
                    won = self._hold(connection)
                    self._settle(won)
                    self._record(connection)
                else:  # one process by design: it leads, whether its row is written or not
                    self._settle(True)
                    self._record_sqlite()
            except Exception as error:  # the lock's session is gone or unreachable
                self._lost(error)
            return self._leading

    def _record_sqlite(self) -> None:
        try:
            with self._engine.begin() as connection:
                self._record(connection)
        except Exception as error:  # the page shows it late; nothing else depends on it
            log.debug("%s: no member row for %s: %s", self.role, self.holder, error)

    def _hold(self, connection: sa.Connection) -> bool:
        if self._leading:
            connection.execute(sa.text("SELECT 1"))  # the lock lives as long as this session
            return True
        return bool(
            connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:space, :key)"),
                {"space": LOCK_SPACE, "key": ROLES.index(self.role) + 1},
            ).scalar_one()
        )

    def _settle(self, won: bool) -> None:
        if won:
            self._confirmed_at = time.monotonic()
        self._took_over = won and not self._leading
        if self._took_over:
            self.term += 1
            self._since = utcnow()
            log.warning("%s: %s leads now (term %s)", self.role, self.holder, self.term)
        self._leading = won

    def start(self) -> None:
        """Poll now and then every `poll_seconds` in a thread, until `stop()`."""
        self.check()
        self._thread = threading.Thread(
            target=self._run, name=f"leadership-{self.role}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and step down: the lock's session ends, a standby takes over at its
        next poll; this member's row goes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 10)
        with self._lock:
            try:
                leave = sa.delete(LoopMember).where(
                    col(LoopMember.role) == self.role, col(LoopMember.holder) == self.holder
                )
                if self._postgres:
                    self._connect().execute(leave)
                else:
                    with self._engine.begin() as connection:
                        connection.execute(leave)
            except Exception as error:  # the row ages out of the counts anyway
                log.debug("%s: could not remove %s's row: %s", self.role, self.holder, error)
            if self._leading:
                log.warning("%s: %s steps down", self.role, self.holder)
            self._leading = False
            self._close()
        self._engine.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.check()

    def _connect(self) -> sa.Connection:
        if self._connection is None or self._connection.closed:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self._postgres:
                self._end_when_silent(connection)
            self._connection = connection
        return self._connection

    def _end_when_silent(self, connection: sa.Connection) -> None:
        """Have the server end this session when it is silent for the lease (a frozen leader):
        idle_session_timeout, PostgreSQL 14 and later. Older servers rely on the keepalives."""
        lease_ms = int(self.lease_seconds * 1000)
        try:
            connection.execute(sa.text(f"SET idle_session_timeout = {lease_ms}"))
        except sa.exc.DBAPIError as error:
            if error.connection_invalidated:
                raise
            log.warning(
                "%s: this PostgreSQL has no idle_session_timeout (before 14): a leader frozen "
                "with its socket open keeps the lead until its host is gone",
                self.role,
            )

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()  # never back to a pool: its session must end
                self._connection.close()
            except Exception as error:
                log.debug("%s: closing the lock's connection: %s", self.role, error)
        self._connection = None

    def _lost(self, error: BaseException) -> None:
        self.lost_because = _first_line(error)
        if self._leading:
            log.warning(
                "%s: %s lost leadership (%s); trying again as a standby",
                self.role,
                self.holder,
                _first_line(error),
            )
        else:
            log.info("%s: %s cannot reach the lock: %s", self.role, self.holder, _first_line(error))
        self._leading = False
        self._since = utcnow()
        self._close()

    def _record(self, connection: sa.Connection) -> None:
        now = utcnow()
        insert = (postgresql.insert if self._postgres else sqlite.insert)(LoopMember)
        values: dict[str, Any] = {
            "role": self.role,
            "holder": self.holder,
            "leading": self._leading,
            "since": self._since,
            "seen_at": now,
        }
        connection.execute(
            insert.values(**values).on_conflict_do_update(
                index_elements=["role", "holder"],
                set_={"leading": self._leading, "since": self._since, "seen_at": now},
            )
        )
        if self._took_over:  # the deposed leader (dead, or cut off) no longer leads
            connection.execute(
                sa.update(LoopMember)
                .where(
                    col(LoopMember.role) == self.role,
                    col(LoopMember.holder) != self.holder,
                    col(LoopMember.leading),
                )
                .values(leading=False)
            )


@dataclass(frozen=True)
class RoleView:
    """One led role as the page and the metrics show it."""

    role: str
    leader: str | None
    leading_since: datetime | None
    standbys: int
    members: list[LoopMember]


def read_roles(session: Session, *, now: datetime | None = None) -> list[RoleView]:
    """Every led role: its leader (None while nobody leads), since when, and how many standbys
    were seen within MEMBER_GONE_AFTER."""
    now = now or utcnow()
    rows = session.exec(
        select(LoopMember)
        .where(col(LoopMember.seen_at) >= now - MEMBER_GONE_AFTER)
        .order_by(col(LoopMember.role), col(LoopMember.holder))
    ).all()
    views = []
    for role in ROLES:
        members = [row for row in rows if row.role == role]
        leaders = sorted(
            (row for row in members if row.leading), key=lambda row: row.since, reverse=True
        )
        leader = leaders[0] if leaders else None
        views.append(
            RoleView(
                role=role,
                leader=leader.holder if leader else None,
                leading_since=leader.since if leader else None,
                standbys=len(members) - (1 if leader else 0),
                members=members,
            )
        )
    return views


def _lock_engine(url: str, lease_seconds: float, application_name: str) -> sa.Engine:
    """An engine for the lock's one connection: no pool, short timeouts, and a session that the
    server ends when its client is gone for about `lease_seconds` (keepalives, user timeout) or
    silent that long (idle_session_timeout, set on connecting; a live member pings every poll).
    Its application name ("reelroute-lead <role> <holder>") shows in pg_stat_activity."""
    lease_ms = int(lease_seconds * 1000)
    keepalive = max(1, int(lease_seconds / 3))
    options = " ".join(
        (
            "-c statement_timeout=5000",
            f"-c tcp_keepalives_idle={keepalive}",
            f"-c tcp_keepalives_interval={keepalive}",
            "-c tcp_keepalives_count=2",
            f"-c tcp_user_timeout={lease_ms}",
        )
    )
    return sa.create_engine(
        url,
        poolclass=sa.NullPool,
        connect_args={
            "connect_timeout": 5,
            "keepalives": 1,
            "keepalives_idle": keepalive,
            "keepalives_interval": keepalive,
            "keepalives_count": 2,
            "tcp_user_timeout": lease_ms,
            "options": options,
            "application_name": application_name[:63],
        },
    )


def _plain_engine(url: str) -> sa.Engine:
    from reelroute.models.store.db import make_engine

    return make_engine(url, poolclass=sa.NullPool)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
