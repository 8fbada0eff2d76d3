"""Zombie flow runs (a power loss, a killed worker): the reconciler crashes them itself and frees
their slots, on SQLite and PostgreSQL, against a Prefect stand-in."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prefect.states import Cancelling, Pending, Running

from reelroute.flows.dispatch import Dispatcher
from reelroute.flows.reconcile import reconcile_once
from reelroute.flows.zombies import crash_zombie_runs, stop_expired_holders
from reelroute.models.core.enums import InferenceProvider, ItemStatus, Pool
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.core.workers import flow_run_worker_id
from reelroute.models.items import lifecycle as ops
from reelroute.models.store.db import session_scope
from tests.models.helpers import add_items, claim_by_run, reloaded

TIMEOUT = 60.0


def aged(state, seconds: float):
    state.timestamp = utcnow() - timedelta(seconds=seconds)
    return state


@pytest.fixture
def zsettings(settings):
    return settings.replaced(run_start_timeout_seconds=TIMEOUT, lease_seconds=30, gpu_slots=1)


def dispatched(engine, session, prefect, settings, provider=InferenceProvider.wan_local):
    (made,) = add_items(session, settings, 1, provider)
    Dispatcher(engine, prefect, settings).dispatch_once()
    return reloaded(engine, made.id)


def claimed(engine, settings, found, *, at) -> None:
    with session_scope(engine) as session:
        claim_by_run(session, settings, found, now=at)


def test_a_run_left_running_after_a_power_loss_is_crashed_and_its_item_sent_again(
    engine, session, prefect, zsettings
):
    found = dispatched(engine, session, prefect, zsettings)
    claimed(engine, zsettings, found, at=utcnow() - timedelta(minutes=5))  # lease long gone
    run = prefect.runs[found.flow_run_id]
    run.state = aged(Running(), 300)
    report = reconcile_once(engine, prefect, zsettings)
    assert report.crashed_runs == 1 and report.requeued == 1
    assert run.state.name == "Crashed" and "lease" in run.state.message
    requeued = reloaded(engine, found.id)
    assert (requeued.status, requeued.retry_count, requeued.flow_run_id) == (
        ItemStatus.pending,
        1,
        None,
    )
    Dispatcher(engine, prefect, zsettings).dispatch_once()
    assert prefect.created[-1]["run"].idempotency_key == f"{found.id}:2"


def test_with_prefect_away_only_pull_worker_items_are_requeued(
    engine, session, prefect, zsettings, monkeypatch
):
    found = dispatched(engine, session, prefect, zsettings)
    claimed(engine, zsettings, found, at=utcnow() - timedelta(minutes=5))
    (pulled,) = add_items(session, zsettings, 1, InferenceProvider.runway_gen4_turbo)
    ops.claim_next(
        session,
        pool=Pool.cloud,
        worker_id="pull-worker",
        settings=zsettings,
        now=utcnow() - timedelta(minutes=5),
    )
    session.commit()

    def away(**_):
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(prefect, "read_flow_runs", away)
    result, crashed = stop_expired_holders(engine, prefect, zsettings)
    assert (result.requeued, crashed) == (1, 0)
    assert reloaded(engine, pulled.id).status is ItemStatus.pending
    assert reloaded(engine, found.id).status is ItemStatus.processing  # waits for Prefect


@pytest.mark.parametrize(("age", "crashed"), [(TIMEOUT - 10, 0), (TIMEOUT + 10, 1)])
def test_a_run_that_never_claims_its_item_is_crashed_after_the_start_timeout(
    engine, session, prefect, zsettings, age, crashed
):
    found = dispatched(engine, session, prefect, zsettings)
    run = prefect.runs[found.flow_run_id]
    run.state = aged(Pending(), age)  # a worker took it, then died before the process started
    assert crash_zombie_runs(engine, prefect, zsettings) == crashed
    now = reloaded(engine, found.id)
    if crashed:
        assert run.state.name == "Crashed" and "without claiming" in run.state.message
        assert (now.retry_count, now.flow_run_id) == (1, None)  # the next attempt is sent
    else:
        assert run.state.name == "Pending" and now.flow_run_id == run.id


def test_a_working_run_is_left_alone_however_long_it_runs(engine, session, prefect, zsettings):
    found = dispatched(engine, session, prefect, zsettings)
    claimed(engine, zsettings, found, at=utcnow())
    prefect.runs[found.flow_run_id].state = aged(Running(), 3600)
    assert crash_zombie_runs(engine, prefect, zsettings) == 0


def test_runs_whose_item_moved_on_finished_or_vanished_are_crashed(
    engine, session, prefect, zsettings
):
    done = dispatched(engine, session, prefect, zsettings, InferenceProvider.runway_gen4_turbo)
    claimed(engine, zsettings, done, at=utcnow())
    with session_scope(engine) as scoped:
        ops.complete_item(
            scoped,
            item_id=done.id,
            attempt=1,
            worker_id=flow_run_worker_id(done.flow_run_id, "gpu-host"),
            output_path="v.mp4",
        )
    prefect.runs[done.flow_run_id].state = aged(Running(), 600)
    orphan = dispatched(engine, session, prefect, zsettings, InferenceProvider.runway_veo3_1)
    with session_scope(engine) as scoped:
        scoped.delete(scoped.get(VideoItem, orphan.id))
    prefect.runs[orphan.flow_run_id].state = aged(Running(), 600)
    stuck = dispatched(engine, session, prefect, zsettings, InferenceProvider.runway_gen4_turbo)
    prefect.runs[stuck.flow_run_id].state = aged(Cancelling(), 600)
    assert crash_zombie_runs(engine, prefect, zsettings) == 3
    assert "already completed" in prefect.runs[done.flow_run_id].state.message
    assert "does not exist" in prefect.runs[orphan.flow_run_id].state.message
    assert prefect.runs[stuck.flow_run_id].state.name == "Cancelled"
