"""Pieces of `reelroute up`: sandbox decision, absolute paths, worker environments."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from reelroute.deployments.launcher import (
    Services,
    absolute_settings_env,
    free_port,
    port_is_free,
    sandbox_reason,
    worker_env,
)
from reelroute.models.assembly import load_settings


def test_sandbox_when_key_or_weights_are_missing(tmp_path):
    settings = load_settings(_env_file=None, wan_model=str(tmp_path / "none"))
    reason = sandbox_reason(settings)
    assert "RUNWAYML_API_SECRET" in reason and "REELROUTE_WAN_MODEL" in reason
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model_index.json").write_text("{}")
    real = load_settings(
        _env_file=None, wan_model=str(tmp_path / "weights"), runway_api_secret="key"
    )
    assert sandbox_reason(real) is None
    assert sandbox_reason(real.replaced(sandbox=True)) == "REELROUTE_SANDBOX=true"
    assert sandbox_reason(settings.replaced(sandbox=False)) is None


def test_relative_paths_become_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        _env_file=None, database_url="sqlite:///data/r.db", storage_url="data/storage"
    )
    env = absolute_settings_env(settings)
    assert env["REELROUTE_DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'data/r.db'}"
    assert Path(env["REELROUTE_STORAGE_URL"]).is_absolute()
    remote = load_settings(
        _env_file=None, storage_url="s3://bucket/x", database_url="postgresql+psycopg://u@h/db"
    )
    assert absolute_settings_env(remote) == {}


def test_each_gpu_worker_sees_only_its_gpu():
    env = worker_env({"PATH": "/bin"}, gpu=1)
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
    assert "CUDA_VISIBLE_DEVICES" not in worker_env({"PATH": "/bin"})


def test_a_free_port_is_free_until_something_listens_on_it():
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free(port)


def test_flow_runs_of_a_worker_find_its_interpreter_first_on_the_path():
    import os
    import sys

    env = worker_env({"PATH": f"/usr/bin{os.pathsep}{Path(sys.executable).parent}"})
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]


def test_a_child_that_dies_is_restarted_with_a_growing_backoff(tmp_path):
    services = Services()
    services.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path)
    first = services.children[0].process
    try:
        assert services.supervise() == []
        first.kill()
        first.wait()
        now = time.monotonic()
        (died,) = services.supervise(now)
        assert died.startswith("sleeper exited with -9; restarting in 1 s")
        assert services.supervise(now + 0.5) == []  # waits out its backoff
        assert services.supervise(now + 1.1) == ["sleeper restarted (restart 1)"]
        second = services.children[0].process
        assert second.pid != first.pid and second.poll() is None
        second.kill()
        second.wait()
        (again,) = services.supervise(now + 3)
        assert "restarting in 2 s" in again  # the backoff doubles
    finally:
        services.stop()
    assert services.children == []


SUPERVISOR = """
import signal, sys, time
from reelroute.deployments.launcher import Services
services = Services()
stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
services.start("stubborn", [sys.executable, "-c", stubborn], {}, None,
               death_signal=getattr(signal, sys.argv[1]) if sys.argv[1] != "None" else None)
print(services.children[0].process.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize(("death_signal", "survives"), [("SIGKILL", False), ("None", True)])
def test_a_child_given_a_death_signal_dies_with_its_supervisor_even_by_sigkill(
    death_signal, survives
):
    # A GPU host's Prefect worker ignores a polite end while it has flow runs; killed by SIGKILL
    # with its host, it can no longer start flow runs whose pipeline processes are gone.
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, death_signal], stdout=subprocess.PIPE, text=True
    )
    assert supervisor.stdout is not None
    child = psutil.Process(int(supervisor.stdout.readline()))
    try:
        supervisor.kill()
        supervisor.wait()
        try:
            child.wait(timeout=10)
            alive = False
        except psutil.TimeoutExpired:
            alive = True
        assert alive is survives
    finally:
        with contextlib.suppress(psutil.Error):
            child.kill()
        supervisor.stdout.close()
