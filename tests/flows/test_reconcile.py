"""The reconciler, case by case, on SQLite and PostgreSQL, against a Prefect stand-in and the
real Runway emulator (for deleting a cancelled item's task)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from prefect.states import Cancelled, Crashed, Failed, Running
from pydantic import SecretStr

from reelroute.flows.dispatch import Dispatcher
from reelroute.flows.reconcile import cancel_everywhere, reconcile_once
from reelroute.models.core.enums import InferenceProvider, ItemStatus
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.core.workers import flow_run_worker_id
from reelroute.models.items import lifecycle as ops
from reelroute.models.store.db import session_scope
from tests.models.helpers import add_items, claim_by_run, reloaded

TURBO = InferenceProvider.runway_gen4_turbo


def dispatched(engine, session, prefect, settings, count=1, provider=TURBO):
    items = add_items(session, settings, count, provider)
    Dispatcher(engine, prefect, settings).dispatch_once()
    return [reloaded(engine, i.id) for i in items]


def claimed_by_its_run(engine, settings, found: VideoItem) -> None:
    with session_scope(engine) as session:
        claim_by_run(session, settings, found)


def test_a_run_that_ended_before_claiming_goes_back_to_pending(engine, session, prefect, settings):
    crashed, cancelled, vanished, alive = dispatched(engine, session, prefect, settings, 4)
    prefect.runs[crashed.flow_run_id].state = Crashed()
    prefect.runs[cancelled.flow_run_id].state = Cancelled()
    prefect.forget(vanished.flow_run_id)
    prefect.runs[alive.flow_run_id].state = Running()
    report = reconcile_once(engine, prefect, settings)
    assert report.lost_runs == 3
    for lost, how in ((crashed, "Crashed"), (cancelled, "Cancelled"), (vanished, "gone")):
        now = reloaded(engine, lost.id)
        assert (now.status, now.retry_count, now.spared_attempts) == (ItemStatus.pending, 1, 1)
        assert now.flow_run_id is None
        assert now.error == f"flow run {lost.flow_run_id} ended {how} before claiming the item"
        assert now.failure_code == "RUN_NOT_STARTED"
    assert reloaded(engine, alive.id).flow_run_id == alive.flow_run_id  # a live run is left alone


def test_a_run_lost_before_claiming_is_spared_until_the_spared_attempts_run_out(
    engine, session, prefect, settings
):
    # Infrastructure, not the item: the lost run costs no attempt of the item's own...
    settings = settings.replaced(max_attempts=1, max_spared_attempts=2)
    (lost,) = dispatched(engine, session, prefect, settings)
    prefect.runs[lost.flow_run_id].state = Crashed()
    reconcile_once(engine, prefect, settings)
    spared = reloaded(engine, lost.id)
    assert (spared.status, spared.spared_attempts) == (ItemStatus.pending, 1)
    # ...but an item whose runs keep getting lost fails once its spared attempts are used up.
    with session_scope(engine) as scoped:  # its backoff is over
        scoped.get(VideoItem, lost.id).next_attempt_at = None
    Dispatcher(engine, prefect, settings).dispatch_once()
    again = reloaded(engine, lost.id)
    assert again.flow_run_id is not None
    prefect.runs[again.flow_run_id].state = Crashed()
    reconcile_once(engine, prefect, settings)
    failed = reloaded(engine, lost.id)
    assert (failed.status, failed.failure_code) == (ItemStatus.failed, "RUN_NOT_STARTED")


def test_a_crashed_run_that_held_its_item_fails_that_attempt_and_keeps_the_task(
    engine, session, prefect, settings
):
    (held,) = dispatched(engine, session, prefect, settings)
    claimed_by_its_run(engine, settings, held)
    with session_scope(engine) as scoped:
        ops.set_provider_task(
            scoped,
            item_id=held.id,
            attempt=1,
            worker_id=flow_run_worker_id(held.flow_run_id, "gpu-host"),
            task_id="runway-task-1",
        )
    prefect.runs[held.flow_run_id].state = Crashed()
    report = reconcile_once(engine, prefect, settings)
    assert report.lost_runs == 1
    now = reloaded(engine, held.id)
    assert (now.status, now.failure_code, now.flow_run_id) == (
        ItemStatus.pending,
        "RUN_CRASHED",
        None,
    )
    assert now.provider_task_id == "runway-task-1"  # the next attempt resumes it: paid once
    assert now.next_attempt_at is not None


def test_an_item_held_by_a_pull_worker_is_not_judged_by_a_flow_run(
    engine, session, prefect, settings
):
    (found,) = dispatched(engine, session, prefect, settings)
    with session_scope(engine) as scoped:
        claim = ops.claim_item(
            scoped, item_id=found.id, attempt=1, worker_id="gpu-box-7", settings=settings
        )
        assert claim is not None
    prefect.runs[found.flow_run_id].state = Failed()
    assert reconcile_once(engine, prefect, settings).lost_runs == 0
    assert reloaded(engine, found.id).status is ItemStatus.processing


def test_expired_leases_go_back_or_fail_after_the_last_spared_attempt(
    engine, session, prefect, settings
):
    # A holder that went silent is the infrastructure's failure: spared, up to a limit.
    settings = settings.replaced(max_attempts=5, max_spared_attempts=2, lease_seconds=10)
    first, last = add_items(session, settings, 2, TURBO)
    for found, attempts in ((first, 1), (last, 2)):
        for attempt in range(1, attempts + 1):
            claim = ops.claim_item(
                session,
                item_id=found.id,
                attempt=attempt,
                worker_id="w",
                settings=settings,
                now=utcnow() - timedelta(minutes=20 - 5 * attempt),
            )
            assert claim is not None
    session.commit()
    report = reconcile_once(engine, prefect, settings)
    assert (report.requeued, report.failed_expired) == (1, 1)
    assert reloaded(engine, first.id).status is ItemStatus.pending
    failed = reloaded(engine, last.id)
    assert (failed.status, failed.failure_code) == (ItemStatus.failed, "LEASE_EXPIRED")


def test_a_cancelled_item_stops_its_run_and_its_runway_task(
    engine, session, prefect, settings, emulator
):
    emulator.script.latency_s = 60  # still running when it is cancelled
    settings = settings.replaced(
        runway_base_url=emulator.url, runway_api_secret=SecretStr("k" * 32)
    )
    (found,) = dispatched(engine, session, prefect, settings)
    claimed_by_its_run(engine, settings, found)
    prefect.runs[found.flow_run_id].state = Running()
    task = emulator._submit({"model": "gen4_turbo", "ratio": "960:960"}, b"")["id"]
    with session_scope(engine) as scoped:
        ops.set_provider_task(
            scoped,
            item_id=found.id,
            attempt=1,
            worker_id=flow_run_worker_id(found.flow_run_id, "gpu-host"),
            task_id=task,
        )
    cancel_everywhere(engine, settings, found.id, client=prefect)
    assert prefect.runs[found.flow_run_id].state.name == "Cancelling"
    assert emulator.tasks[task].cancelled
    now = reloaded(engine, found.id)
    assert now.status is ItemStatus.cancelled and now.provider_task_id is None
    assert now.error == f"cancelled; provider task {task} deleted"


def test_a_cancel_the_reconciler_finishes_when_prefect_was_away(engine, session, prefect, settings):
    (found,) = dispatched(engine, session, prefect, settings)
    prefect.runs[found.flow_run_id].state = Running()
    with session_scope(engine) as scoped:  # cancelled where Prefect could not be told
        ops.cancel_item(scoped, item_id=found.id)
    report = reconcile_once(engine, prefect, settings)
    assert report.cancelled_runs == 1
    assert prefect.runs[found.flow_run_id].state.name == "Cancelling"
    again = reconcile_once(engine, prefect, settings)
    assert again.cancelled_runs == 0  # already stopping: not asked twice
    assert uuid.UUID(str(found.flow_run_id)) in prefect.runs
