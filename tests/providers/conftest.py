"""The Runway emulator on loopback, and a provider wired to it through the real SDK."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reelroute.models.settings import Settings, load_settings
from reelroute.providers.emulator import EmulatorScript, EmulatorServer, RunwayEmulator
from reelroute.providers.runway import RunwayProvider
from tests.models.helpers import image_bytes


@pytest.fixture
def emulator() -> Iterator[RunwayEmulator]:
    with EmulatorServer(RunwayEmulator(EmulatorScript(latency_s=0.2))) as server:
        server.emulator.url = server.url  # type: ignore[attr-defined]
        yield server.emulator


@pytest.fixture
def runway_settings(emulator, tmp_path) -> Settings:
    return load_settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        runway_api_secret="test-key-123",
        runway_base_url=emulator.url,
        runway_poll_seconds=0.02,
        runway_task_timeout_seconds=20,
        runway_max_retries=0,
    )


@pytest.fixture
def runway(runway_settings) -> RunwayProvider:
    return RunwayProvider(runway_settings)


def photo(width: int = 64, height: int = 48, fmt: str = "PNG") -> bytes:
    return image_bytes(width, height, fmt, color=(30, 160, 220))
