"""A Prefect stand-in for the dispatcher's and reconciler's unit tests.

It keeps flow runs in memory with Prefect's own schema objects and states, and behaves as the
server does where our code depends on it: one run per idempotency key, runs readable by id, a
forced state change applied as given. The end-to-end tests run the real server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.client.schemas.filters import FlowFilter, FlowRunFilter
from prefect.client.schemas.objects import FlowRun, State
from prefect.states import Scheduled
from pydantic import SecretStr

from reelroute.flows.dispatch import DEPLOYMENT_OF_POOL, FLOW_NAME
from reelroute.flows.prefect_api import PrefectApi
from reelroute.models.assembly import Settings
from tests.flows.receivers import KEY, Receiver


@dataclass
class Deployment:
    id: uuid.UUID
    name: str


@dataclass
class FakePrefect:
    """reelroute.flows.prefect_api.PrefectApi in memory."""

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
        self,
        deployment_id: uuid.UUID,
        *,
        parameters: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        idempotency_key: str | None = None,
        work_queue_name: str | None = None,
    ) -> FlowRun:
        assert idempotency_key is not None, "reelroute makes every run with a key"
        if idempotency_key in self.by_key:  # Prefect answers the same run for the same key
            return self.runs[self.by_key[idempotency_key]]
        run = FlowRun(
            id=uuid.uuid4(),
            flow_id=uuid.uuid4(),
            deployment_id=deployment_id,
            name=idempotency_key,
            state=Scheduled(),
            parameters=parameters or {},
            tags=list(tags or []),
            work_queue_name=work_queue_name,
            idempotency_key=idempotency_key,
        )
        self.runs[run.id] = run
        self.by_key[idempotency_key] = run.id
        self.created.append(
            {
                "deployment_id": deployment_id,
                "run": run,
                "parameters": parameters or {},
                "tags": list(tags or []),
                "work_queue_name": work_queue_name,
                "idempotency_key": idempotency_key,
            }
        )
        if self.on_create is not None:
            self.on_create(run)
        return run

    def read_flow_runs(
        self,
        *,
        flow_filter: FlowFilter | None = None,
        flow_run_filter: FlowRunFilter | None = None,
        limit: int | None = None,
    ) -> list[FlowRun]:
        """By id, or (the zombie sweep) generate-video runs in some states."""
        assert flow_run_filter is not None
        runs = list(self.runs.values())
        if flow_run_filter.id is not None and flow_run_filter.id.any_ is not None:
            runs = [run for run in runs if run.id in set(flow_run_filter.id.any_)]
        if flow_run_filter.state is not None:
            assert flow_run_filter.state.type is not None
            types = set(flow_run_filter.state.type.any_ or [])
            runs = [run for run in runs if run.state is not None and run.state.type in types]
        if flow_filter is not None:
            assert flow_filter.name is not None and flow_filter.name.any_ == [FLOW_NAME]
        return runs[:limit] if limit is not None else runs

    def set_flow_run_state(
        self, flow_run_id: uuid.UUID, state: State[Any], force: bool = False
    ) -> None:
        assert force, "reelroute forces its state changes"
        self.runs[flow_run_id].state = state

    def update_work_pool(self, work_pool_name: str, work_pool: WorkPoolUpdate) -> None:
        self.pools[work_pool_name] = work_pool.concurrency_limit

    def forget(self, flow_run_id: uuid.UUID) -> None:
        """The run vanished (Prefect's database was reset)."""
        del self.runs[flow_run_id]


@pytest.fixture
def prefect() -> FakePrefect:
    return FakePrefect()


def _a_prefect_api(fake: FakePrefect) -> PrefectApi:
    """mypy checks here that the stand-in satisfies the Protocol the flows accept."""
    return fake


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.replaced(
        webhook_signing_key=SecretStr(KEY),
        webhook_allow_networks="127.0.0.0/8",
        public_url="https://videos.example.com",
    )
