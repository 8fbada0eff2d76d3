"""A GPU host's choices: which GPUs, each pipeline process's environment."""

from __future__ import annotations

import pytest

from reelroute.deployments.gpu_host import detect_gpus, parse_gpus, server_env


@pytest.mark.parametrize(
    ("text", "gpus"),
    [
        ("0", ["0"]),
        ("0,1, 3", ["0", "1", "3"]),
        ("cpu,cpu", ["cpu:0", "cpu:1"]),
        ("cpu:0,cpu:1", ["cpu:0", "cpu:1"]),
    ],
)
def test_gpus_are_read_from_the_option(text, gpus):
    assert parse_gpus(text) == gpus


@pytest.mark.parametrize(
    ("text", "problem"),
    [("0,0", "names a GPU twice"), ("a100", "not a GPU number"), (" , ", "at least one")],
)
def test_a_bad_gpu_list_says_what_to_write(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_gpus(text)


def test_without_the_option_the_visible_cuda_devices_are_used(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert detect_gpus() == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == ["cpu:0"]


def test_each_pipeline_process_sees_its_own_gpu_only():
    base = {"PATH": "/bin", "REELROUTE_WAN_SERVERS": "/tmp/a.sock"}
    assert server_env(base, "3")["CUDA_VISIBLE_DEVICES"] == "3"
    cpu = server_env(base, "cpu:1")
    assert (cpu["CUDA_VISIBLE_DEVICES"], cpu["REELROUTE_WAN_DEVICE"]) == ("", "cpu")
    assert "REELROUTE_WAN_SERVERS" not in cpu  # a pipeline process is no client
