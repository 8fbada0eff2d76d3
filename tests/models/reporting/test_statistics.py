"""Statistics against brute force, on tables past the seed's 1,000 rows, and the typed answer."""

from __future__ import annotations

import contextlib
import random
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col

from reelroute.models.core.enums import InferenceProvider, ItemStatus, Pool
from reelroute.models.core.errors import InvalidTransition
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.items import lifecycle as ops
from reelroute.models.reporting.statistics import ProviderStats, provider_stats
from reelroute.models.store.ledger import compact_counts
from tests.models.helpers import add_items, ledger_counts

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
        worker = rng.choice(list(Pool))
        item = ops.claim_next(session, pool=worker, worker_id="w", settings=settings, now=now)
        if item is None:
            continue
        roll = rng.random()
        if roll < 0.5:
            ops.complete_item(
                session,
                item_id=item.item_id,
                attempt=item.attempt,
                worker_id="w",
                output_path="v.mp4",
                cost_credits=rng.randint(0, 50),
            )
        elif roll < 0.7:
            ops.fail_item(
                session,
                item_id=item.item_id,
                attempt=item.attempt,
                worker_id="w",
                error="x",
                permanent=rng.random() < 0.5,
                cost_credits=rng.randint(0, 5),
                settings=settings,
            )
        elif roll < 0.8:
            ops.cancel_item(session, item_id=item.item_id)
    session.commit()
    for item in session.execute(sa.select(col(VideoItem.id)).limit(40)).scalars().all():
        with contextlib.suppress(InvalidTransition):  # already final: fine for this shuffle
            ops.cancel_item(session, item_id=item)
    session.commit()
    ops.requeue_expired(session, settings=settings, now=now + timedelta(days=1))
    session.commit()


def test_stats_equal_a_brute_force_count(session, settings):
    make_busy_table(session, settings)
    stats = ledger_counts(session)
    assert stats == brute_force(session)
    assert sum(entry["total"] for entry in stats.values()) == (ROWS // 3) * len(InferenceProvider)
    assert stats[InferenceProvider.wan_local.value]["completed"] > 0


def test_compaction_folds_the_ledger_without_changing_the_answer(session, settings):
    make_busy_table(session, settings)
    before = ledger_counts(session)
    compact_counts(session)
    session.commit()
    ledger_rows = session.execute(sa.text("SELECT count(*) FROM item_status_counts")).scalar()
    assert ledger_rows <= len(InferenceProvider) * len(ItemStatus)
    assert ledger_counts(session) == before == brute_force(session)


def test_stats_follow_deletes_and_bulk_sql(session, settings):
    add_items(session, settings, 30, InferenceProvider.runway_veo3_1)
    session.execute(sa.text("UPDATE video_items SET status = 'completed', cost_credits = 3"))
    session.execute(
        sa.text("DELETE FROM video_items WHERE id IN (SELECT id FROM video_items LIMIT 10)")
    )
    session.commit()
    veo = ledger_counts(session)[InferenceProvider.runway_veo3_1.value]
    assert (veo["total"], veo["completed"], veo["credits"]) == (20, 20, 60)
    assert ledger_counts(session) == brute_force(session)


def test_the_typed_answer_adds_rates_times_spend_and_backlog(session, settings):
    make_busy_table(session, settings)
    answer = provider_stats(session)
    counts = ledger_counts(session)
    for provider, entry in answer.items():
        assert isinstance(entry, ProviderStats)
        assert entry.model_dump(include=set(counts[provider.value])) == counts[provider.value]
        ended = entry.completed + entry.failed
        assert entry.success_rate == (round(entry.completed / ended, 4) if ended else None)
        assert entry.dollars == entry.credits / 100 and entry.backlog == entry.pending
        if entry.completed:
            assert entry.p90_seconds_to_finish >= entry.median_seconds_to_finish >= 0
        else:
            assert entry.median_seconds_to_finish is entry.p90_seconds_to_finish is None
    assert answer[InferenceProvider.wan_local].completed > 0
    assert set(answer.model_dump(mode="json")) == {p.value for p in InferenceProvider}


def test_the_p90_to_finish_is_never_below_the_median(session, settings):
    # Two videos of 8 s and 18 s used to answer a p90 of 8 s below a median of 13 s.
    items = add_items(session, settings, 2, InferenceProvider.wan_local)
    for item, seconds in zip(items, (8, 18), strict=True):
        item.status = ItemStatus.completed
        item.finished_at = item.created_at + timedelta(seconds=seconds)
        session.add(item)
    session.commit()
    wan = provider_stats(session)[InferenceProvider.wan_local]
    assert (wan.median_seconds_to_finish, wan.p90_seconds_to_finish) == (13.0, 18.0)
