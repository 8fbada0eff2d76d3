"""The part of Prefect's client that the dispatcher, the planner and the reconciler use, as a
Protocol: `prefect.get_client(sync_client=True)` satisfies it, and so does the in-memory stand-in
of their unit tests (tests/flows/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.client.schemas.filters import FlowFilter, FlowRunFilter
from prefect.client.schemas.objects import FlowRun, State


class Deployment(Protocol):
    """What we read of a deployment."""

    @property
    def id(self) -> uuid.UUID:
        """Its id."""
        ...


class PrefectApi(Protocol):
    """Flow runs made, read and moved between states; a pool's concurrency."""

    def read_deployment_by_name(self, name: str) -> Deployment:
        """The deployment `flow/deployment`."""
        ...

    def create_flow_run_from_deployment(
        self,
        deployment_id: uuid.UUID,
        *,
        parameters: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        idempotency_key: str | None = None,
        work_queue_name: str | None = None,
    ) -> FlowRun:
        """One flow run (the same one again for the same idempotency key)."""
        ...

    def set_flow_run_state(
        self, flow_run_id: uuid.UUID, state: State[Any], force: bool = False
    ) -> object:
        """Move a flow run to `state`."""
        ...

    def read_flow_runs(
        self,
        *,
        flow_filter: FlowFilter | None = None,
        flow_run_filter: FlowRunFilter | None = None,
        limit: int | None = None,
    ) -> list[FlowRun]:
        """The flow runs matching the filters."""
        ...

    def update_work_pool(self, work_pool_name: str, work_pool: WorkPoolUpdate) -> None:
        """Change a pool (its concurrency limit)."""
        ...
