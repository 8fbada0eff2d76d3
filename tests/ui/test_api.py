"""The REST API: every endpoint, happy and error paths, auth on every route, seed shapes."""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from reelroute.models.core.enums import InferenceProvider
from reelroute.models.core.tables import VideoItem
from reelroute.providers.video import encode_mp4
from reelroute.ui.app import create_app
from tests.models.helpers import image_bytes
from tests.ui.api_client import add, as_admin, claim, complete, mp4_of, new_group, upload
from tests.ui.helpers import ADMIN, WORKER

UNKNOWN = uuid.UUID("5d0c6a53-2f7e-4e43-9b1a-0c4a0c8e7d11")  # no such item, group or task
ROUTES = [
    ("post", "/api/admin/tasks/add"),
    ("get", "/api/admin/stats"),
    ("get", "/api/admin/queue"),
    ("post", f"/api/admin/tasks/{UNKNOWN}/cancel"),
    ("post", f"/api/admin/tasks/{UNKNOWN}/retry"),
    ("post", "/api/admin/groups"),
    ("post", f"/api/admin/groups/{UNKNOWN}/photos"),
    ("get", f"/api/admin/items/{UNKNOWN}/video"),
    ("get", f"/api/admin/items/{UNKNOWN}"),
    ("get", "/api/admin/budgets"),
    ("put", "/api/admin/budgets"),
    ("get", "/api/admin/providers"),
    ("get", "/api/admin/events"),
    ("post", "/api/admin/webhooks"),
    ("get", "/api/admin/webhooks"),
    ("patch", f"/api/admin/webhooks/{UNKNOWN}"),
    ("post", f"/api/admin/webhooks/{UNKNOWN}/rotate"),
    ("delete", f"/api/admin/webhooks/{UNKNOWN}"),
    ("get", "/api/admin/webhooks/dead"),
    ("post", "/api/admin/webhooks/deliveries/1/resend"),
]
WORKER_ROUTES = [
    ("post", "/api/worker/next-task"),
    ("post", f"/api/worker/tasks/{UNKNOWN}/heartbeat"),
    ("post", f"/api/worker/tasks/{UNKNOWN}/complete"),
    ("post", f"/api/worker/tasks/{UNKNOWN}/fail"),
]


def test_the_token_check_covers_every_route(client):
    app = client.app
    paths = {(m.lower(), r.path) for r in app.routes for m in getattr(r, "methods", ())}
    known = {
        (m, re.sub(r"\{\w+\}", "{}", p))
        for m, p in ROUTES + WORKER_ROUTES
        for p in [p.replace(str(UNKNOWN), "{x}").replace("/1/", "/{x}/")]
    }
    api = {(m, re.sub(r"\{\w+\}", "{}", p)) for m, p in paths if p.startswith("/api/")}
    assert api - {("head", p) for _, p in api} <= known, sorted(api - known)


@pytest.mark.parametrize(("method", "path"), ROUTES + WORKER_ROUTES)
def test_every_route_needs_its_token(client, method, path):
    wrong = WORKER if path.startswith("/api/admin") else ADMIN
    assert getattr(client, method)(path).status_code == 401
    assert getattr(client, method)(path, headers=as_admin("nonsense")).status_code == 401
    answer = getattr(client, method)(path, headers=as_admin(wrong))
    assert answer.status_code == 403 and "token" in answer.json()["error"]


