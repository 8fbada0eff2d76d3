"""REELROUTE_LOG_FORMAT=json under `reelroute up`: one item's lines are found, by its id, in
the web app's, the dispatcher's and its flow run's logs, and no secret is in any line."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.e2e.conftest import Up, wait_until
from tests.models.helpers import image_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TOKEN = "logs-e2e-" + "t" * 40


def records(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "logger" in entry:
            found.append(entry)
    return found


def every_log(up: Up) -> str:
    """`up`'s own output (the dispatcher runs in it) and each child's log (data/logs)."""
    children = sorted((up.folder / "data" / "logs").glob("*.log"))
    return "\n".join([up.output(), *(path.read_text(errors="replace") for path in children)])


def test_one_items_path_is_one_log_query(tmp_path):
    (tmp_path / "photo.png").write_bytes(image_bytes(64, 48))
    up = Up(tmp_path, REELROUTE_LOG_FORMAT="json", REELROUTE_ADMIN_TOKEN=TOKEN)
    try:
        up.start()
        api = f"http://127.0.0.1:{up.web_port}/api/admin"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        up.cli("add", "photo.png", "--prompt", "waves roll in", "--provider", "runway_gen4_turbo")
        [item] = httpx.get(f"{api}/queue", headers=headers).json()["data"]["items"]
        item_id = item["id"]

        def completed() -> bool:
            answer = httpx.get(f"{api}/items/{item_id}", headers=headers).json()
            assert answer["data"]["status"] != "failed", answer
            return answer["data"]["status"] == "completed"

        wait_until(completed, 240, "the item to complete")
        mine = [entry for entry in records(every_log(up)) if entry.get("item_id") == item_id]
        loggers = {entry["logger"] for entry in mine}
        assert "uvicorn.access" in loggers  # the web app answering about it
        assert "reelroute.flows.dispatch" in loggers  # the dispatcher making its run
        in_run = [entry for entry in mine if entry.get("flow_run_id") and entry.get("attempt")]
        assert {entry["logger"] for entry in in_run} - {"reelroute.flows.dispatch"}, loggers
        assert all(entry["provider"] == "runway_gen4_turbo" for entry in in_run)
    finally:
        up.stop()
    assert TOKEN not in every_log(up)


def test_a_whole_run_logs_no_secret_no_signed_query_and_no_line_per_request(tmp_path):
    """Every process of `reelroute up` (text logs, as a new user runs it) for a run that uses
    every secret: tokens, the signing key, a webhook endpoint's `whsec_` (registered and
    rotated), a receiver URL with a secret in its path and its query, the metrics token. No line
    of any log holds one, and no library writes a line per HTTP request."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secrets = {
        "admin": TOKEN,
        "worker": "logs-worker-" + "w" * 40,
        "metrics": "logs-metrics-" + "m" * 40,
        "key": "logs-signing-key-" + "k" * 40,
        "runway": "logs-runway-key-" + "r" * 40,
        "path": "path-secret-0123456789",
        "query": "query-secret-0123456789",
    }
    hook = f"http://127.0.0.1:{server.server_port}/hooks/{secrets['path']}?t={secrets['query']}"
    (tmp_path / "photo.png").write_bytes(image_bytes(64, 48))
    up = Up(
        tmp_path,
        REELROUTE_ADMIN_TOKEN=secrets["admin"],
        REELROUTE_WORKER_TOKEN=secrets["worker"],
        REELROUTE_METRICS_TOKEN=secrets["metrics"],
        REELROUTE_WEBHOOK_SIGNING_KEY=secrets["key"],
        REELROUTE_WEBHOOK_ALLOW_NETWORKS="127.0.0.0/8",
        REELROUTE_WEBHOOK_URL=hook,
        REELROUTE_RUNWAY_API_SECRET=secrets["runway"],
        REELROUTE_SANDBOX="true",
    )
    shown: list[str] = []
    try:
        up.start()
        base = f"http://127.0.0.1:{up.web_port}"
        admin = {"Authorization": f"Bearer {secrets['admin']}"}
        made = httpx.post(f"{base}/api/admin/webhooks", headers=admin, json={"url": hook + "x"})
        assert made.status_code == 200, made.text
        endpoint = made.json()["data"]
        shown.append(endpoint["secret"])
        rotated = httpx.post(
            f"{base}/api/admin/webhooks/{endpoint['id']}/rotate", headers=admin, json={}
        )
        assert rotated.status_code == 200, rotated.text
        shown.append(rotated.json()["data"]["secret"])
        up.cli("add", "photo.png", "--prompt", "waves roll in", "--provider", "runway_gen4_turbo")
        [item] = httpx.get(f"{base}/api/admin/queue", headers=admin).json()["data"]["items"]

        def completed() -> bool:
            answer = httpx.get(f"{base}/api/admin/items/{item['id']}", headers=admin).json()
            assert answer["data"]["status"] != "failed", answer
            return answer["data"]["status"] == "completed"

        wait_until(completed, 240, "the item to complete")
        metrics = httpx.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {secrets['metrics']}"}
        )
        assert metrics.status_code == 200
        time.sleep(3)  # the item's webhooks on their way
    finally:
        up.stop()
        server.shutdown()
        server.server_close()
    written = every_log(up)
    assert len(written.splitlines()) > 50  # a run's worth of lines was read
    for name, value in [*secrets.items(), *(("whsec", s) for s in shown)]:
        assert value not in written, f"the {name} secret is in a log"
    assert "whsec_" not in written
    per_request = [line for line in written.splitlines() if "HTTP Request:" in line]
    assert per_request == [], per_request[:5]
