"""Statistics and the queue listing against brute force, on tables past the seed's 1,000 rows."""

from __future__ import annotations

import contextlib
import random
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from reelroute.models import items as ops
from reelroute.models.enums import InferenceProvider, ItemStatus, WorkerType
from reelroute.models.errors import InvalidInput, InvalidTransition
from reelroute.models.queue import compact_counts, get_stats, list_queue
from reelroute.models.tables import VideoItem, utcnow
from tests.models.helpers import add_group_with_photos, add_items

ROWS = 1_300


def brute_force(session) -> dict[str, dict[str, int]]:
    expected = {
        p.value: {"total": 0, **{s.value: 0 for s in ItemStatus}, "credits": 0}
        for p in InferenceProvider
    }
    rows = session.execute(
        sa.text("SELECT inference_provider, status, cost_credits FROM video_items")
    ).all()
    for provider, status, credits in rows:
        expected[provider][status] += 1
        expected[provider]["total"] += 1
        expected[provider]["credits"] += credits or 0
    return expected


def make_busy_table(session, settings) -> None:
    rng = random.Random(7)
    for provider in InferenceProvider:
        add_items(session, settings, ROWS // 3, provider)
    now = utcnow()
    for _ in range(400):
        worker = rng.choice(list(WorkerType))
        item = ops.claim_next(
            session, worker_type=worker, worker_id="w", settings=settings, now=now
        )
        if item is None:
            continue
        roll = rng.random()
        if roll < 0.5:
            ops.complete_item(
                session,
                item_id=item.item_id,
                attempt=item.attempt,
                output_path="v.mp4",
                cost_credits=rng.randint(0, 50),
            )
        elif roll < 0.7:
            ops.fail_item(
                session,
                item_id=item.item_id,
                attempt=item.attempt,
                error="x",
                permanent=rng.random() < 0.5,
                cost_credits=rng.randint(0, 5),
                settings=settings,
            )
        elif roll < 0.8:
            ops.cancel_item(session, item_id=item.item_id)
    session.commit()
    for item in session.execute(sa.select(VideoItem.id).limit(40)).scalars().all():
        with contextlib.suppress(InvalidTransition):  # already final: fine for this shuffle
            ops.cancel_item(session, item_id=item)
    session.commit()
    ops.requeue_expired(session, settings=settings, now=now + timedelta(days=1))
    session.commit()


def test_stats_equal_a_brute_force_count(session, settings):
    make_busy_table(session, settings)
    stats = get_stats(session)
    assert stats == brute_force(session)
    assert sum(entry["total"] for entry in stats.values()) == (ROWS // 3) * 3
    assert stats[InferenceProvider.wan_local.value]["completed"] > 0


def test_compaction_folds_the_ledger_without_changing_the_answer(session, settings):
    make_busy_table(session, settings)
    before = get_stats(session)
    compact_counts(session)
    session.commit()
    ledger_rows = session.execute(sa.text("SELECT count(*) FROM item_status_counts")).scalar()
    assert ledger_rows <= len(InferenceProvider) * len(ItemStatus)
    assert get_stats(session) == before == brute_force(session)


def test_stats_follow_deletes_and_bulk_sql(session, settings):
    add_items(session, settings, 30, InferenceProvider.runway_veo3_1)
    session.execute(sa.text("UPDATE video_items SET status = 'completed', cost_credits = 3"))
    session.execute(
        sa.text("DELETE FROM video_items WHERE id IN (SELECT id FROM video_items LIMIT 10)")
    )
    session.commit()
    veo = get_stats(session)[InferenceProvider.runway_veo3_1.value]
    assert (veo["total"], veo["completed"], veo["credits"]) == (20, 20, 60)
    assert get_stats(session) == brute_force(session)


def test_queue_pages_cover_every_item_once_newest_first(session, settings):
    for provider in InferenceProvider:
        add_items(session, settings, 40, provider)
    seen, cursor = [], None
    while True:
        page = list_queue(session, limit=25, cursor=cursor)
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len({i.id for i in seen}) == 120
    keys = [(i.created_at, i.id.hex) for i in seen]
    assert keys == sorted(keys, reverse=True)


def test_queue_filters(session, settings):
    wan = add_items(session, settings, 5, InferenceProvider.wan_local)
    add_items(session, settings, 5, InferenceProvider.runway_gen4_turbo)
    ops.claim_next(session, worker_type=WorkerType.wan, worker_id="w", settings=settings)
    session.commit()
    by_provider = list_queue(session, provider=InferenceProvider.wan_local, limit=50)
    assert {i.id for i in by_provider.items} == {i.id for i in wan}
    processing = list_queue(session, status=ItemStatus.processing)
    assert [i.id for i in processing.items] == [wan[0].id]
    by_group = list_queue(session, group_id=wan[0].group_id)
    assert len(by_group.items) == 5
    assert list_queue(session, group_id=uuid.uuid4()).items == []


def test_queue_refuses_a_bad_cursor_and_limit(session):
    with pytest.raises(InvalidInput, match="cursor"):
        list_queue(session, cursor="nonsense")
    with pytest.raises(InvalidInput, match="limit"):
        list_queue(session, limit=0)
    group_id, _ = add_group_with_photos(session)
    assert list_queue(session, group_id=group_id).next_cursor is None
