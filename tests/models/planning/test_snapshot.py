"""The lanes read from the database (packed on PostgreSQL, row by row on SQLite) and the ETAs
stored from them: a pass writes only the rows whose prediction moved past the tolerance, and
the table then says what a full rewrite would say, within it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.core.enums import GroupPriority, InferenceProvider
from reelroute.models.core.tables import ItemEta, VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.items.lifecycle import cancel_item, claim_item
from reelroute.models.planning.replanning import (
    EXACT_PLACES,
    TIME_SLACK_S,
    StoredEtas,
    store_etas,
)
from reelroute.models.planning.snapshot import Snapshot, build_snapshot
from tests.models.helpers import add_group_with_photos

WAN, TURBO = InferenceProvider.wan_local, InferenceProvider.runway_gen4_turbo
VEO = InferenceProvider.runway_veo3_1
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def add(
    session: Session,
    settings,
    tasks: list[dict],
    *,
    at: datetime = T0,
    group=None,
) -> list[VideoItem]:
    group_id, (photo_id,) = group or add_group_with_photos(session, 1, GroupPriority.normal)
    specs = [
        TaskSpec(photo_id=photo_id, prompt=f"task {n}", **task) for n, task in enumerate(tasks)
    ]
    items = add_batch(session, group_id=group_id, tasks=specs, settings=settings, now=at)
    session.commit()
    return items


def mixed(session: Session, settings) -> list[VideoItem]:
    """Items of three providers, named and routed, of several kinds, some due at the same time,
    one at work, one moved, one with no frame count nor duration."""
    items = add(
        session,
        settings,
        [{"inference_provider": WAN.value, "frame_num": 81, "deadline_seconds": 600 * 60}] * 3
        + [{"inference_provider": WAN.value, "frame_num": 121, "deadline_seconds": 300 * 60}] * 2
        + [{"inference_provider": TURBO.value, "duration_s": 5, "deadline_seconds": 60 * 60}] * 3
        + [{"inference_provider": TURBO.value, "duration_s": 10, "deadline_seconds": 90 * 60}]
        + [{"inference_provider": VEO.value, "duration_s": 8, "deadline_seconds": 120 * 60}] * 2
        + [{"duration_s": 5, "deadline_seconds": 45 * 60}] * 3,  # routed by the policy: movable
    )
    claimed = claim_item(
        session, item_id=items[3].id, attempt=1, worker_id="gpu-host:0", settings=settings, now=T0
    )
    assert claimed is not None
    session.execute(
        sa.update(VideoItem)
        .where(col(VideoItem.id) == items[0].id)
        .values(frame_num=None, duration_s=None)
    )
    session.execute(
        sa.update(VideoItem).where(col(VideoItem.id) == items[-1].id).values(rerouted_at=T0)
    )
    session.commit()
    return items


def lanes_of(snapshot: Snapshot) -> dict:
    return {
        provider: (
            lane.keys,
            [round(due, 6) for due in lane.due_s],
            lane.p50,
            lane.p90,
            lane.movable,
            sorted(w.item_id for w in lane.working),
        )
        for provider, lane in snapshot.lanes.items()
    }


def test_the_packed_read_gives_the_lanes_that_the_rows_give(session, settings):
    items = mixed(session, settings)
    now = T0 + timedelta(minutes=3)
    packed = build_snapshot(session, settings, now=now)
    rows = build_snapshot(session, settings, now=now, packed=False)
    assert lanes_of(packed) == lanes_of(rows)
    assert packed.pending_wan == rows.pending_wan == len(packed.lane(WAN)) >= 4
    # Every waiting item is in one lane, in the dispatcher's order, and the one at work is not.
    waiting = [key for lane in packed.lanes.values() for key in lane.keys]
    assert sorted(waiting) == sorted(i.id.bytes for i in items if i.id != items[3].id)
    for lane in packed.lanes.values():
        assert lane.due_s == sorted(lane.due_s)
    assert packed.lane(WAN).working[0].item_id == items[3].id
    # Only routed items that never moved may move.
    movable = {
        key
        for lane in packed.lanes.values()
        for key, m in zip(lane.keys, lane.movable, strict=True)
        if m
    }
    assert movable == {item.id.bytes for item in items[-3:-1]}


@dataclass(frozen=True)
class Row:
    queue_position: int
    eta: datetime
    late_risk: bool


def stored_rows(session: Session) -> dict[uuid.UUID, Row]:
    """item_etas as plain values."""
    session.expire_all()
    return {
        row.item_id: Row(row.queue_position, row.eta, row.late_risk)
        for row in session.exec(select(ItemEta)).all()
    }


def within_tolerance(stored: Row, exact: Row, now: datetime) -> bool:
    position = exact.queue_position
    to_go = (exact.eta - now).total_seconds()
    return (
        stored.late_risk == exact.late_risk
        and abs(stored.queue_position - position) <= max(0, position - 1) // EXACT_PLACES
        and abs((stored.eta - exact.eta).total_seconds()) <= max(TIME_SLACK_S, 0.01 * to_go) + 1e-3
    )


def test_a_pass_writes_only_what_moved_and_the_table_stays_within_the_tolerance(session, settings):
    one_gpu = settings.replaced(gpu_slots=1)
    group = add_group_with_photos(session, 1, GroupPriority.normal)
    queued = add(
        session,
        one_gpu,
        [{"inference_provider": WAN.value, "frame_num": 81, "deadline_seconds": 29 * 24 * 3600}]
        * 250,
        group=group,
    )
    first = build_snapshot(session, one_gpu, now=T0)
    stored = store_etas(session, first)
    session.commit()
    before = stored_rows(session)
    assert len(before) == 250 and len(stored.rows) == 250

    # The head item starts, one item is cancelled, and an urgent one goes to the head.
    at = T0 + timedelta(seconds=30)
    assert claim_item(
        session, item_id=queued[0].id, attempt=1, worker_id="h:0", settings=one_gpu, now=at
    )
    cancel_item(session, item_id=queued[7].id)
    session.commit()
    [urgent] = add(
        session,
        one_gpu,
        [{"inference_provider": WAN.value, "frame_num": 81, "deadline_seconds": 30 * 60}],
        at=at,
        group=group,
    )
    second = build_snapshot(session, one_gpu, now=at)
    stored = store_etas(session, second, stored)
    session.commit()
    after = stored_rows(session)

    # What a full rewrite says at the same moment, in a savepoint rolled back.
    nested = session.begin_nested()
    store_etas(session, build_snapshot(session, one_gpu, now=at))
    session.flush()
    exact = stored_rows(session)
    nested.rollback()
    assert stored_rows(session) == after
    assert after.keys() == exact.keys()  # the cancelled item's row is gone, the new one is there
    assert queued[7].id not in after and urgent.id in after
    assert after[queued[0].id].queue_position == 0  # at work
    assert after[urgent.id].queue_position == 1
    assert all(within_tolerance(after[key], exact[key], at) for key in exact)
    for key, row in exact.items():  # the first places are exact
        if row.queue_position <= EXACT_PLACES:
            assert after[key].queue_position == row.queue_position
    # Far down the queue, one place and one video more is within 1 %: those rows stay.
    untouched = [key for key in after if key in before and after[key].eta == before[key].eta]
    assert len(untouched) > 100
    # What the planner keeps is what the table holds.
    assert {uuid.UUID(bytes=key): value[0] for key, value in stored.rows.items()} == {
        key: row.queue_position for key, row in after.items()
    }


def test_a_pass_without_what_was_stored_writes_every_row(session, settings):
    items = mixed(session, settings)
    store_etas(session, build_snapshot(session, settings, now=T0))
    session.commit()
    session.execute(sa.update(ItemEta).values(queue_position=999))  # rows out of step
    session.commit()
    stored = store_etas(session, build_snapshot(session, settings, now=T0))
    session.commit()
    rows = stored_rows(session)
    assert len(rows) == len(items) == len(stored.rows)
    assert 999 not in {row.queue_position for row in rows.values()}


@pytest.mark.parametrize("now_offset", [0, 3600])
def test_stored_etas_are_kept_per_item_key(session, settings, now_offset):
    items = mixed(session, settings)
    at = T0 + timedelta(seconds=now_offset)
    stored = store_etas(session, build_snapshot(session, settings, now=at))
    session.commit()
    assert isinstance(stored, StoredEtas)
    assert set(stored.rows) == {item.id.bytes for item in items}
    rows = stored_rows(session)
    for item in items:
        position, finish, late = stored.rows[item.id.bytes]
        row = rows[item.id]
        assert (position, late) == (row.queue_position, row.late_risk)
        assert finish == pytest.approx(row.eta.timestamp(), abs=1e-3)
