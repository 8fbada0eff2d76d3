"""Adding a batch: routing of what is stored, all or none, every problem of every photo and task
named, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import select

from reelroute.models.core.enums import GroupPriority, InferenceProvider, ItemStatus, RoutedBy
from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.tables import Photo, VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import PhotoTask, Upload, add_batch
from reelroute.models.items.groups import create_group
from reelroute.models.store.files import Storage
from tests.models.helpers import (
    add_group_with_photos,
    add_items,
    claim_next_item,
    image_bytes,
    ledger_counts,
)

WAN, TURBO, VEO = (
    InferenceProvider.wan_local,
    InferenceProvider.runway_gen4_turbo,
    InferenceProvider.runway_veo3_1,
)


def item_count(session) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(VideoItem)).scalar_one()


def test_create_stores_each_provider_exactly(session, settings):
    group_id, photos = add_group_with_photos(session, 4)
    tasks = [
        TaskSpec(photo_id=photos[0], prompt="a", inference_provider="wan_local", frame_num=121),
        TaskSpec(photo_id=photos[1], prompt="b", inference_provider="runway_gen4_turbo"),
        TaskSpec(photo_id=photos[2], prompt="c", inference_provider="runway_veo3.1", duration_s=8),
        TaskSpec(photo_id=photos[3], prompt="d", inference_provider="auto"),
    ]
    created = add_batch(session, group_id=group_id, tasks=tasks, settings=settings)
    session.commit()
    stored = {i.prompt: i for i in session.exec(select(VideoItem)).all()}
    # `auto` under the deadline policy: free Wan meets a normal group's 4 h target.
    assert [stored[p].inference_provider for p in "abcd"] == [WAN, TURBO, VEO, WAN]
    assert [stored[p].routed_by for p in "abcd"] == [RoutedBy.explicit] * 3 + [RoutedBy.deadline]
    assert stored["a"].frame_num == 121 and stored["c"].duration_s == 8
    assert all(i.status is ItemStatus.pending and i.retry_count == 0 for i in created)
    raw = session.execute(sa.text("SELECT inference_provider FROM video_items")).scalars().all()
    assert sorted(raw) == sorted(["wan_local", "runway_gen4_turbo", "runway_veo3.1", "wan_local"])
    assert {round((i.due_at - i.created_at).total_seconds() / 60) for i in created} == {240}


def test_urgent_items_are_due_sooner_and_so_go_first(session, settings):
    normal = add_items(session, settings, 2, provider=TURBO)
    urgent = add_items(session, settings, 1, provider=None, priority=GroupPriority.urgent)
    assert (urgent[0].inference_provider, urgent[0].routed_by) == (TURBO, RoutedBy.deadline)
    assert round((urgent[0].due_at - urgent[0].created_at).total_seconds()) == 20 * 60
    assert claim_next_item(session, settings).item_id == urgent[0].id
    assert claim_next_item(session, settings).item_id == normal[0].id


def test_a_task_may_carry_its_own_deadline(session, settings):
    group_id, (photo,) = add_group_with_photos(session, 1)
    (item,) = add_batch(
        session,
        group_id=group_id,
        settings=settings,
        tasks=[TaskSpec(photo_id=photo, prompt="p", deadline_seconds=90 * 60)],
    )
    assert round((item.due_at - item.created_at).total_seconds()) == 90 * 60


def test_the_threshold_policy_counts_pending_wan_items_in_the_database_and_the_batch(
    session, settings
):
    settings = settings.replaced(
        default_provider=WAN,
        wan_fallback_threshold=2,
        routing_policy="threshold",
    )
    first = add_items(session, settings, 2, provider=None)
    assert [i.inference_provider for i in first] == [WAN, WAN]
    batch = add_items(session, settings, 2, provider=None)
    # 2 pending: the third Wan item is allowed (not more than 2) ... the fourth is not.
    assert [i.inference_provider for i in batch] == [WAN, TURBO]
    assert batch[1].routed_by is RoutedBy.fallback
    assert "3 Wan items are pending" in (batch[1].route_reason or "")


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"inference_provider": "runway_veo3"}, "'runway_veo3' is not a provider; choose one of"),
        ({"prompt": "   "}, "prompt: is empty"),
        ({"prompt": "😀" * 501}, "is 1002 UTF-16 units long; shorten it to at most 1000"),
        ({"frame_num": 120}, "frame_num: 120 is not a frame count Wan can make; use 4k+1"),
        ({"frame_num": 1}, "frame_num: 1 is not a frame count"),
        ({"duration_s": 30}, "duration_s: 30 is out of range"),
        ({"photo_id": uuid.UUID(int=7)}, "no photo 00000000-0000-0000-0000-000000000007"),
    ],
)
def test_a_batch_with_one_bad_task_writes_nothing(session, settings, task, message):
    group_id, photos = add_group_with_photos(session, 2)
    good = TaskSpec(photo_id=photos[0], prompt="fine")
    bad = TaskSpec(**{"photo_id": photos[1], "prompt": "fine", **task})
    with pytest.raises(InvalidInput) as error:
        add_batch(session, group_id=group_id, tasks=[good, good, bad], settings=settings)
    session.rollback()
    assert message in str(error.value) and "tasks[2]" in str(error.value)
    assert item_count(session) == 0
    assert ledger_counts(session)[TURBO.value]["total"] == 0


def test_photo_from_another_group_and_unknown_group_are_refused(session, settings):
    _, photos = add_group_with_photos(session, 1)
    other_group, _ = add_group_with_photos(session, 1)
    with pytest.raises(InvalidInput, match="belongs to another group"):
        add_batch(
            session,
            group_id=other_group,
            tasks=[TaskSpec(photo_id=photos[0], prompt="x")],
            settings=settings,
        )
    with pytest.raises(InvalidInput, match="no group"):
        add_batch(
            session,
            group_id=uuid.uuid4(),
            tasks=[TaskSpec(photo_id=photos[0], prompt="x")],
            settings=settings,
        )
    session.rollback()
    assert item_count(session) == 0


def test_prompt_exactly_at_the_limit_is_accepted(session, settings):
    group_id, photos = add_group_with_photos(session, 1)
    task = TaskSpec(photo_id=photos[0], prompt="é" * 1000)
    assert add_batch(session, group_id=group_id, tasks=[task], settings=settings)


def test_photos_uploaded_with_the_batch_are_stored_and_each_gets_its_item(
    session, settings, tmp_path
):
    storage = Storage(str(tmp_path / "store"))
    group = create_group(session, name="uploads")
    files = [
        Upload("a.png", image_bytes(color=(1, 2, 3))),
        Upload("b.jpg", image_bytes(fmt="JPEG")),
    ]
    items = add_batch(
        session,
        group_id=group.id,
        settings=settings,
        storage=storage,
        photo_tasks=[
            PhotoTask(upload, TaskSpec(prompt=f"p{n}", inference_provider="runway_veo3.1"))
            for n, upload in enumerate(files)
        ],
    )
    session.commit()
    photos = {p.id: p for p in session.exec(select(Photo)).all()}
    assert [photos[i.photo_id].original_filename for i in items] == ["a.png", "b.jpg"]
    assert [i.prompt for i in items] == ["p0", "p1"]
    assert all(storage.exists(photos[i.photo_id].storage_path) for i in items)


def test_every_problem_of_every_photo_and_task_is_named_and_nothing_is_stored(
    session, settings, tmp_path
):
    storage = Storage(str(tmp_path / "store"))
    group = create_group(session, name="bad uploads")
    session.commit()
    photo_tasks = [
        PhotoTask(Upload("good.png", image_bytes()), TaskSpec(prompt="fine")),
        PhotoTask(Upload("notes.txt", b"hello"), TaskSpec(prompt="fine")),
        PhotoTask(Upload("tiny.png", image_bytes(8, 8)), TaskSpec(prompt="", frame_num=8)),
    ]
    with pytest.raises(InvalidInput) as error:
        add_batch(
            session,
            group_id=group.id,
            settings=settings,
            storage=storage,
            photo_tasks=photo_tasks,
            tasks=[TaskSpec(prompt="no photo")],
        )
    session.rollback()
    assert error.value.problems == [
        "photo 2 (notes.txt): is not a readable image; upload a JPEG, PNG, WebP or HEIC file",
        "photo 3 (tiny.png): 8x8 is too small; use at least 16 px",
        "photo 3 (tiny.png), prompt: is empty; describe the motion you want",
        "photo 3 (tiny.png), frame_num: 8 is not a frame count Wan can make; use 4k+1 between "
        "5 and 241 (e.g. 81 or 121)",
        "tasks[0].photo_id: is missing; give the id of an uploaded photo",
    ]
    assert item_count(session) == 0
    assert session.exec(select(Photo)).all() == []
    assert not storage.exists("photos")


def test_an_empty_or_oversized_batch_is_refused(session, settings):
    group_id, photos = add_group_with_photos(session, 1)
    with pytest.raises(InvalidInput, match="tasks: is empty"):
        add_batch(session, group_id=group_id, settings=settings)
    too_many = [TaskSpec(photo_id=photos[0], prompt="x")] * 1001
    with pytest.raises(InvalidInput, match="1001 tasks; send at most 1000"):
        add_batch(session, group_id=group_id, tasks=too_many, settings=settings)
