"""Who holds an item (`video_items.worker_id`): a Prefect flow run, or a pull worker's own name.

A flow run holds its item as `flow-run/<flow run id>@<host>`; the reconciler reads the flow run
back from it to judge whether the holder is still alive. This module is the one place that
writes and reads that format.
"""

from __future__ import annotations

import uuid

FLOW_RUN_PREFIX = "flow-run/"


def flow_run_worker_id(flow_run_id: uuid.UUID, host: str) -> str:
    """The worker id of the flow run `flow_run_id` running on `host`."""
    return f"{FLOW_RUN_PREFIX}{flow_run_id}@{host}"


def flow_run_of(worker_id: str | None) -> uuid.UUID | None:
    """The flow run a worker id names, or None for a pull worker (or no holder)."""
    if worker_id is None or not worker_id.startswith(FLOW_RUN_PREFIX):
        return None
    run, _, _host = worker_id.removeprefix(FLOW_RUN_PREFIX).partition("@")
    try:
        return uuid.UUID(run)
    except ValueError:
        return None


def host_of(worker_id: str | None) -> str | None:
    """The host a flow run's worker id names (`…@gpu-a` -> `gpu-a`), or None."""
    if worker_id is None or not worker_id.startswith(FLOW_RUN_PREFIX):
        return None
    _run, _, host = worker_id.partition("@")
    return host or None
