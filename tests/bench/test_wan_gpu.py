"""`python -m bench.wan_gpu --whole`, on the CPU with `--reduced`: the script the lent GPU runs
(bench/wan_gpu_device.sh), end to end, on both models; its figures say that it works, not how
fast a GPU is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch


def run_whole(tmp_path: Path, model: str, presets: str) -> dict:
    report = tmp_path / f"{model}.json"
    command = [sys.executable, "-m", "bench.wan_gpu", "--whole", "--reduced", "--model", model]
    command += ["--presets", presets, "--out", str(tmp_path / "work"), "--json", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(report.read_text())


def test_whole_videos_of_every_5b_family_with_the_decoders(tmp_path):
    report = run_whole(tmp_path, "5b", "full,fast,fast-light,fastwan,fast-fp8-compute")
    assert report["model"] == "wan2.2-ti2v-5b" and report["device"] == "cpu"
    assert {"torch", "diffusers", "torchao"} <= set(report["versions"])
    presets = report["presets"]
    for name, steps in (("full", 50), ("fast", 4), ("fast-light", 4), ("fastwan", 3)):
        figures = presets[name]
        assert len(figures["videos"]) == 2 and figures["steps"] == steps
        assert figures["median_seconds"] > figures["decode_seconds"] > 0
        assert figures["spread"] >= 0 and "extrapolation_error" in figures
    assert presets["fastwan"]["scheduler"] == "FixedStepsScheduler"
    assert presets["fast"]["scheduler"] == "UniPCMultistepScheduler"
    assert presets["fast"]["time_against_full"] < 1
    # fp8 compute needs torchao and an Ada or Hopper GPU: on this CPU, the reason is the figure
    assert "compute capability 8.9" in presets["fast-fp8-compute"]["error"]
    decoders = report["decoders"]
    assert decoders["full"]["first_frame_ssim"] == pytest.approx(1.0)
    assert decoders["tiled"]["seconds"] > 0 and decoders["light"]["seconds"] > 0
    assert decoders["light"]["first_frame_ssim"] < 1.0  # another decoder, random weights


def test_whole_videos_of_the_a14b(tmp_path):
    report = run_whole(tmp_path, "a14b", "lightning")
    figures = report["presets"]["lightning"]
    assert report["model"] == "wan2.2-i2v-a14b" and figures["steps"] == 4
    assert len(figures["videos"]) == 2 and figures["scheduler"] == "FixedStepsScheduler"
