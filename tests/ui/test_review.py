"""Review through the API: a group's quality choices, the review queue, accept, and reject with
a redo (named, or the group's next option), with their events; bad input changes nothing."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlmodel import Session, col, select

from reelroute.models.items.videos import complete_with_video
from reelroute.models.outbox.tables import ItemEvent
from reelroute.models.store.files import Storage
from tests.models.helpers import image_bytes
from tests.ui.api_client import add, as_admin, claim, upload


def group_with_quality(client, **quality):
    answer = client.post(
        "/api/admin/groups",
        json={"name": f"q {uuid.uuid4().hex[:8]}", **quality},
        headers=as_admin(),
    )
    return answer


def held_item(client, engine, settings, provider: str = "runway_gen4_turbo") -> str:
    group = group_with_quality(client, quality_action="review").json()["data"]["id"]
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    answer = add(
        client, group, [{"photo_id": photo["id"], "prompt": "p", "inference_provider": provider}]
    )
    item_id = answer.json()["data"][0]["id"]
    claimed = claim(client, "runway")
    assert claimed["item_id"] == item_id
    with Session(engine) as session:
        complete_with_video(
            session,
            Storage(settings.store.storage_url),
            item_id=uuid.UUID(item_id),
            group_id=uuid.UUID(group),
            attempt=claimed["attempt"],
            worker_id="w1",
            video=b"a held video",
            cost_credits=25,
            quality={"passed": False, "scores": {"blank": 0.0}, "failed": {"blank": "flat"}},
            review_reason="checks failed (blank: flat)",
        )
        session.commit()
    return item_id


def event_types(engine, item_id: str) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(
            select(ItemEvent)
            .where(ItemEvent.item_id == uuid.UUID(item_id))
            .order_by(col(ItemEvent.id))
        ).all()
    return [row.type.value for row in rows]


def test_a_group_chooses_its_action_thresholds_and_review_share(client):
    answer = group_with_quality(
        client,
        quality_action="escalate",
        quality_thresholds={"min_first_frame_ssim": 0.7},
        review_share=0.05,
    )
    assert answer.status_code == 200, answer.text
    group = answer.json()["data"]
    assert (group["quality_action"], group["review_share"]) == ("escalate", 0.05)
    assert group["quality_thresholds"] == {"min_first_frame_ssim": 0.7}
    bad = group_with_quality(client, quality_thresholds={"ssim": 0.7}, review_share=0.5)
    assert bad.status_code == 400
    assert "no threshold 'ssim'; use min_luma_range" in bad.text
    assert group_with_quality(client, review_share=2).status_code == 422  # the schema says
    assert group_with_quality(client, quality_action="maybe").status_code == 422


def test_the_review_queue_and_accept(client, engine, app_settings):
    item_id = held_item(client, engine, app_settings)
    queue = client.get("/api/admin/review", headers=as_admin()).json()["data"]
    assert [entry["id"] for entry in queue] == [item_id]
    held = queue[0]
    assert held["status"] == "review" and held["review_reason"] == "checks failed (blank: flat)"
    assert held["quality"]["failed"] == {"blank": "flat"} and held["cost_credits"] == 25
    answer = client.post(f"/api/admin/items/{item_id}/accept", headers=as_admin())
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["status"] == "completed"
    assert event_types(engine, item_id)[-3:] == [
        "item.review_requested",
        "item.accepted",
        "item.completed",
    ]
    again = client.post(f"/api/admin/items/{item_id}/accept", headers=as_admin())
    assert again.status_code == 409 and "not held for review" in again.text
    assert client.get("/api/admin/review", headers=as_admin()).json()["data"] == []


def test_reject_makes_it_again_on_the_named_provider_or_the_next_option(
    client, engine, app_settings
):
    item_id = held_item(client, engine, app_settings)
    other = held_item(client, engine, app_settings)
    empty = client.post(
        f"/api/admin/items/{item_id}/reject", headers=as_admin(), json={"reason": ""}
    )
    assert empty.status_code == 422
    answer = client.post(
        f"/api/admin/items/{item_id}/reject",
        headers=as_admin(),
        json={"reason": "the colours are flat", "provider": "runway_veo3.1"},
    )
    assert answer.status_code == 200, answer.text
    redone = answer.json()["data"]
    assert (redone["status"], redone["inference_provider"], redone["redo_count"]) == (
        "pending",
        "runway_veo3.1",
        1,
    )
    assert (
        redone["cost_credits"] == 25 and "rejected: the colours are flat" in redone["route_reason"]
    )
    assert event_types(engine, item_id)[-1] == "item.rejected"
    # Unnamed: the group's next option (Turbo made the rejected one; any other may redo it).
    answer = client.post(
        f"/api/admin/items/{other}/reject", headers=as_admin(), json={"reason": "blurry"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["inference_provider"] != "runway_gen4_turbo"
    missing = client.post(
        f"/api/admin/items/{uuid.uuid4()}/reject", headers=as_admin(), json={"reason": "x"}
    )
    assert missing.status_code == 404


def test_redo_statistics_in_the_api_and_on_the_page(client, engine, app_settings):
    from reelroute.ui.views import statistics as view

    first, second = (held_item(client, engine, app_settings) for _ in range(2))
    for item_id in (first, second):
        answer = client.post(
            f"/api/admin/items/{item_id}/reject",
            headers=as_admin(),
            json={"reason": "too dark", "provider": "runway_veo3.1"},
        )
        assert answer.status_code == 200, answer.text
    found = client.get("/api/admin/stats/redos", headers=as_admin()).json()["data"]
    assert len(found) == 2  # one per group (each held item has its own)
    assert {entry["provider"] for entry in found} == {"runway_gen4_turbo"}
    assert sum(entry["redos"] for entry in found) == 2
    assert sum(entry["credits"] for entry in found) == 50 and found[0]["by_check"] == 0
    rows = view.redo_rows(engine)
    assert rows[0] == ["Runway Gen-4 Turbo (fast)", "all", "all", "2 of 2 (100%)", "", ""]
    assert [row[3] for row in rows[1:]] == [1, 1] and rows[1][5] == "$0.25"


def test_acceptance_in_the_api_and_on_the_page(client, engine, app_settings):
    """Two Gen-4 Turbo videos held in two groups: one accepted, one rejected."""
    from reelroute.ui.views import statistics as view

    kept, redone = (held_item(client, engine, app_settings) for _ in range(2))
    assert client.post(f"/api/admin/items/{kept}/accept", headers=as_admin()).status_code == 200
    answer = client.post(
        f"/api/admin/items/{redone}/reject",
        headers=as_admin(),
        json={"reason": "too dark", "provider": "runway_veo3.1"},
    )
    assert answer.status_code == 200, answer.text
    found = client.get("/api/admin/stats/acceptance", headers=as_admin()).json()["data"]
    overall, *groups = found
    assert (overall["provider"], overall["group_id"], overall["kept"], overall["judged"]) == (
        "runway_gen4_turbo",
        None,
        1,
        2,
    )
    assert overall["share"] == 0.5 and overall["low"] < 0.5 < overall["high"]
    # routing weighs 2 judged videos against the prior (0.9, worth 10): (1 + 9) / 12
    assert overall["routing"] == round(10 / 12, 4)
    assert sorted((g["kept"], g["judged"]) for g in groups) == [(0, 1), (1, 1)]
    rejected = next(g for g in groups if g["kept"] == 0)
    assert rejected["routing"] < overall["routing"]
    rows = view.acceptance_rows(engine, app_settings)
    assert rows[0] == [
        "Runway Gen-4 Turbo (fast)", "all", "all", "1 of 2", "50% (9%-91%)", "83%", "-", "-"
    ]  # fmt: skip
    assert len(rows) == 3 and {row[3] for row in rows[1:]} == {"0 of 1", "1 of 1"}


def test_a_blind_ab_pair_through_the_api(client, engine, app_settings):
    """A Gen-4 Turbo item of a group sampling every item: Wan makes its second video; the pair
    is listed without names, its videos served as A and B, and the pick tells who made which."""
    answer = group_with_quality(client, shadow_rate=1.0)
    assert answer.status_code == 200, answer.text
    group = answer.json()["data"]
    assert (group["shadow_rate"], group["shadow_provider"]) == (1.0, None)
    (photo,) = upload(client, group["id"], ("a.png", image_bytes(), "image/png"))
    added = add(
        client,
        group["id"],
        [{"photo_id": photo["id"], "prompt": "p", "inference_provider": "runway_gen4_turbo"}],
    )
    item_id = added.json()["data"][0]["id"]
    videos = {}
    for worker, video in (("runway", b"made by runway"), ("wan", b"made by wan")):
        claimed = claim(client, worker)
        assert claimed is not None, worker
        videos[claimed["item_id"]] = video
        with Session(engine) as session:
            complete_with_video(
                session,
                Storage(app_settings.store.storage_url),
                item_id=uuid.UUID(claimed["item_id"]),
                group_id=uuid.UUID(group["id"]),
                attempt=claimed["attempt"],
                worker_id="w1",
                video=video,
            )
            session.commit()
    (pair,) = client.get("/api/admin/review/pairs", headers=as_admin()).json()["data"]
    assert set(pair) == {"pair_id", "photo_id", "prompt", "a_video", "b_video"}
    assert item_id not in pair["a_video"] + pair["b_video"]
    # Until the pick, the sample's own item says it is a sample, not who makes it.
    listed = client.get("/api/admin/queue", headers=as_admin()).json()["data"]["items"]
    (sample,) = [entry for entry in listed if entry["ab_sample"]]
    assert sample["id"] not in pair["a_video"] + pair["b_video"]
    for shown_item in (
        sample,
        client.get(f"/api/admin/items/{sample['id']}", headers=as_admin()).json()["data"],
    ):
        assert shown_item["inference_provider"] is None and shown_item["worker_id"] is None
        assert "wan" not in json.dumps(shown_item).lower()
    shown = {side: client.get(pair[f"{side}_video"], headers=as_admin()).content for side in "ab"}
    assert sorted(shown.values()) == sorted(videos.values())
    picked = client.post(
        f"/api/admin/review/pairs/{pair['pair_id']}", headers=as_admin(), json={"better": "a"}
    )
    assert picked.status_code == 200, picked.text
    done = picked.json()["data"]
    assert (done["item_provider"], done["shadow_provider"]) == ("runway_gen4_turbo", "wan_local")
    assert done["winner"] == ("item" if shown["a"] == b"made by runway" else "shadow")
    assert client.get("/api/admin/review/pairs", headers=as_admin()).json()["data"] == []
    again = client.post(
        f"/api/admin/review/pairs/{pair['pair_id']}", headers=as_admin(), json={"better": "b"}
    )
    assert again.status_code == 409
    bad = client.post(
        f"/api/admin/review/pairs/{pair['pair_id']}", headers=as_admin(), json={"better": "c"}
    )
    assert bad.status_code == 422
    told = client.get(f"/api/admin/items/{sample['id']}", headers=as_admin()).json()["data"]
    assert told["inference_provider"] == "wan_local"  # picked: now it is said
    table = client.get("/api/admin/stats/acceptance", headers=as_admin()).json()["data"]
    wan = next(row for row in table if row["provider"] == "wan_local" and not row["group_id"])
    assert wan["ab_wins"] + wan["ab_losses"] == 1 and wan["judged"] == 1


def test_a_bad_shadow_rate_is_refused(client):
    answer = group_with_quality(client, shadow_rate=1.5)
    assert answer.status_code == 422 and "shadow_rate" in answer.text


@pytest.mark.parametrize(
    ("action", "status"), [("review", "review"), ("accept", "completed"), ("escalate", "pending")]
)
def test_a_pull_workers_black_or_frozen_clip_is_checked_like_a_flow_runs(client, action, status):
    """A pull worker's upload runs the same checks and the group's action as a flow run's
    video: an all-black clip and a frozen one are held for review (or, with `accept`,
    completed with their failed checks named); the worker's answer says so. Before, both
    completed unchecked, like a good clip."""
    import numpy as np

    from reelroute.providers.video import encode_mp4
    from tests.models.helpers import textured_image_bytes, textured_picture
    from tests.ui.api_client import complete

    group = group_with_quality(client, quality_action=action).json()["data"]["id"]
    (photo,) = upload(client, group, ("a.png", textured_image_bytes(3, 128, 96), "image/png"))
    tasks = [{"photo_id": photo["id"], "prompt": f"p{n}", "inference_provider": "wan_local"}
             for n in range(2)]  # fmt: skip
    assert add(client, group, tasks).status_code == 200
    still = textured_picture(3, 128, 96)
    clips = {
        "blank": [np.zeros((96, 128, 3), np.uint8) for _ in range(17)],
        "frozen": [still.copy() for _ in range(17)],
    }
    for failing, frames in clips.items():
        claimed = claim(client, "wan")
        assert claimed is not None
        video = encode_mp4(iter(frames), fps=16, width=128, height=96)
        answer = complete(client, claimed["item_id"], claimed["attempt"], "w1", video)
        assert answer.status_code == 200, answer.text
        done = answer.json()["data"]
        assert done["status"] == status, done
        assert done["quality"]["passed"] is False and failing in done["quality"]["failed"], done
        assert done["quality"]["action"] == action
        if action == "review":
            assert failing in (done["review_reason"] or "")
        if action == "escalate":  # made again by the group's next option, a paid one
            assert done["inference_provider"] != "wan_local" and done["output_path"] is None


def test_a_wan_clip_shorter_than_its_task_asked_fails_its_length(client):
    """A Wan task of 1 s with no frame count: 17 frames at 16 fps (4k+1); a pull worker's
    9-frame clip fails the length check (it always passed unless the task named a count)."""
    import numpy as np

    from reelroute.providers.video import encode_mp4
    from tests.models.helpers import textured_image_bytes, textured_picture
    from tests.ui.api_client import complete

    group = group_with_quality(client, quality_action="accept").json()["data"]["id"]
    (photo,) = upload(client, group, ("a.png", textured_image_bytes(4, 128, 96), "image/png"))
    task = {"photo_id": photo["id"], "prompt": "p", "inference_provider": "wan_local"}
    assert add(client, group, [{**task, "duration_s": 1}]).status_code == 200
    picture = textured_picture(4, 128, 96)
    frames = [np.roll(picture, 3 * n, axis=1) for n in range(9)]
    claimed = claim(client, "wan")
    video = encode_mp4(iter(frames), fps=16, width=128, height=96)
    done = complete(client, claimed["item_id"], claimed["attempt"], "w1", video).json()["data"]
    assert done["quality"]["failed"]["length"] == "9 frames, 17 asked", done["quality"]
