"""A hostile page in the admin's browser (real Chromium): the admin is logged in to the admin
pages at one origin; a page served from another origin (a second local port) replays the
"Set cap" button's own request with the admin's cookie, to raise the cap. Nothing changes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from reelroute.deployments.launcher import free_port
from reelroute.models.money.tables import Budget
from tests.ui.admin.conftest import WAIT_MS, log_in, pick

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["postgresql"], indirect=True),
]

HOSTILE_PAGE = """<!doctype html><title>loading</title><script>
const admin = {admin};
const body = {body};
async function attack() {{
  const said = [];
  try {{
    const join = await fetch(admin + "/admin/gradio_api/queue/join", {{
      method: "POST", credentials: "include", body: JSON.stringify(body),
      headers: {{"content-type": "application/json"}},
    }});
    said.push("join " + join.status);
    const data = await fetch(
      admin + "/admin/gradio_api/queue/data?session_hash=" + body.session_hash,
      {{credentials: "include"}});
    said.push("data " + data.status + " " + (await data.text()).slice(0, 200));
  }} catch (error) {{
    said.push("blocked: " + error);
  }}
  document.title = "done " + said.join(" | ");
}}
attack();
</script>"""


@pytest.fixture
def hostile_site() -> Iterator[tuple[str, dict[str, str]]]:
    """A web server on another port that serves whatever page the test puts in its dict."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            content = pages.get(self.path, "").encode()
            self.send_response(200 if content else 404)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *_args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", pages
    server.shutdown()
    server.server_close()


def caps(engine: sa.Engine) -> list[int]:
    with Session(engine) as session:
        return [budget.cap_credits for budget in session.exec(select(Budget)).all()]


def test_a_page_of_another_site_cannot_press_an_admin_button(web, page, hostile_site):
    from playwright.sync_api import expect

    log_in(page, web.url)
    expect(page.get_by_text("reelroute admin")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("tab", name="Budgets").click()
    pick(page, "Provider", "Runway Gen-4 Turbo (fast)")
    page.get_by_label("Cap ($)").fill("1")
    with page.expect_request(lambda r: "/queue/join" in r.url) as pressed:
        page.get_by_role("button", name="Set cap").click()
    expect(page.get_by_text("Cap set: $1.00 per day")).to_be_visible(timeout=WAIT_MS)
    assert caps(web.engine) == [100]

    # The same request, with the cap raised to $9,999, from a page of another origin opened
    # in the same browser (the admin's cookie goes with its requests as a browser sends it).
    body = json.loads(pressed.value.post_data or "{}")
    body["data"] = [9999 if value == 1 else value for value in body["data"]]
    body["session_hash"] = "hostile0001"
    url, pages = hostile_site
    pages["/"] = HOSTILE_PAGE.format(admin=json.dumps(web.url), body=json.dumps(body))
    hostile = page.context.new_page()
    hostile.goto(url + "/")
    hostile.wait_for_function("document.title.startsWith('done')", timeout=WAIT_MS)
    said = hostile.title()
    assert "blocked" in said, said
    page.wait_for_timeout(1500)  # had the join gone through, its event would have run by now
    assert caps(web.engine) == [100]
