"""`GET /api/admin/events`: Server-Sent Events of a batch, read from a real server, resumed
after a disconnect with `Last-Event-ID` without missing anything."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from pydantic import SecretStr

from reelroute.ui.app import create_app
from tests.models.helpers import image_bytes
from tests.ui.api_client import as_admin
from tests.ui.helpers import ADMIN, WORKER, live_server


def read_events(url: str, count: int, *, params=None, headers=None, timeout=30.0) -> list[dict]:
    """The first `count` events of a stream (then the connection is closed)."""
    found: list[dict] = []
    current: dict = {}
    with (
        httpx.Client(base_url=url, timeout=timeout) as http,
        http.stream(
            "GET", "/api/admin/events", params=params, headers={**as_admin(), **(headers or {})}
        ) as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "id" in current:
                found.append(current)
                current = {}
                if len(found) == count:
                    break
    return found


@pytest.mark.timeout(120)
@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_a_client_follows_a_batch_and_resumes_after_a_disconnect(settings):
    app = create_app(
        settings.replaced(
            admin_token=SecretStr(ADMIN),
            worker_token=SecretStr(WORKER),
            routing_policy="threshold",
        )
    )
    try:
        with live_server(app) as url, httpx.Client(base_url=url) as http:
            group = http.post("/api/admin/groups", headers=as_admin(), json={"name": "live"})
            group_id = group.json()["data"]["id"]
            other = http.post("/api/admin/groups", headers=as_admin(), json={"name": "other"})
            other_id = other.json()["data"]["id"]
            photos = {}
            for gid in (group_id, other_id):
                photos[gid] = http.post(
                    f"/api/admin/groups/{gid}/photos",
                    headers=as_admin(),
                    files=[("files", ("a.png", image_bytes(), "image/png"))],
                ).json()["data"][0]["id"]
            first: list[dict] = []
            reader = threading.Thread(
                target=lambda: first.extend(read_events(url, 3, params={"group_id": group_id}))
            )
            reader.start()
            time.sleep(1.0)  # connected: the stream starts with the next event
            created = []
            for gid in (group_id, other_id, group_id):  # the other group's is filtered out
                answer = http.post(
                    "/api/admin/tasks/add",
                    headers=as_admin(),
                    json={"group_id": gid, "tasks": [{"photo_id": photos[gid], "prompt": "p"}]},
                )
                created.append((gid, answer.json()["data"][0]["id"]))
            ours = [item for gid, item in created if gid == group_id]
            # Two of ours created, then one of them cancelled: three events of ours.
            http.post(f"/api/admin/tasks/{ours[0]}/cancel", headers=as_admin())
            reader.join(timeout=30)
            assert [e["event"] for e in first] == ["item.created", "item.created", "item.cancelled"]
            assert [e["data"]["data"]["item_id"] for e in first] == [ours[0], ours[1], ours[0]]
            # Disconnected now; meanwhile the other item of ours is cancelled.
            http.post(f"/api/admin/tasks/{ours[1]}/cancel", headers=as_admin())
            resumed = read_events(
                url,
                1,
                params={"group_id": group_id},
                headers={"Last-Event-ID": str(first[-1]["id"])},
            )
            assert [(e["event"], e["data"]["data"]["item_id"]) for e in resumed] == [
                ("item.cancelled", ours[1])
            ]
            assert resumed[0]["id"] > first[-1]["id"]
            # From the start of the group's events, by the query parameter: all four, in order.
            everything = read_events(url, 4, params={"group_id": group_id, "last_event_id": 0})
            assert [e["id"] for e in everything] == sorted(e["id"] for e in everything)
            assert [e["event"] for e in everything] == [
                "item.created",
                "item.created",
                "item.cancelled",
                "item.cancelled",
            ]
    finally:
        app.state.engine.dispose()


def test_the_webhook_payload_is_published_in_the_openapi_document(client):
    document = client.get("/openapi.json").json()
    post = document["webhooks"]["item-event"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/EventPayload"}
    payload = document["components"]["schemas"]["EventPayload"]
    assert set(payload["properties"]) == {"id", "type", "timestamp", "data"}
    kinds = document["components"]["schemas"]["EventType"]["enum"]
    assert "item.completed" in kinds and "item.failed" in kinds
