"""The dispatcher: feeds Prefect from the database just in time.

For each pool it makes flow runs for the next pending items (earliest due first), no more than
the pool can run soon (models.items.dispatch.plan_dispatch: its slots plus a small look-ahead, minus
what is already in flight; for Runway, each model's own concurrency), with the idempotency key
`<item id>:<attempt>`. The backlog stays in our database, where routing,
priorities and cancels are plain SQL; Prefect sees a handful of Scheduled runs per pool.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from prefect.states import Cancelled

from reelroute.flows.prefect_api import PrefectApi
from reelroute.models.assembly import Settings
from reelroute.models.core import Pool, log_context
from reelroute.models.items import mark_dispatched, plan_dispatch
from reelroute.models.money import last_limits
from reelroute.models.store import session_scope

log = logging.getLogger(__name__)

FLOW_NAME = "generate-video"
DEPLOYMENT_OF_POOL = {Pool.gpu: "wan", Pool.cloud: "runway"}
URGENT_QUEUE, DEFAULT_QUEUE = "urgent", "default"
FULL_QUALITY_SUFFIX = "-full"
"""Items whose group requires a full-quality Wan preset go to `urgent-full` and `default-full`
of the gpu pool, which only GPU hosts running such a preset poll."""
GPU_QUEUES = (
    URGENT_QUEUE + FULL_QUALITY_SUFFIX,
    URGENT_QUEUE,
    DEFAULT_QUEUE + FULL_QUALITY_SUFFIX,
    DEFAULT_QUEUE,
)
"""The gpu pool's work queues in the order they are served."""


def queue_of(pool: Pool, priority: int, wan_full_quality: bool) -> str:
    """The work queue of an item's flow run."""
    queue = URGENT_QUEUE if priority == 0 else DEFAULT_QUEUE
    if pool is Pool.gpu and wan_full_quality:
        queue += FULL_QUALITY_SUFFIX
    return queue


def queues_for(pool: Pool, full_quality: bool) -> list[str] | None:
    """The queues a worker polls: None (all of them) except on a GPU host whose preset does
    not keep the model card's quality."""
    if pool is not Pool.gpu or full_quality:
        return None
    return [URGENT_QUEUE, DEFAULT_QUEUE]


@dataclass
class Dispatcher:
    """Makes flow runs for pending items; one instance per process, reused every interval."""

    engine: sa.Engine
    client: PrefectApi
    settings: Settings
    _deployments: dict[Pool, uuid.UUID] = field(default_factory=dict)

    def deployment_id(self, pool: Pool) -> uuid.UUID:
        """The id of the pool's generate-video deployment (read once)."""
        if pool not in self._deployments:
            name = f"{FLOW_NAME}/{DEPLOYMENT_OF_POOL[pool]}"
            self._deployments[pool] = self.client.read_deployment_by_name(name).id
        return self._deployments[pool]

    def dispatch_once(self) -> int:
        """One pass over both pools; returns how many flow runs were made."""
        made = 0
        for pool in Pool:
            with session_scope(self.engine) as session:
                limits = last_limits(session) if pool is Pool.cloud else None
                items = plan_dispatch(session, pool=pool, settings=self.settings, limits=limits)
            for item in items:
                run = self.client.create_flow_run_from_deployment(
                    self.deployment_id(pool),
                    parameters={
                        "item_id": str(item.item_id),
                        "attempt": item.attempt,
                        "provider": item.inference_provider.value,
                        "group": str(item.group_id or ""),
                    },
                    idempotency_key=f"{item.item_id}:{item.attempt}",
                    tags=[
                        f"provider:{item.inference_provider.value}",
                        f"pool:{pool.value}",
                        f"group:{item.group_id}",
                    ],
                    work_queue_name=queue_of(pool, item.priority, item.wan_full_quality),
                )
                with session_scope(self.engine) as session:
                    stored = mark_dispatched(
                        session,
                        item_id=item.item_id,
                        retry_count=item.retry_count,
                        flow_run_id=run.id,
                        provider=item.inference_provider,
                    )
                if not stored:  # cancelled or taken meanwhile: the run must not wait for it
                    self.client.set_flow_run_state(
                        run.id, Cancelled(message="the item changed before dispatch"), force=True
                    )
                    continue
                made += 1
                with log_context(
                    item_id=item.item_id,
                    attempt=item.attempt,
                    provider=item.inference_provider.value,
                    flow_run_id=run.id,
                ):
                    log.info(
                        "dispatched item %s attempt %s as flow run %s",
                        item.item_id,
                        item.attempt,
                        run.id,
                    )
        return made
