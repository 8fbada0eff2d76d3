"""Fixtures of the API tests: the web app with known tokens, and a client of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from reelroute.models.assembly import Settings
from reelroute.ui.app import create_app
from tests.ui.helpers import ADMIN, WORKER


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    # The seed's routing rules (tasks without a provider go to Gen-4 Turbo): the API tests are
    # about the API's protocol; test_routing.py and the deadline tests are about routing.
    return settings.replaced(
        admin_token=SecretStr(ADMIN),
        worker_token=SecretStr(WORKER),
        routing_policy="threshold",
    )


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    app = create_app(app_settings)
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()
