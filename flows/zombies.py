"""Flow runs that outlived their work: after a power loss, a killed worker or a lost host, Prefect
keeps them Running or Pending, each holding a pool slot, and nothing on the server crashes them
(its heartbeat automation does not survive a restart of everything). The reconciler does it here,
from what the database knows, and never depends on Prefect's automation alone.

- An item whose lease ran out: its flow run (if any, and still going) is set Crashed before the
  item goes back to the queue, so the run's slot is free when the next attempt is dispatched.
- A generate-video run that is Pending or Running (or stuck Cancelling) and does not hold its
  item after `REELROUTE_RUN_START_TIMEOUT_SECONDS`: set Crashed (Cancelled when it was being
  cancelled). When its item was waiting for it, that attempt is counted and the next dispatched.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.states import Cancelled, Crashed

from reelroute.flows.backoff import OUTAGES
from reelroute.flows.dispatch import FLOW_NAME
from reelroute.flows.prefect_api import PrefectApi
from reelroute.models.assembly import Settings
from reelroute.models.core import ItemStatus, VideoItem, flow_run_of, utcnow
from reelroute.models.items import (
    RequeueResult,
    expired_leases,
    items_by_id,
    requeue_expired,
    run_lost_before_claim,
)
from reelroute.models.store import session_scope

log = logging.getLogger(__name__)

GOING = (StateType.PENDING, StateType.RUNNING, StateType.CANCELLING)
MAX_RUNS_PER_PASS = 200


def stop_expired_holders(
    engine: sa.Engine, client: PrefectApi, settings: Settings
) -> tuple[RequeueResult, int]:
    """Requeue (or fail, after the last attempt) the items whose lease ran out, once their flow
    run is no longer going: crashed here if it was. Returns what was requeued and how many runs
    were crashed. With Prefect away, only the items of pull workers are requeued; those of flow
    runs wait for the next pass (a run cannot start anyway while Prefect is away)."""
    with session_scope(engine) as session:
        expired = expired_leases(session)
    held_by_runs = {
        lease.item_id: run_id
        for lease in expired
        if (run_id := flow_run_of(lease.worker_id)) is not None
    }
    released = [lease.item_id for lease in expired if lease.item_id not in held_by_runs]
    crashed = 0
    if held_by_runs:
        try:
            runs = _read(client, list(held_by_runs.values()))
            for item_id, holder in held_by_runs.items():
                going = runs.get(holder)
                if going is not None and going.state is not None and not going.state.is_final():
                    _crash(client, going, f"the lease of item {item_id} ran out: the run is gone")
                    crashed += 1
                released.append(item_id)
        except OUTAGES as error:
            log.warning("reconciler: cannot check the runs of expired leases now: %s", error)
    with session_scope(engine) as session:
        result = requeue_expired(session, settings=settings, item_ids=released)
    return result, crashed


@dataclass(frozen=True)
class Verdict:
    """What to do with a going run: crash it (or cancel it), and why; and whether its item was
    waiting for it (its attempt is then counted)."""

    reason: str
    cancel: bool = False
    item_waited: bool = False


def judge(
    run: FlowRun, item: VideoItem | None, *, now: datetime, start_timeout: float
) -> Verdict | None:
    """Whether a Pending, Running or Cancelling generate-video run is a zombie (None: leave it)."""
    if run.state is None or run.state.timestamp is None:
        return None
    age = (now - run.state.timestamp).total_seconds()
    if age < start_timeout:
        return None
    late = f"{run.state.name} for {age:.0f} s"
    if run.state.type is StateType.CANCELLING:
        return Verdict(f"{late}: its worker never stopped it", cancel=True)
    if item is None:
        return Verdict(f"{late}, and its item does not exist")
    holder = flow_run_of(item.worker_id)
    if item.status is ItemStatus.processing and holder == run.id:
        return None  # working on it; its lease says whether it is alive
    if item.status is ItemStatus.pending and item.flow_run_id == run.id:
        return Verdict(f"{late} without claiming its item", item_waited=True)
    if item.status in (ItemStatus.pending, ItemStatus.processing):
        return Verdict(f"{late}; its item has moved on to another attempt")
    return Verdict(f"{late}, but its item is already {item.status.value}")


def crash_zombie_runs(engine: sa.Engine, client: PrefectApi, settings: Settings) -> int:
    """Crash the generate-video runs that are going but not working (see `judge`); returns how
    many. Cost: one read of Prefect's going runs (a pool's slots, not the backlog)."""
    runs = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(GOING)))
        ),
        limit=MAX_RUNS_PER_PASS,
    )
    ids = {run.id: _item_of(run) for run in runs}
    with session_scope(engine) as session:
        items = items_by_id(session, {i for i in ids.values() if i is not None})
    now = utcnow()
    crashed = 0
    for run in runs:
        item_id = ids[run.id]
        item = items.get(item_id) if item_id else None
        verdict = judge(run, item, now=now, start_timeout=settings.items.run_start_timeout_seconds)
        if verdict is None:
            continue
        _crash(client, run, verdict.reason, cancel=verdict.cancel)
        crashed += 1
        if verdict.item_waited and item is not None:
            with session_scope(engine) as session:
                run_lost_before_claim(
                    session,
                    item_id=item.id,
                    flow_run_id=run.id,
                    reason=f"flow run {run.id} was crashed: {verdict.reason}",
                    settings=settings,
                )
    return crashed


def _item_of(run: FlowRun) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(run.parameters.get("item_id")))
    except ValueError:
        return None


def _read(client: PrefectApi, ids: list[uuid.UUID]) -> dict[uuid.UUID, FlowRun]:
    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids)
    )
    return {run.id: run for run in runs}


def _crash(client: PrefectApi, run: FlowRun, reason: str, *, cancel: bool = False) -> None:
    message = f"reelroute reconciler: {reason}"
    state: State[None] = Cancelled(message=message) if cancel else Crashed(message=message)
    client.set_flow_run_state(run.id, state, force=True)
    log.warning("flow run %s (%s) set %s: %s", run.id, run.name, state.name, reason)
