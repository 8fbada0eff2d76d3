"""The web app's log lines about one item carry its id (REELROUTE_LOG_FORMAT=json)."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from fastapi.testclient import TestClient

from reelroute.models.core.logs import handler_for
from reelroute.ui.app import create_app
from tests.ui.helpers import ADMIN


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_request_about_an_item_logs_its_id(app_settings):
    settings = app_settings.replaced(log_format="json")
    stream = io.StringIO()
    handler = handler_for(settings, stream)
    security = logging.getLogger("reelroute.security")
    security.addHandler(handler)
    item_id = str(uuid.uuid4())
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            client.get(f"/api/admin/items/{item_id}", headers={"Authorization": "Bearer nope"})
            client.get("/api/admin/stats", headers={"Authorization": "Bearer nope"})
    finally:
        security.removeHandler(handler)
        app.state.engine.dispose()
    about_item, other = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert about_item["item_id"] == item_id and "401" in about_item["message"]
    assert "item_id" not in other
    assert ADMIN not in stream.getvalue()


def test_a_logged_url_loses_its_query_and_httpx_says_nothing_per_request(settings):
    import io
    import logging

    from reelroute.models.core.logs import handler_for, quiet_libraries

    stream = io.StringIO()
    logger = logging.getLogger("reelroute.test.urls")
    logger.addHandler(handler_for(settings, stream))
    logger.setLevel(logging.INFO)
    try:
        logger.info("fetched https://cdn.example.net/v.mp4?X-Amz-Signature=abcdef0123 in 2 s")
        quiet_libraries()
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert not logging.getLogger("httpcore").isEnabledFor(logging.INFO)
    finally:
        logger.handlers.clear()
    written = stream.getvalue()
    assert "https://cdn.example.net/v.mp4?…" in written and "abcdef0123" not in written
