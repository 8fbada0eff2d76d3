"""The reconciler: makes the database and Prefect agree after crashes, outages and cancels.

- Expired leases go back to pending (or fail after the last attempt), once their flow run is
  stopped (flows.zombies).
- An item whose flow run is Crashed, Cancelled, Failed or gone while the item is not finished:
  before the claim, that attempt is counted and the next one dispatched; after the claim, the
  attempt fails as transient, keeping the provider's task so the next attempt resumes it.
- Flow runs that are going but not working (after a power loss, a killed worker) are crashed,
  freeing their pool slot (flows.zombies).
- Cancelled items: their flow run is cancelled and their Runway task deleted.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.states import Cancelling

from reelroute.flows.prefect_api import PrefectApi
from reelroute.flows.zombies import crash_zombie_runs, stop_expired_holders
from reelroute.models.assembly import Settings
from reelroute.models.core import (
    FailureCode,
    InferenceProvider,
    ItemStatus,
    StaleAttempt,
    VideoItem,
    flow_run_of,
)
from reelroute.models.health import breakers
from reelroute.models.items import (
    cancel_item,
    fail_item,
    forget_provider_task,
    items_with_runs,
    recently_cancelled_with_runs,
    run_lost_before_claim,
)
from reelroute.models.planning import prune_moves
from reelroute.models.store import session_scope
from reelroute.providers.base import ProviderError
from reelroute.providers.registry import provider_for

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """What one pass changed."""

    requeued: int = 0
    failed_expired: int = 0
    crashed_runs: int = 0
    lost_runs: int = 0
    cancelled_runs: int = 0
    deleted_tasks: int = 0
    pruned_outcomes: int = 0
    pruned_moves: int = 0


def read_runs(client: PrefectApi, ids: list[uuid.UUID]) -> dict[uuid.UUID, FlowRun]:
    """The flow runs with these ids that Prefect still knows."""
    if not ids:
        return {}
    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
    )
    return {run.id: run for run in runs}


def _ended(run: FlowRun | None) -> str | None:
    """The state name when the run can no longer work on its item, else None."""
    if run is None:
        return "gone"
    if run.state is not None and run.state.is_final():
        return run.state.name
    return None


RUN_ENDED: dict[StateType, FailureCode] = {
    StateType.CRASHED: FailureCode.RUN_CRASHED,
    StateType.CANCELLED: FailureCode.RUN_CANCELLED,
    StateType.FAILED: FailureCode.RUN_FAILED,
    StateType.COMPLETED: FailureCode.RUN_COMPLETED,
}


def _code_of(run: FlowRun | None) -> FailureCode:
    """The failure code of an attempt whose flow run ended (or vanished) while holding it."""
    if run is None or run.state is None:
        return FailureCode.RUN_GONE
    return RUN_ENDED.get(run.state.type, FailureCode.RUN_CRASHED)


def reconcile_once(engine: sa.Engine, client: PrefectApi, settings: Settings) -> ReconcileReport:
    """One pass; safe to run from several places at once (every write is fenced)."""
    report = ReconcileReport()
    expired, crashed = stop_expired_holders(engine, client, settings)
    report.requeued, report.failed_expired = expired.requeued, expired.failed
    report.crashed_runs += crashed
    with session_scope(engine) as session:
        items = items_with_runs(session)
    runs = read_runs(client, [item.flow_run_id for item in items if item.flow_run_id])
    for item in items:
        assert item.flow_run_id is not None
        ended = _ended(runs.get(item.flow_run_id))
        if ended is None:
            continue
        reason = f"flow run {item.flow_run_id} ended {ended}"
        with session_scope(engine) as session:
            if item.status is ItemStatus.pending:
                changed = run_lost_before_claim(
                    session,
                    item_id=item.id,
                    flow_run_id=item.flow_run_id,
                    reason=reason + " before claiming the item",
                    settings=settings,
                )
            elif flow_run_of(item.worker_id) == item.flow_run_id:
                try:
                    fail_item(
                        session,
                        item_id=item.id,
                        attempt=item.retry_count,
                        worker_id=item.worker_id or "",
                        error=reason,
                        permanent=False,
                        settings=settings,
                        failure_code=_code_of(runs.get(item.flow_run_id)),
                        keep_provider_task=True,
                    )
                    changed = True
                except StaleAttempt:
                    changed = False
            else:  # held by someone else (a pull worker): not ours to judge
                changed = False
        if changed:
            report.lost_runs += 1
            log.warning("item %s: %s", item.id, reason)
    report.crashed_runs += crash_zombie_runs(engine, client, settings)
    _finish_cancels(engine, client, settings, report)
    with session_scope(engine) as session:  # the breakers' windows need only the last hours
        report.pruned_outcomes = breakers.prune(session)
        report.pruned_moves = prune_moves(session)  # an item's moves: 30 days (counted apart)
    return report


def _finish_cancels(
    engine: sa.Engine, client: PrefectApi, settings: Settings, report: ReconcileReport
) -> None:
    with session_scope(engine) as session:
        items = recently_cancelled_with_runs(session)
    runs = read_runs(client, [item.flow_run_id for item in items if item.flow_run_id])
    for item in items:
        run = runs.get(item.flow_run_id) if item.flow_run_id else None
        cancelled_run, deleted_task = stop_cancelled(engine, client, settings, item, run)
        report.cancelled_runs += cancelled_run
        report.deleted_tasks += deleted_task


def stop_cancelled(
    engine: sa.Engine,
    client: PrefectApi | None,
    settings: Settings,
    item: VideoItem,
    run: FlowRun | None,
) -> tuple[bool, bool]:
    """Cancel the flow run of a cancelled item and delete its Runway task (stops the billing
    where Runway allows); returns what it did. Failures are left for the next reconcile."""
    cancelled_run = deleted_task = False
    stopping = run is not None and run.state is not None and run.state.is_cancelling()
    if client is not None and run is not None and _ended(run) is None and not stopping:
        try:
            client.set_flow_run_state(run.id, Cancelling(message="item cancelled"), force=True)
            cancelled_run = True
        except Exception as error:  # Prefect away: the next reconcile tries again
            log.warning("could not cancel flow run %s: %s", run.id, error)
    task = item.provider_task_id
    if task and item.inference_provider is not InferenceProvider.wan_local:
        try:
            provider_for(item.inference_provider, settings).cancel(task)
        except ProviderError as error:
            log.warning("could not delete task %s: %s", task, error)
        else:
            with session_scope(engine) as session:
                forget_provider_task(session, item_id=item.id, task_id=task)
            deleted_task = True
    return cancelled_run, deleted_task


def cancel_everywhere(
    engine: sa.Engine,
    settings: Settings,
    item_id: uuid.UUID,
    *,
    client: PrefectApi | None = None,
) -> VideoItem:
    """An admin's cancel: the item first (so nothing completes it), then its flow run (through
    `client`, or a client opened here when the item has a run) and its Runway task. Raises
    NotFound or InvalidTransition like cancel_item."""
    with session_scope(engine) as session:
        item = cancel_item(session, item_id=item_id)
    if item.flow_run_id is None:
        stop_cancelled(engine, None, settings, item, None)
        return item
    if client is None:
        with get_client(sync_client=True) as own_client:
            return _stop_run(engine, own_client, settings, item)
    return _stop_run(engine, client, settings, item)


def _stop_run(
    engine: sa.Engine, client: PrefectApi, settings: Settings, item: VideoItem
) -> VideoItem:
    assert item.flow_run_id is not None
    try:
        run = read_runs(client, [item.flow_run_id]).get(item.flow_run_id)
    except Exception as error:  # Prefect away: the reconciler finishes the cancel later
        log.warning("could not read flow run %s: %s", item.flow_run_id, error)
        run = None
    stop_cancelled(engine, client, settings, item, run)
    return item
