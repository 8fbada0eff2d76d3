"""The admin's mount: login with the admin token, nothing served before it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from reelroute.ui.admin.app import SANDBOX_BANNER, build_admin, check_login
from reelroute.ui.admin.context import AdminContext, prefect_ui_url
from reelroute.ui.app import create_app
from reelroute.ui.views import statistics as statistics_view

SECRET = "s3cret-" + "x" * 32


def test_login_is_admin_with_the_admin_token(settings):
    with_token = settings.replaced(admin_token=SecretStr(SECRET))
    assert check_login(with_token, "admin", SECRET)
    assert not check_login(with_token, "admin", "s3cre")
    assert not check_login(with_token, "root", SECRET)
    assert not check_login(settings.replaced(admin_token=None), "admin", "")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_pages_need_the_login(settings):
    app = create_app(settings.replaced(admin_token=SecretStr(SECRET)))
    with TestClient(app) as client:
        assert client.get("/admin/config").status_code == 401
        wrong = client.post("/admin/login", data={"username": "admin", "password": "nope"})
        assert wrong.status_code == 400
        right = client.post("/admin/login", data={"username": "admin", "password": SECRET})
        assert right.status_code == 200
        config = client.get("/admin/config")
        assert config.status_code == 200
        assert SECRET not in config.text  # the token never reaches the page
    app.state.engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_banner_shows_only_in_sandbox_mode(settings, engine):
    def config_of(sandbox: bool) -> str:
        context = AdminContext(settings.replaced(sandbox=sandbox), engine, None)
        return str(build_admin(context).get_config_file())

    assert "SANDBOX MODE" in config_of(True) and "sandbox-banner" in SANDBOX_BANNER
    assert "recorded only (REELROUTE_QUALITY_ACTION=accept), so videos complete" in config_of(True)
    assert "SANDBOX MODE" not in config_of(False)
    held = AdminContext(settings.replaced(sandbox=True, quality_action="review"), engine, None)
    assert "Wan videos wait on the Review page" in str(build_admin(held).get_config_file())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_status_chart_uses_the_badges_colours_and_time_bars_stand_side_by_side(
    settings, engine
):
    config = build_admin(AdminContext(settings, engine, None)).get_config_file()
    plots = {
        component["props"].get("title"): component["props"]
        for component in config["components"]
        if component.get("type") == "plot" or "color_map" in component.get("props", {})
    }
    assert plots["Items by status"]["color_map"] == statistics_view.STATUS_COLOUR_MAP
    finish = plots["Time to finish (created → video)"]
    assert finish["x"] == "bar" and finish["color_map"] == statistics_view.MEASURE_COLOUR_MAP


def test_prefect_links_follow_the_prefect_settings():
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: "http://10.0.0.5:4200/api"}):
        assert prefect_ui_url() == "http://10.0.0.5:4200"
    with temporary_settings(
        updates={
            PREFECT_API_URL: "http://10.0.0.5:4200/api",
            PREFECT_UI_URL: "https://flows.example/",
        }
    ):
        assert prefect_ui_url() == "https://flows.example"
