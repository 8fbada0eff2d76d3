"""Everything reelroute needs in Prefect, as code: pools, queues, deployments, the zombie
automation. `reelroute deploy` runs `deploy()`; running it twice changes nothing."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

from prefect import get_client
from prefect.automations import Automation
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound
from prefect.types.entrypoint import EntrypointType

from reelroute.flows.dispatch import DEFAULT_QUEUE, DEPLOYMENT_OF_POOL, GPU_QUEUES, URGENT_QUEUE
from reelroute.models.assembly import Settings
from reelroute.models.core import Pool

log = logging.getLogger(__name__)

ENTRYPOINT = "reelroute.flows.generate:generate_video"
ZOMBIE_AUTOMATION = "reelroute: crash zombie flow runs"
HEARTBEAT_SECONDS = 30  # PREFECT_FLOWS_HEARTBEAT_FREQUENCY the workers set for their runs


def ensure_pool(client: SyncPrefectClient, name: Pool, slots: int) -> None:
    """A process pool `name` with `slots` concurrency, an `urgent` queue served before
    `default` (on the gpu pool, each after its full-quality twin)."""
    try:
        client.read_work_pool(name)
        client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=slots))
    except ObjectNotFound:
        client.create_work_pool(
            WorkPoolCreate(
                name=name,
                type="process",
                concurrency_limit=slots,
                description=f"reelroute: {'Wan on GPUs' if name is Pool.gpu else 'Runway calls'}",
            )
        )
    # The pool's `default` queue comes with it; the gpu pool also has the queues of items that
    # require a full-quality preset. In the order they are served (Prefect keeps priorities
    # unique and moves the others up when one is taken, so each is set in turn).
    order = GPU_QUEUES if name is Pool.gpu else (URGENT_QUEUE, DEFAULT_QUEUE)
    for priority, queue in enumerate(order, start=1):
        found = {q.name: q for q in client.read_work_queues(work_pool_name=name)}.get(queue)
        if found is None:
            client.create_work_queue(queue, work_pool_name=name, priority=priority)
        elif found.priority != priority:
            client.update_work_queue(found.id, priority=priority)


def ensure_zombie_automation() -> None:
    """Runs whose heartbeats stop (a host died) become Crashed, freeing their pool slot; the
    reconciler then gives their item to the next attempt. Self-hosted Prefect has no built-in."""
    automation = Automation(
        name=ZOMBIE_AUTOMATION,
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=3 * HEARTBEAT_SECONDS),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message="no heartbeat for 3 intervals: the host is gone (reelroute)",
            )
        ],
    )
    try:
        existing = cast(Automation, Automation.read(name=ZOMBIE_AUTOMATION))
    except ValueError:
        automation.create()
        return
    automation.id = existing.id
    automation.update()


def job_variables(entrypoint: str = ENTRYPOINT) -> dict[str, Any]:
    """How the process workers start our flow runs: the engine command itself, loading the flow
    from the installed `reelroute` package (a worker host needs `pip install reelroute[...]`, no
    checkout). A configured command makes Prefect's process worker start one interpreter per
    flow run instead of two (a workspace supervisor, then the engine), and the entrypoint saves
    the engine reading the deployment (docs/performance.md). `python` is the worker's own
    interpreter: `reelroute worker` puts its folder first on the PATH of the runs it starts."""
    return {
        "command": "python -m prefect.engine",
        "env": {"PREFECT__FLOW_ENTRYPOINT": entrypoint},
    }


def deploy(settings: Settings) -> None:
    """Create or update pools, queues, both deployments and the zombie automation."""
    from reelroute.flows.generate import generate_video

    with get_client(sync_client=True) as client:
        for pool in DEPLOYMENT_OF_POOL:
            ensure_pool(client, pool, settings.dispatch.pool_slots(pool))
    for pool, name in DEPLOYMENT_OF_POOL.items():
        generate_video.deploy(
            name=name,
            work_pool_name=pool,
            work_queue_name=DEFAULT_QUEUE,
            description=f"One video item on pool {pool}",
            tags=[f"pool:{pool}"],
            job_variables=job_variables(),
            print_next_steps=False,
            ignore_warnings=True,
            build=False,
            push=False,
            # The deployment names the module, not a file: no pull step, no working folder.
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    ensure_zombie_automation()
    log.info("deployed generate-video/wan (pool gpu) and generate-video/runway (pool cloud)")