def test_the_seeds_add_tasks_request_and_answer(client, session):
    group = new_group(client)
    photos = upload(
        client,
        group,
        ("a.png", image_bytes(64, 48), "image/png"),
        ("b.jpg", image_bytes(48, 64, "JPEG"), "image/jpeg"),
    )
    answer = add(
        client,
        group,
        [
            {
                "photo_id": photos[0]["id"],
                "prompt": "waves",
                "frame_num": 121,
                "inference_provider": "runway_veo3.1",
            },
            {"photo_id": photos[1]["id"], "prompt": "pan"},
            {"photo_id": photos[1]["id"], "prompt": "zoom", "inference_provider": "auto"},
        ],
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    rows = body["data"]
    assert [r["inference_provider"] for r in rows] == [
        "runway_veo3.1",
        "runway_gen4_turbo",
        "runway_gen4_turbo",
    ]
    assert [(r["status"], r["retry_count"], r["frame_num"]) for r in rows] == [
        ("pending", 0, 121),
        ("pending", 0, None),
        ("pending", 0, None),
    ]
    assert rows[0]["routed_by"] == "explicit" and rows[1]["routed_by"] == "default"


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"inference_provider": "veo3"}, "'veo3' is not a provider"),
        ({"prompt": ""}, "prompt: is empty"),
        ({"frame_num": 100}, "frame_num: 100 is not a frame count"),
        ({"photo_id": str(uuid.uuid4())}, "no photo"),
    ],
)
def test_a_batch_with_one_bad_task_writes_nothing(client, task, message):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    good = {"photo_id": photo["id"], "prompt": "fine"}
    answer = add(client, group, [good, {**good, **task}])
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert answer.json()["success"] is False
    stats = client.get("/api/admin/stats", headers=as_admin()).json()["data"]
    assert sum(entry["total"] for entry in stats.values()) == 0


def test_malformed_requests_are_422_with_a_message(client):
    answer = client.post("/api/admin/tasks/add", headers=as_admin(), json={"tasks": "x"})
    assert answer.status_code == 422 and "group_id" in answer.json()["error"]
    bad_id = client.post("/api/admin/tasks/not-a-uuid/retry", headers=as_admin())
    assert bad_id.status_code == 422


def test_a_non_image_upload_is_refused_and_nothing_stored(client):
    group = new_group(client)
    answer = client.post(
        f"/api/admin/groups/{group}/photos",
        headers=as_admin(),
        files=[
            ("files", ("a.png", image_bytes(), "image/png")),
            ("files", ("notes.txt", b"hello", "text/plain")),
        ],
    )
    assert (
        answer.status_code == 400
        and "photo 2 (notes.txt): is not a readable image" in (answer.json()["error"])
    )
    unknown = client.post(
        f"/api/admin/groups/{uuid.uuid4()}/photos",
        headers=as_admin(),
        files=[("files", ("a.png", image_bytes(), "image/png"))],
    )
    assert unknown.status_code == 404


def test_stats_have_the_seeds_shape_and_ours(client):
    stats = client.get("/api/admin/stats", headers=as_admin()).json()
    assert stats["success"] is True
    assert {"wan_local", "runway_gen4_turbo", "runway_veo3.1"} <= set(stats["data"])  # the seed's
    assert set(stats["data"]) == {p.value for p in InferenceProvider}
    for entry in stats["data"].values():
        assert {
            "total",
            "pending",
            "processing",
            "completed",
            "failed",
            "cancelled",
            "success_rate",
            "median_seconds_to_finish",
            "p90_seconds_to_finish",
            "credits",
            "dollars",
        } <= set(entry)
    assert stats["data"]["wan_local"]["backlog"] == 0


def test_worker_types_get_only_their_providers(client):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    add(
        client,
        group,
        [
            {"photo_id": photo["id"], "prompt": p, "inference_provider": p}
            for p in ("wan_local", "runway_gen4_turbo", "runway_veo3.1")
        ],
    )
    wan = [claim(client, "wan") for _ in range(2)]
    runway = [claim(client, "runway") for _ in range(3)]
    assert [t["inference_provider"] for t in wan[:1]] == ["wan_local"] and wan[1] is None
    assert sorted(t["inference_provider"] for t in runway[:2]) == [
        "runway_gen4_turbo",
        "runway_veo3.1",
    ]
    assert runway[2] is None
    assert wan[0] is not None and set(wan[0]) >= {
        "item_id",
        "group_id",
        "photo_id",
        "prompt",
        "leased_until",
        "photo_storage_path",
        "frame_num",
        "inference_provider",
        "attempt",
    }
    assert wan[0]["photo_storage_path"].startswith("photos/")


