"""A Prefect stand-in for the dispatcher's and reconciler's unit tests.

It keeps flow runs in memory with Prefect's own schema objects and states, and behaves as the
server does where our code depends on it: one run per idempotency key, runs readable by id, a
forced state change applied as given. The end-to-end tests run the real server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prefect.client.schemas.filters import FlowFilter, FlowRunFilter
from prefect.client.schemas.objects import FlowRun
from prefect.states import Scheduled, State

from reelroute.flows.dispatch import DEPLOYMENT_OF_POOL, FLOW_NAME


@dataclass
class Deployment:
    id: uuid.UUID
    name: str


@dataclass
class FakePrefect:
    """The part of SyncPrefectClient that reelroute's dispatcher and reconciler use."""

    runs: dict[uuid.UUID, FlowRun] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)
    by_key: dict[str, uuid.UUID] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    pools: dict[str, int | None] = field(default_factory=dict)
    on_create: Callable[[FlowRun], None] | None = None
    """Runs right after a flow run is made (a test's way to change the world meanwhile)."""

    def __post_init__(self) -> None:
        for name in DEPLOYMENT_OF_POOL.values():
            full = f"{FLOW_NAME}/{name}"
            self.deployments[full] = Deployment(uuid.uuid4(), full)

    def read_deployment_by_name(self, name: str) -> Deployment:
        return self.deployments[name]

    def create_flow_run_from_deployment(
        self, deployment_id: uuid.UUID, *, idempotency_key: str, **options: Any
    ) -> FlowRun:
        if idempotency_key in self.by_key:  # Prefect answers the same run for the same key
            return self.runs[self.by_key[idempotency_key]]
        run = FlowRun(
            id=uuid.uuid4(),
            flow_id=uuid.uuid4(),
            deployment_id=deployment_id,
            name=idempotency_key,
            state=Scheduled(),
            parameters=options.get("parameters", {}),
            tags=options.get("tags", []),
            work_queue_name=options.get("work_queue_name"),
            idempotency_key=idempotency_key,
        )
        self.runs[run.id] = run
        self.by_key[idempotency_key] = run.id
        self.created.append({"deployment_id": deployment_id, "run": run, **options})
        if self.on_create is not None:
            self.on_create(run)
        return run

    def read_flow_runs(
        self,
        *,
        flow_run_filter: FlowRunFilter,
        limit: int,
        flow_filter: FlowFilter | None = None,
    ) -> list[FlowRun]:
        """By id, or (the zombie sweep) generate-video runs in some states."""
        runs = list(self.runs.values())
        if flow_run_filter.id is not None and flow_run_filter.id.any_ is not None:
            runs = [run for run in runs if run.id in set(flow_run_filter.id.any_)]
        if flow_run_filter.state is not None:
            assert flow_run_filter.state.type is not None
            types = set(flow_run_filter.state.type.any_ or [])
            runs = [run for run in runs if run.state is not None and run.state.type in types]
        if flow_filter is not None:
            assert flow_filter.name is not None and flow_filter.name.any_ == [FLOW_NAME]
        return runs[:limit]

    def set_flow_run_state(self, flow_run_id: uuid.UUID, state: State, force: bool = False) -> None:
        assert force, "reelroute forces its state changes"
        self.runs[flow_run_id].state = state

    def update_work_pool(self, name: str, update: Any) -> None:
        self.pools[name] = update.concurrency_limit

    def forget(self, flow_run_id: uuid.UUID) -> None:
        """The run vanished (Prefect's database was reset)."""
        del self.runs[flow_run_id]


@pytest.fixture
def prefect() -> FakePrefect:
    return FakePrefect()
