"""Another site in the admin's browser: under a real host name (not localhost), a page of another
origin gets no CORS grant, its requests to the admin pages are refused whatever they carry, and
the login cookie is SameSite=Lax. (The same attack from a real Chromium: tests/ui/admin/
test_cross_site_browser.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reelroute.models.assembly import Settings, load_settings
from reelroute.models.core.settings import SettingsError
from reelroute.ui.api.guard import foreign_origin, origin_of
from reelroute.ui.app import create_app
from tests.ui.helpers import ADMIN

HOST = "admin.example.com"
OWN = f"https://{HOST}"
EVIL = "https://evil.example"


@pytest.fixture
def site(app_settings: Settings) -> Iterator[TestClient]:
    """The app as a deployment behind a name sees it (Host: admin.example.com), logged in."""
    app = create_app(app_settings.replaced(allowed_origins=["https://app.partner.example"]))
    with TestClient(app, base_url=f"http://{HOST}", raise_server_exceptions=False) as client:
        login = client.post(
            "/admin/login", data={"username": "admin", "password": ADMIN}, headers={"origin": OWN}
        )
        assert login.status_code == 200, login.text
        yield client
    app.state.engine.dispose()


def test_the_login_cookie_is_same_site_lax(app_settings):
    app = create_app(app_settings)
    with TestClient(app, base_url=f"http://{HOST}") as client:
        login = client.post("/admin/login", data={"username": "admin", "password": ADMIN})
    app.state.engine.dispose()
    cookies = login.headers.get_list("set-cookie")
    assert len(cookies) == 2
    for cookie in cookies:
        assert "samesite=lax" in cookie.lower(), cookie
        assert "samesite=none" not in cookie.lower(), cookie


def test_a_preflight_from_another_site_gets_no_grant(site):
    answer = site.options(
        "/admin/gradio_api/queue/join",
        headers={
            "origin": EVIL,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-credentials" not in answer.headers


@pytest.mark.parametrize("path", ["/admin/config", "/admin/gradio_api/info"])
def test_a_read_with_the_cookie_from_another_site_is_refused(site, path):
    answer = site.get(path, headers={"origin": EVIL})
    assert answer.status_code == 403
    assert EVIL in answer.json()["error"]
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-credentials" not in answer.headers


def test_a_button_press_from_another_site_is_refused(site):
    body = {"data": [], "fn_index": 0, "session_hash": "x", "event_data": None, "trigger_id": 1}
    for headers in ({"origin": EVIL}, {"referer": f"{EVIL}/page.html"}, {"origin": "null"}):
        answer = site.post("/admin/gradio_api/queue/join", json=body, headers=headers)
        assert answer.status_code == 403, headers


def test_the_own_pages_and_programs_still_pass(site):
    assert site.get("/admin/config", headers={"origin": OWN}).status_code == 200
    assert site.get("/admin/config").status_code == 200  # no browser: no Origin
    # A link from another site is a navigation: no Origin, a Referer, a safe method.
    assert site.get("/admin/", headers={"referer": f"{EVIL}/x"}).status_code == 200


def test_the_public_url_is_an_own_origin(app_settings):
    settings = app_settings.replaced(public_url="https://videos.example.com/")
    headers = {"host": "127.0.0.1:7860", "origin": "https://videos.example.com"}
    assert foreign_origin("POST", headers, settings) is None
    assert foreign_origin("POST", {**headers, "origin": EVIL}, settings) == EVIL


def test_an_origin_on_another_port_or_scheme_is_foreign(app_settings):
    headers = {"host": "127.0.0.1:7860"}
    assert (
        foreign_origin("POST", {**headers, "origin": "http://127.0.0.1:7860"}, app_settings) is None
    )
    assert foreign_origin("POST", {**headers, "origin": "http://127.0.0.1:9999"}, app_settings)
    assert foreign_origin("POST", {"host": HOST, "origin": f"http://{HOST}:8443"}, app_settings)
    assert origin_of("https://A.Example:443/path?q") == "https://a.example"


def test_only_listed_origins_may_read_the_api(site):
    preflight = {"access-control-request-method": "GET"}
    partner = site.options(
        "/api/admin/stats", headers={"origin": "https://app.partner.example", **preflight}
    )
    assert partner.headers["access-control-allow-origin"] == "https://app.partner.example"
    assert "access-control-allow-credentials" not in partner.headers
    evil = site.options("/api/admin/stats", headers={"origin": EVIL, **preflight})
    assert "access-control-allow-origin" not in evil.headers
    # A listed origin is still not the admin pages' own.
    listed = site.get("/admin/config", headers={"origin": "https://app.partner.example"})
    assert listed.status_code == 403


def test_an_allowed_origin_must_be_an_origin():
    with pytest.raises(SettingsError, match="REELROUTE_ALLOWED_ORIGINS"):
        load_settings(_env_file=None, allowed_origins="https://app.example.com/path")
