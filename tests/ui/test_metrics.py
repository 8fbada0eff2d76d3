"""GET /metrics: off by default, behind its own token or the loopback setting, and in the
Prometheus text format with the database's figures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from reelroute.models.assembly import Settings, load_settings
from reelroute.models.core.settings import SettingsError
from reelroute.ui.app import create_app
from tests.ui.helpers import ADMIN, populate

METRICS = "m" * 40

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@contextmanager
def served(
    settings: Settings,
    client: tuple[str, int] = ("testclient", 50000),
    base_url: str = "http://testserver",
) -> Iterator:
    app = create_app(settings)
    try:
        with TestClient(app, client=client, base_url=base_url) as test_client:
            yield test_client
    finally:
        app.state.engine.dispose()


@SQLITE
def test_metrics_are_off_unless_a_token_or_loopback_is_set(app_settings):
    with served(app_settings) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 404
    assert "REELROUTE_METRICS_TOKEN" in answer.json()["error"]


@SQLITE
def test_the_metrics_token_and_only_it_reads_them(app_settings):
    settings = app_settings.replaced(metrics_token=SecretStr(METRICS))
    with served(settings) as client:
        assert client.get("/metrics").status_code == 401
        admin = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
        assert admin.status_code == 403
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=")
        # The metrics token opens nothing else.
        other = client.get("/api/admin/stats", headers={"Authorization": f"Bearer {METRICS}"})
        assert other.status_code == 403
    assert METRICS not in answer.text


@SQLITE
def test_loopback_callers_read_them_without_a_token_when_allowed(app_settings):
    settings = app_settings.replaced(metrics_loopback=True)
    for host in ("http://localhost:7860", "http://127.0.0.1:7860", "http://[::1]:7860"):
        with served(settings, client=("127.0.0.1", 40000), base_url=host) as client:
            assert client.get("/metrics").status_code == 200, host
    with served(settings, client=("203.0.113.9", 40000), base_url="http://localhost") as client:
        assert client.get("/metrics").status_code == 401  # from elsewhere: the token


@SQLITE
def test_a_rebound_name_on_loopback_does_not_read_them(app_settings):
    """DNS rebinding: a page in a browser on this host whose name now points at 127.0.0.1
    connects from loopback but sends its own name as the Host."""
    settings = app_settings.replaced(metrics_loopback=True)
    with served(settings, client=("127.0.0.1", 40000), base_url="http://rebind.example") as c:
        assert c.get("/metrics").status_code == 401


@SQLITE
def test_the_route_checks_the_caller_itself(app_settings):
    """Without the guard in front (a route mounted elsewhere), /metrics still asks."""
    from fastapi import FastAPI

    from reelroute.ui.api import metrics

    settings = app_settings.replaced(metrics_token=SecretStr(METRICS))
    bare = FastAPI()
    bare.state.settings, bare.state.engine = settings, create_app(settings).state.engine
    bare.include_router(metrics.router)
    with TestClient(bare) as client:
        assert client.get("/metrics").status_code == 401
        authorised = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})
        assert authorised.status_code == 200
    bare.state.engine.dispose()


@SQLITE
def test_the_scrape_has_the_databases_figures(app_settings, engine):
    settings = app_settings.replaced(metrics_token=SecretStr(METRICS))
    populate(engine, settings)
    with served(settings) as client:
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS}"})
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    items = {
        (s.labels["provider"], s.labels["status"]): s.value
        for s in families["reelroute_items"].samples
    }
    assert items[("runway_veo3.1", "completed")] == 1 and items[("wan_local", "processing")] == 1
    assert families["reelroute_spent_credits"].type == "counter"
    spent = {
        s.labels["provider"]: s.value
        for s in families["reelroute_spent_credits"].samples
        if s.name == "reelroute_spent_credits_total"
    }
    assert spent["runway_veo3.1"] == 240 and spent["runway_gen4_turbo"] == 25
    assert families["reelroute_items"].type == "gauge"
    latency = families["reelroute_created_to_completed_seconds"]
    assert latency.type == "histogram"
    counts = {s.labels["provider"]: s.value for s in latency.samples if s.name.endswith("_count")}
    assert counts == {"wan_local": 1, "runway_gen4_turbo": 1, "runway_veo3.1": 1}
    buckets = [s for s in latency.samples if s.name.endswith("_bucket")]
    assert {s.labels["le"] for s in buckets} >= {"60.0", "1800.0", "+Inf"}


def test_a_metrics_token_equal_to_another_is_refused():
    with pytest.raises(SettingsError, match="REELROUTE_ADMIN_TOKEN and REELROUTE_METRICS_TOKEN"):
        load_settings(_env_file=None, admin_token=METRICS, metrics_token=METRICS)
