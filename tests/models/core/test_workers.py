"""The worker id of a flow run: built and read back in one place."""

from __future__ import annotations

import uuid

import pytest

from reelroute.models.core.workers import flow_run_of, flow_run_worker_id


def test_a_flow_runs_worker_id_names_its_run_and_host():
    run = uuid.uuid4()
    worker_id = flow_run_worker_id(run, "gpu-host-3")
    assert worker_id == f"flow-run/{run}@gpu-host-3"
    assert flow_run_of(worker_id) == run


@pytest.mark.parametrize(
    "worker_id", [None, "gpu-box-7", "flow-run/not-a-uuid@h", "flow-runs/" + str(uuid.UUID(int=1))]
)
def test_anything_else_names_no_flow_run(worker_id):
    assert flow_run_of(worker_id) is None