def test_two_concurrent_callers_never_get_the_same_item(client):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    add(client, group, [{"photo_id": photo["id"], "prompt": f"t{n}"} for n in range(30)])
    got: list[str] = []
    lock = threading.Lock()

    def take(name):
        while (task := claim(client, "runway", name)) is not None:
            with lock:
                got.append(task["item_id"])

    threads = [threading.Thread(target=take, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == len(set(got)) == 30


def test_the_pull_worker_protocol(client):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    add(client, group, [{"photo_id": photo["id"], "prompt": "p"}] * 2)
    first, second = claim(client), claim(client)
    beat = client.post(
        f"/api/worker/tasks/{first['item_id']}/heartbeat",
        headers=as_admin(WORKER),
        json={"attempt": 1, "worker_id": "w1", "progress": 0.5},
    )
    assert beat.status_code == 200
    stale = client.post(
        f"/api/worker/tasks/{first['item_id']}/heartbeat",
        headers=as_admin(WORKER),
        json={"attempt": 2, "worker_id": "w1"},
    )
    assert stale.status_code == 409
    mp4 = encode_mp4(
        (np.zeros((16, 16, 3), np.uint8) for _ in range(5)), fps=8, width=16, height=16
    )
    done = client.post(
        f"/api/worker/tasks/{first['item_id']}/complete",
        headers=as_admin(WORKER),
        data={"attempt": "1", "worker_id": "w1", "cost_credits": "25"},
        files={"video": ("v.mp4", mp4, "video/mp4")},
    )
    assert done.status_code == 200, done.text
    assert done.json()["data"]["status"] == "completed"
    video = client.get(f"/api/admin/items/{first['item_id']}/video", headers=as_admin())
    assert video.status_code == 200 and video.content == mp4
    garbage = client.post(
        f"/api/worker/tasks/{second['item_id']}/complete",
        headers=as_admin(WORKER),
        data={"attempt": "1", "worker_id": "w1"},
        files={"video": ("v.mp4", b"not a video", "video/mp4")},
    )
    assert garbage.status_code == 400 and "not a playable mp4" in garbage.json()["error"]
    failed = client.post(
        f"/api/worker/tasks/{second['item_id']}/fail",
        headers=as_admin(WORKER),
        json={
            "attempt": 1,
            "worker_id": "w1",
            "error": "moderation",
            "permanent": True,
            "failure_code": "SAFETY.INPUT.TEXT",
        },
    )
    assert failed.json()["data"]["status"] == "failed"
    retried = client.post(f"/api/admin/tasks/{second['item_id']}/retry", headers=as_admin())
    assert retried.json()["data"]["status"] == "pending"
    again = client.post(f"/api/admin/tasks/{second['item_id']}/retry", headers=as_admin())
    assert again.status_code == 409
    missing = client.get(f"/api/admin/items/{second['item_id']}/video", headers=as_admin())
    assert missing.status_code == 404 and "no video yet" in missing.json()["error"]


def test_queue_filters_and_pages(client):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    add(client, group, [{"photo_id": photo["id"], "prompt": f"t{n}"} for n in range(5)])
    first = client.get("/api/admin/queue?limit=3", headers=as_admin()).json()["data"]
    rest = client.get(
        f"/api/admin/queue?limit=3&cursor={first['next_cursor']}", headers=as_admin()
    ).json()["data"]
    assert len(first["items"]) == 3 and len(rest["items"]) == 2 and rest["next_cursor"] is None
    none = client.get("/api/admin/queue?status=completed", headers=as_admin()).json()["data"]
    assert none["items"] == []
    bad = client.get("/api/admin/queue?cursor=zzz", headers=as_admin())
    assert bad.status_code == 400


def test_cancel_a_pending_item_needs_no_prefect(client):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    (item,) = add(client, group, [{"photo_id": photo["id"], "prompt": "p"}]).json()["data"]
    answer = client.post(f"/api/admin/tasks/{item['id']}/cancel", headers=as_admin())
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "cancelled"
    assert (
        client.post(f"/api/admin/tasks/{item['id']}/cancel", headers=as_admin()).status_code == 409
    )
    assert (
        client.post(f"/api/admin/tasks/{uuid.uuid4()}/cancel", headers=as_admin()).status_code
        == 404
    )


def test_a_taken_group_name_is_409_naming_the_group(client):
    first = client.post("/api/admin/groups", json={"name": "Summer"}, headers=as_admin())
    again = client.post("/api/admin/groups", json={"name": " summer "}, headers=as_admin())
    assert again.status_code == 409
    body = again.json()
    assert body["success"] is False
    assert (
        "'Summer' already exists" in body["error"] and first.json()["data"]["id"] in body["error"]
    )


def test_an_unreachable_database_is_503_in_the_envelope(app_settings, tmp_path):
    down = app_settings.replaced(
        database_url="postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/none"
    )
    app = create_app(down)
    with TestClient(app) as test_client:
        answer = test_client.get("/api/admin/stats", headers=as_admin())
    app.state.engine.dispose()
    assert answer.status_code == 503
    body = answer.json()
    assert body["success"] is False and "database is unavailable" in body["error"]
    assert "secret-pw" not in answer.text


def stored_files(settings) -> list[str]:
    root = Path(settings.store.storage_url) / "videos"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_refused_writer_never_touches_the_video_and_leaves_no_file(client, app_settings):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    add(client, group, [{"photo_id": photo["id"], "prompt": "p"}] * 2)
    first, second = claim(client), claim(client)
    winner = mp4_of(200)
    assert complete(client, first["item_id"], 1, "w1", winner).status_code == 200
    video_of = f"/api/admin/items/{first['item_id']}/video"
    before = hashlib.sha256(client.get(video_of, headers=as_admin()).content).hexdigest()
    assert before == hashlib.sha256(winner).hexdigest()
    for attempt in (1, 2):  # an already completed item, with the holder's and a stale attempt
        late = complete(client, first["item_id"], attempt, "w1", mp4_of(10))
        assert late.status_code == 409
    after = hashlib.sha256(client.get(video_of, headers=as_admin()).content).hexdigest()
    assert after == before
    # A pending item nobody holds: refused, and no stray file.
    add(client, group, [{"photo_id": photo["id"], "prompt": "unclaimed"}])
    queue = client.get("/api/admin/queue?status=pending", headers=as_admin()).json()["data"]
    unclaimed = queue["items"][0]["id"]
    assert complete(client, unclaimed, 1, "w1", mp4_of(30)).status_code == 409
    assert stored_files(app_settings) == [f"{group}/{first['item_id']}.mp4"]
    assert second["item_id"] != unclaimed


@pytest.mark.parametrize("route", ["heartbeat", "complete", "fail"])
def test_the_fence_checks_the_holder_as_well_as_the_attempt(client, route, app_settings):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    add(client, group, [{"photo_id": photo["id"], "prompt": "p"}])
    held = claim(client, worker_id="holder")
    path = f"/api/worker/tasks/{held['item_id']}/{route}"
    for intruder in ("someone-else", ""):
        if route == "complete":
            answer = complete(client, held["item_id"], 1, intruder, mp4_of(50))
        else:
            body = {"attempt": 1, "worker_id": intruder, "error": "x", "permanent": True}
            if route == "heartbeat":
                body = {"attempt": 1, "worker_id": intruder}
            answer = client.post(path, headers=as_admin(WORKER), json=body)
        assert answer.status_code in (409, 422), answer.text
        if intruder:
            assert answer.status_code == 409
    queue = client.get("/api/admin/queue", headers=as_admin()).json()["data"]["items"]
    assert [(i["status"], i["worker_id"]) for i in queue] == [("processing", "holder")]
    assert stored_files(app_settings) == []


# --- deadlines, ETAs and budgets ------------------------------------------------------------


@pytest.fixture
def deadline_client(app_settings):
    app = create_app(app_settings.replaced(routing_policy="deadline"))
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def test_an_item_shows_its_due_time_queue_place_and_eta(deadline_client, engine):
    from reelroute.models.core.tables import utcnow
    from reelroute.models.planning.replanning import store_etas
    from reelroute.models.planning.snapshot import build_snapshot

    client = deadline_client
    group = new_group(client, "urgent")
    [photo] = upload(client, group, ("a.png", image_bytes(), "image/png"))
    answer = add(
        client,
        group,
        [
            {"photo_id": photo["id"], "prompt": "waves"},
            {"photo_id": photo["id"], "prompt": "pan", "deadline_seconds": 7200},
        ],
    )
    assert answer.status_code == 200, answer.text
    urgent, relaxed = answer.json()["data"]
    assert urgent["inference_provider"] == "runway_gen4_turbo"  # Wan cannot make 20 min
    assert "Gen-4 predicted" in urgent["route_reason"]
    assert relaxed["inference_provider"] == "wan_local"  # its own deadline: two hours
    with Session(engine) as session:  # the dispatcher's replay
        store_etas(session, build_snapshot(session, client.app.state.settings, now=utcnow()))
        session.commit()
    detail = client.get(f"/api/admin/items/{relaxed['id']}", headers=as_admin()).json()["data"]
    assert detail["queue_position"] == 1 and detail["late_risk"] is False
    due = datetime.fromisoformat(detail["due_at"])
    created = datetime.fromisoformat(detail["created_at"])
    assert abs(due - created - timedelta(hours=2)) < timedelta(seconds=1)
    assert datetime.fromisoformat(detail["eta"]) < due
    assert detail["moves"] == [] and detail["video_url"] is None
    queue = client.get("/api/admin/queue", headers=as_admin()).json()["data"]
    listed = {row["id"]: row for row in queue["items"]}
    assert listed[relaxed["id"]]["queue_position"] == 1
    assert listed[relaxed["id"]]["eta"] == detail["eta"]
    missing = client.get(f"/api/admin/items/{uuid.uuid4()}", headers=as_admin())
    assert missing.status_code == 404


def test_budgets_are_set_listed_and_refuse_a_named_paid_provider_with_409(client):
    put = client.put(
        "/api/admin/budgets",
        headers=as_admin(),
        json={
            "scope": "provider",
            "period": "day",
            "cap_dollars": 0.5,
            "provider": "runway_gen4_turbo",
        },
    )
    assert put.status_code == 200, put.text
    assert put.json()["data"]["left_dollars"] == 0.5
    group = new_group(client)
    [photo] = upload(client, group, ("a.png", image_bytes(), "image/png"))
    task = {"photo_id": photo["id"], "prompt": "p", "inference_provider": "runway_gen4_turbo"}
    assert add(client, group, [task, task]).status_code == 200
    refused = add(client, group, [task])
    assert refused.status_code == 409
    assert refused.json()["error"] == (
        "tasks[0].inference_provider: the budget runway_gen4_turbo per day ($0.50) has $0.00 "
        "left; this video needs about $0.25"
    )
    [budget] = client.get("/api/admin/budgets", headers=as_admin()).json()["data"]
    assert (budget["reserved_dollars"], budget["left_dollars"]) == (0.5, 0.0)
    bad = client.put(
        "/api/admin/budgets",
        headers=as_admin(),
        json={"scope": "provider", "period": "day", "cap_dollars": 5, "provider": "wan_local"},
    )
    assert bad.status_code == 400 and "wan_local costs no credits" in bad.text
    assert "with the scope gpu" in bad.text
    gpu = client.put(
        "/api/admin/budgets",
        headers=as_admin(),
        json={"scope": "gpu", "period": "month", "cap_dollars": 300},
    )
    assert gpu.status_code == 200, gpu.text
    assert gpu.json()["data"]["scope"] == "gpu" and gpu.json()["data"]["left_dollars"] == 300
    assert gpu.json()["data"]["provider"] is None


def test_a_group_can_require_full_quality_wan_videos(client, engine):
    made = client.post(
        "/api/admin/groups",
        json={"name": "Hero shots", "wan_full_quality": True},
        headers=as_admin(),
    )
    assert made.status_code == 200 and made.json()["data"]["wan_full_quality"] is True
    group = made.json()["data"]["id"]
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    answer = add(client, group, [{"photo_id": photo["id"], "prompt": "p"}])
    assert answer.status_code == 200, answer.text
    with Session(engine) as session:
        item = session.get(VideoItem, uuid.UUID(answer.json()["data"][0]["id"]))
        assert item is not None and item.wan_full_quality
