"""Pieces of `reelroute up`: sandbox decision, absolute paths, worker environments."""

from __future__ import annotations

import socket
from pathlib import Path

from reelroute.deployments.launcher import (
    absolute_settings_env,
    free_port,
    port_is_free,
    sandbox_reason,
    worker_env,
)
from reelroute.models.settings import load_settings


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
    assert sandbox_reason(real.model_copy(update={"sandbox": True})) == "REELROUTE_SANDBOX=true"
    assert sandbox_reason(settings.model_copy(update={"sandbox": False})) is None


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
