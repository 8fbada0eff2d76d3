"""The admin pages in a real browser: Debian's chromium driven by Playwright against `reelroute
web` in its own process on loopback (fixtures and helpers of the browser tests)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from reelroute.deployments.launcher import Services, free_port, wait_until
from reelroute.models.assembly import Settings, settings_from_environment
from reelroute.models.store.db import make_engine

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-test-admin-token-0123456789"
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing (make test installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@dataclass
class Web:
    url: str
    engine: sa.Engine
    settings: Settings


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """`reelroute web` (REST API and admin) in its own process on loopback, in sandbox mode."""
    env = {
        **os.environ,
        "REELROUTE_DATABASE_URL": db_url,
        "REELROUTE_STORAGE_URL": str(tmp_path / "storage"),
        "REELROUTE_ADMIN_TOKEN": TOKEN,
        "REELROUTE_SANDBOX": "true",
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
    }
    port = free_port()
    services = Services()
    argv = [sys.executable, "-m", "reelroute", "web", "--port", str(port)]
    services.start("web", argv, env, tmp_path / "logs")
    try:
        wait_until(f"http://127.0.0.1:{port}/docs", 90, "the web app")
        settings = settings_from_environment(env)
        engine = make_engine(settings.store.database_url)
        yield Web(f"http://127.0.0.1:{port}", engine, settings)
        engine.dispose()
    finally:
        services.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("REELROUTE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(chromium: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def log_in(page, url: str, password: str = TOKEN) -> None:
    page.goto(f"{url}/admin/")
    page.get_by_label("username").fill("admin")
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


SETTLED = "() => !document.querySelector('.pending, .generating, .translucent')"


def screenshot(page, path: Path) -> None:
    """A screenshot once the page has settled: no component waiting for its update (Gradio
    greys a component out while its event runs, e.g. on each refresh tick)."""
    page.wait_for_function(SETTLED, timeout=WAIT_MS)
    page.wait_for_timeout(400)  # the fade back from grey
    page.wait_for_function(SETTLED, timeout=WAIT_MS)
    page.screenshot(path=path, full_page=True)


def pick(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).filter(visible=True).click()
    page.get_by_role("option", name=option, exact=True).click()
