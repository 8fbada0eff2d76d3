"""REELROUTE_LOG_FORMAT=json under `reelroute up`: one item's lines are found, by its id, in
the web app's, the dispatcher's and its flow run's logs, and no secret is in any line."""

from __future__ import annotations

import json

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
