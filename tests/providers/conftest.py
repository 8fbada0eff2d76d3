"""The Runway emulator on loopback, and a provider wired to it through the real SDK; the tiny
Wan pipeline of every shape."""

from __future__ import annotations

import pytest

from reelroute.models.assembly import Settings, load_settings
from reelroute.providers.runway import RunwayProvider
from reelroute.providers.tiny_wan import ensure_tiny_wan
from reelroute.providers.wan_shapes import SHAPES
from tests.models.helpers import image_bytes


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


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """The tiny pipeline of every shape (built once per test session)."""
    root = tmp_path_factory.mktemp("tiny-wan")
    return {name: ensure_tiny_wan(root, name) for name in SHAPES}
