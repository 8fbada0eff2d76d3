"""Choosing the provider of an item, and sandbox mode's wiring."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from reelroute.models.assembly import load_settings
from reelroute.models.core.catalogue import (
    CATALOGUE,
    info,
    nearest_duration,
    ratio_for,
    requested_seconds,
)
from reelroute.models.core.enums import InferenceProvider
from reelroute.providers.base import ConfigurationError, GenerationRequest
from reelroute.providers.registry import provider_for
from reelroute.providers.runway import RunwayProvider
from reelroute.providers.wan import WanProvider
from tests.providers.conftest import photo


def test_each_provider_has_its_pool_and_model():
    assert {p: (i.pool, i.model) for p, i in CATALOGUE.items()} == {
        InferenceProvider.wan_local: ("gpu", "Wan2.2-TI2V-5B"),
        InferenceProvider.runway_gen4_turbo: ("cloud", "gen4_turbo"),
        InferenceProvider.runway_gen4_5: ("cloud", "gen4.5"),
        InferenceProvider.runway_veo3_1_fast: ("cloud", "veo3.1_fast"),
        InferenceProvider.runway_veo3_1: ("cloud", "veo3.1"),
    }
    assert set(CATALOGUE) == set(InferenceProvider)  # every provider has its entry
    assert [info(p).label for p in CATALOGUE] == [
        "WAN local (GPU server)",
        "Runway Gen-4 Turbo (fast)",
        "Runway Gen-4.5 (newest Runway model)",
        "Runway Veo 3.1 Fast",
        "Runway Veo 3.1 (best quality)",
    ]
    assert info(InferenceProvider.runway_veo3_1).estimate_credits(8) == 320
    assert info(InferenceProvider.runway_gen4_5).credits_for(None, 121) == 60
    assert info(InferenceProvider.runway_veo3_1_fast).credits_for(5, None) == 90  # 6 s


def test_duration_rules():
    veo = info(InferenceProvider.runway_veo3_1)
    assert [nearest_duration(veo, s) for s in (1, 4, 5, 6, 7, 9, 10)] == [4, 4, 6, 6, 8, 8, 8]
    turbo = info(InferenceProvider.runway_gen4_turbo)
    assert [nearest_duration(turbo, s) for s in (1, 5, 10)] == [2, 5, 10]
    assert requested_seconds(None, 121) == 5 and requested_seconds(None, 81) == 3
    assert requested_seconds(7, 121) == 7 and requested_seconds(None, None) == 5
    assert ratio_for(veo, 1000, 1000) == "1280:720"  # Veo has no square: the nearest shape


def test_provider_for_each_provider(tmp_path):
    settings = load_settings(_env_file=None, storage_url=str(tmp_path / "s"))
    assert isinstance(provider_for(InferenceProvider.wan_local, settings), WanProvider)
    runway = provider_for(InferenceProvider.runway_veo3_1, settings)
    assert isinstance(runway, RunwayProvider)
    with pytest.raises(ConfigurationError, match="RUNWAYML_API_SECRET"):
        runway.generate(
            GenerationRequest(uuid.uuid4(), InferenceProvider.runway_veo3_1, photo(), "x"),
            on_progress=lambda _: None,
            on_task=lambda _: None,
        )


def test_sandbox_mode_sends_runway_calls_to_the_emulator(tmp_path, emulator):
    settings = load_settings(_env_file=None, sandbox=True, storage_url=str(tmp_path / "s"))
    default = provider_for(InferenceProvider.runway_gen4_turbo, settings)
    assert isinstance(default, RunwayProvider)
    assert default.settings.runway.base_url == "http://127.0.0.1:8181"
    settings = settings.replaced(runway_base_url=emulator.url, runway_poll_seconds=0.02)
    provider = provider_for(InferenceProvider.runway_gen4_turbo, settings)
    result = provider.generate(
        GenerationRequest(uuid.uuid4(), InferenceProvider.runway_gen4_turbo, photo(), "x"),
        on_progress=lambda _: None,
        on_task=lambda _: None,
    )
    assert result.model == "gen4_turbo" and emulator.count("POST") == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_emulator_command_serves_the_api():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "reelroute", "emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "REELROUTE_DATABASE_URL": "sqlite://"},
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/v1/tasks/none",
                    headers={"Authorization": "Bearer k", "X-Runway-Version": "2024-11-06"},
                )
                break
            except httpx.ConnectError:
                assert time.time() < deadline and process.poll() is None
                time.sleep(0.2)
        assert answer.status_code == 404 and answer.json() == {"error": "Task not found"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        process.stdout.close()
