"""Leadership of the dispatcher and the webhook sender: on PostgreSQL one member leads through an
advisory lock and a standby takes over when the leader stops, loses its connection or freezes;
on SQLite the one process leads. Members show in `loop_members` and the metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlmodel import Session

from reelroute.models.health.leadership import Leadership, read_roles
from reelroute.models.reporting.metrics import read_metrics
from tests.conftest import PG_ADMIN
from tests.models.reporting.test_metrics import values

postgres_only = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def members(db_url: str) -> Iterator[Callable[..., Leadership]]:
    made: list[Leadership] = []

    def member(holder: str, role: str = "dispatcher", **timing: float) -> Leadership:
        timing = {"poll_seconds": 0.1, "lease_seconds": 5.0, **timing}
        leadership = Leadership(db_url, role, holder=holder, **timing)
        made.append(leadership)
        return leadership

    yield member
    for leadership in made:
        leadership.stop()


def eventually(condition: Callable[[], bool], within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def lock_sessions(db_url: str, holder: str = "") -> list[int]:
    """The server pids of the leadership connections to the test's database (of `holder`)."""
    name = db_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s",
            (name, f"reelroute-lead %{holder}"),
        ).fetchall()
    return [pid for (pid,) in rows]


def terminate(pids: list[int]) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        for pid in pids:
            connection.execute("SELECT pg_terminate_backend(%s)", (pid,))


@postgres_only
def test_one_member_leads_and_a_standby_takes_over_when_it_stops(members, engine):
    first, second = members("host-a:1"), members("host-b:2")
    assert first.check() is True
    assert second.check() is False and second.check() is False
    assert (first.term, second.term) == (1, 0)
    with Session(engine) as session:
        [dispatcher, webhooks] = read_roles(session)
    assert (dispatcher.role, dispatcher.leader, dispatcher.standbys) == (
        "dispatcher",
        "host-a:1",
        1,
    )
    assert (webhooks.leader, webhooks.standbys) == (None, 0)

    first.stop()
    assert second.check() is True and second.term == 1
    with Session(engine) as session:
        [dispatcher, _] = read_roles(session)
    assert (dispatcher.leader, dispatcher.standbys) == ("host-b:2", 0)
    assert [member.holder for member in dispatcher.members] == ["host-b:2"]  # a's row left


@postgres_only
def test_roles_are_led_apart(members):
    dispatcher, sender = members("host-a:1"), members("host-a:1", role="webhooks")
    assert dispatcher.check() and sender.check()
    assert not members("host-b:2").check()
    assert not members("host-b:2", role="webhooks").check()


@postgres_only
def test_a_leader_that_loses_its_connection_steps_down_and_a_standby_takes_over(
    members, engine, db_url, caplog
):
    leader, standby = members("host-a:1"), members("host-b:2")
    assert leader.check()
    standby.start()  # polls every 0.1 s in its thread
    assert not standby.leading
    terminate(lock_sessions(db_url))  # both lock sessions: the standby reconnects by itself
    assert eventually(lambda: standby.leading)
    with caplog.at_level(logging.WARNING, logger="reelroute.models.health.leadership"):
        assert leader.check() is False  # its ping fails: it knows at once
        assert "host-a:1 lost leadership" in caplog.text
        assert leader.check() is False  # and stays a standby while the other leads
    assert standby.term == 1 and leader.term == 1
    with Session(engine) as session:
        [dispatcher, _] = read_roles(session)
    assert (dispatcher.leader, dispatcher.standbys) == ("host-b:2", 1)


@postgres_only
def test_a_frozen_leader_loses_its_lock_after_the_lease(members):
    """A leader that stops pinging (a stopped process, a host cut off with its socket open)
    is ended by the server after the lease: idle_session_timeout."""
    leader, standby = members("host-a:1", lease_seconds=1.0), members("host-b:2")
    assert leader.check() and not standby.check()
    time.sleep(0.5)
    assert not standby.check()  # within the lease: still held
    assert eventually(standby.check, within=10.0)
    assert not leader.check()


@postgres_only
def test_a_new_leader_clears_the_flag_of_a_leader_that_vanished(members, engine, db_url):
    leader, standby = members("host-a:1"), members("host-b:2")
    assert leader.check() and not standby.check()
    # The leader's host goes: its session ends, its row still says it leads.
    [session_of_leader] = lock_sessions(db_url, "host-a:1")
    terminate([session_of_leader])  # the server ends it soon after (asynchronously)
    assert eventually(standby.check)
    with Session(engine) as session:
        [dispatcher, _] = read_roles(session)
        flags = {member.holder: member.leading for member in dispatcher.members}
    assert flags == {"host-a:1": False, "host-b:2": True}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_has_one_process_and_it_leads(members, engine):
    only = members("laptop:1")
    assert only.check() and only.check() and only.term == 1
    with Session(engine) as session:
        [dispatcher, _] = read_roles(session)
    assert (dispatcher.leader, dispatcher.standbys) == ("laptop:1", 0)


def test_the_metrics_show_who_leads_and_how_many_stand_by(members, engine, db_url):
    postgres = not db_url.startswith("sqlite")
    leader = members("host-a:1")
    assert leader.check()
    if postgres:
        assert not members("host-b:2").check()
        assert not members("host-c:3").check()
    with Session(engine) as session:
        found = values(read_metrics(session))
    standbys = 2.0 if postgres else 0.0
    assert found["reelroute_loop_members"] == {
        ("dispatcher", "leader"): 1.0,
        ("dispatcher", "standby"): standbys,
        ("webhooks", "leader"): 0.0,
        ("webhooks", "standby"): 0.0,
    }
    assert set(found["reelroute_loop_leader_seconds"]) == {("dispatcher",)}
    assert found["reelroute_loop_leader_seconds"][("dispatcher",)] >= 0


def test_an_unknown_role_is_refused(db_url):
    with pytest.raises(ValueError, match="unknown role 'planner'; one of dispatcher, webhooks"):
        Leadership(db_url, "planner")


@postgres_only
def test_a_leader_that_resumes_after_a_freeze_waits_for_its_next_ping(members):
    """A leader frozen longer than the lease (its last ping older than that) does not act on
    its old belief when it resumes: `leading` is false until a ping confirms the lock."""
    leader = members("host-a:1", lease_seconds=5.0)
    assert leader.check() and leader.leading
    leader._confirmed_at -= 6.0  # as if it had been stopped for 6 s since its last ping
    assert not leader.leading
    assert leader.check() and leader.leading  # its session lived: the ping confirms it
