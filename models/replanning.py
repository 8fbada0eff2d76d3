"""What the dispatcher redoes every few seconds: the queues replayed into ETAs, and waiting
items moved when their prediction changed.

- ETAs: every waiting item's queue position, predicted start, finish and late risk, replayed
  on its provider's slots, are stored in `item_etas` (the API, the queue page and statistics
  read them); an item at work gets position 0 and its predicted end.
- Moves: a waiting Wan item, auto-routed and never started (a flow run made for it but not
  started stays behind, fenced off by the provider in its claim), that is now predicted late moves
  to the cheapest Runway model the group allows that meets its deadline (a GPU host down, or
  videos slower than estimated). A waiting auto-routed Runway item moves to Wan when Wan has a
  free slot and nothing waiting, and meets its deadline with room to spare. An item moves at
  most once (no ping-pong); each move is recorded with its reason and its budget is moved too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models import events
from reelroute.models.budgets import BudgetExceeded, lock_budgets, release, reserve
from reelroute.models.catalogue import info
from reelroute.models.enums import GroupPriority, InferenceProvider, ItemStatus, RoutedBy
from reelroute.models.eta import Lane, Waiting
from reelroute.models.events import record
from reelroute.models.routing import RouteRequest, default_allowed, usable, when
from reelroute.models.snapshot import Snapshot
from reelroute.models.sql import rowcount, sql
from reelroute.models.tables import Group, ItemEta, Reroute, VideoItem

WAN = InferenceProvider.wan_local
SPARE = 0.25  # Runway -> Wan only when Wan is done with a quarter of the time left to spare
MOVES_PER_PASS = 100  # candidates looked at per direction and pass (each move replays a lane)


ETA_COLUMNS = ("item_id", "queue_position", "start_at", "eta", "eta_p90", "late_risk")
# PostgreSQL: the predictions are copied in as seconds from `now` (COPY, binary-fast), and the
# timestamps made by the server.
ETA_STAGE = """
CREATE TEMPORARY TABLE eta_stage (
    item_id uuid, queue_position integer, start_s float8, finish_s float8, p90_s float8,
    late_risk boolean
) ON COMMIT DROP
"""
ETA_FROM_STAGE = """
INSERT INTO item_etas (item_id, queue_position, start_at, eta, eta_p90, late_risk)
SELECT item_id, queue_position, %(now)s + make_interval(secs => start_s),
       %(now)s + make_interval(secs => finish_s), %(now)s + make_interval(secs => p90_s),
       late_risk
FROM eta_stage
"""


def _eta_rows(snapshot: Snapshot) -> list[tuple[uuid.UUID, int, float, float, float, bool]]:
    """(item, position, start, finish, finish at p90, late risk), times in seconds from now."""
    now = snapshot.now
    rows = []
    for lane in snapshot.lanes.values():
        for working in lane.working:
            end = max(0.0, (working.started_at - now).total_seconds() + working.seconds_p50)
            started = (working.started_at - now).total_seconds()
            rows.append((working.item_id, 0, started, end, end, False))
        rows.extend(
            (p.item_id, p.position, p.start_s, p.finish_s, p.finish_p90_s, p.late_risk)
            for p in lane.replay()
        )
    return rows


def store_etas(session: Session, snapshot: Snapshot) -> int:
    """Replace the stored ETAs with the snapshot's; returns how many items have one."""
    rows = _eta_rows(snapshot)
    session.execute(sa.delete(ItemEta))
    if not rows:
        return 0
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.execute(ETA_STAGE)
            with cursor.copy("COPY eta_stage FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(ETA_FROM_STAGE, {"now": snapshot.now})
            cursor.execute("DROP TABLE eta_stage")
        return len(rows)
    now = snapshot.now
    session.execute(
        sa.insert(ItemEta),
        [
            dict(
                zip(
                    ETA_COLUMNS,
                    (
                        item_id,
                        position,
                        now + timedelta(seconds=start),
                        now + timedelta(seconds=finish),
                        now + timedelta(seconds=p90),
                        late,
                    ),
                    strict=True,
                )
            )
            for item_id, position, start, finish, p90, late in rows
        ],
    )
    return len(rows)


@dataclass(frozen=True)
class Move:
    """One waiting item sent to another provider."""

    item_id: uuid.UUID
    from_provider: InferenceProvider
    to_provider: InferenceProvider
    reason: str
    abandoned_run: uuid.UUID | None = None
    """The flow run made for the item before it moved (never started); to be cancelled."""


# A run already made for the item but not started (its worker is down, say) stays behind: the
# claim is fenced on the provider, so it can no longer take the item; the planner cancels it.
MOVE = """
UPDATE video_items
SET inference_provider = :to_provider, routed_by = 'rerouted', route_reason = :reason,
    rerouted_at = :now, updated_at = :now, flow_run_id = NULL
WHERE id = :item_id AND status = 'pending' AND inference_provider = :from_provider
  AND retry_count = 0 AND rerouted_at IS NULL AND routed_by <> 'explicit'
"""


def _movable(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[VideoItem, Group]]:
    """The items among `ids` that may still move, with their group."""
    if not ids:
        return {}
    query = (
        select(VideoItem, Group)
        .join(Group, col(Group.id) == col(VideoItem.group_id))
        .where(col(VideoItem.id).in_(ids))
        .where(col(VideoItem.status) == ItemStatus.pending)
        .where(col(VideoItem.retry_count) == 0)
        .where(col(VideoItem.rerouted_at).is_(None))
        .where(col(VideoItem.routed_by) != RoutedBy.explicit)
        .execution_options(populate_existing=True)
    )
    return {item.id: (item, group) for item, group in session.exec(query).all()}


def _request(item: VideoItem, group: Group) -> RouteRequest:
    allowed = tuple(InferenceProvider(p) for p in group.allowed_providers or ()) or (
        default_allowed(group.priority)
    )
    return RouteRequest(
        requested=None,
        group_id=group.id,
        priority=GroupPriority(group.priority),
        group_default=None,
        allowed=allowed,
        due_at=item.due_at,
        frame_num=item.frame_num,
        duration_s=item.duration_s,
        item_id=item.id,
    )


def _move(
    session: Session,
    snapshot: Snapshot,
    item: VideoItem,
    to: InferenceProvider,
    reason: str,
) -> Move | None:
    """Move one item (and its budget) in a savepoint: None when it changed meanwhile or a cap
    says no."""
    origin = item.inference_provider  # the refresh after the move changes `item`
    abandoned = item.flow_run_id
    credits = info(to).credits_for(item.duration_s, item.frame_num)
    params = {
        "item_id": item.id,
        "from_provider": origin.value,
        "to_provider": to.value,
        "reason": reason,
        "now": snapshot.now,
    }
    try:
        with session.begin_nested():
            lock_budgets(session, group_id=item.group_id, now=snapshot.now)
            if rowcount(session.execute(sql(MOVE), params)) == 0:
                return None
            release(session, item_id=item.id)
            reserve(
                session,
                item_id=item.id,
                provider=to,
                group_id=item.group_id,
                credits=credits,
                now=snapshot.now,
            )
            session.add(
                Reroute(
                    item_id=item.id,
                    from_provider=origin,
                    to_provider=to,
                    reason=reason,
                    moved_at=snapshot.now,
                )
            )
            moved = session.get(VideoItem, item.id, populate_existing=True)
            if moved is not None:
                record(session, [moved], events.REROUTED, detail=reason, now=snapshot.now)
    except BudgetExceeded:
        return None
    p50, p90 = snapshot.estimates.seconds(to, item.frame_num, item.duration_s, item.id)
    snapshot.lane(origin).remove(item.id)
    snapshot.lane(to).add(Waiting(item.id, item.due_at, p50, p90))
    snapshot.caps.take(to, item.group_id, credits)
    return Move(item.id, origin, to, reason, abandoned)


def reroute_waiting(session: Session, snapshot: Snapshot) -> list[Move]:
    """Move the waiting items whose prediction changed (see the module's docstring)."""
    moves = _late_wan_to_runway(session, snapshot)
    moves += _runway_to_idle_wan(session, snapshot)
    return moves


def _candidates(lane: Lane) -> set[uuid.UUID]:
    """The waiting items of the lane that may still move (as the snapshot read them)."""
    return {item.item_id for item in lane.waiting if item.movable}


def _late_wan_to_runway(session: Session, snapshot: Snapshot) -> list[Move]:
    lane = snapshot.lane(WAN)
    may_move = _candidates(lane)
    # The earliest due first, a bounded number a pass: the rest are looked at next pass.
    late = [p for p in lane.late() if p.item_id in may_move][:MOVES_PER_PASS]
    movable = _movable(session, [p.item_id for p in late])
    moves = []
    for prediction in late:
        if prediction.item_id not in movable:
            continue
        item, group = movable[prediction.item_id]
        request = _request(item, group)
        options = sorted(
            (p for p in request.allowed if p is not WAN and usable(request, snapshot, p) is None),
            key=lambda p: request.credits(p),
        )
        for provider in options:
            p50, p90 = snapshot.estimates.seconds(
                provider, item.frame_num, item.duration_s, item.id
            )
            added = snapshot.lane(provider).if_added(item.due_at, p50, p90)
            if not added.meets(item.due_at):
                continue
            reason = (
                f"moved from Wan: now predicted {when(prediction.finish_p90, snapshot.now)}, "
                f"due {when(item.due_at, snapshot.now)}; {info(provider).badge} predicted "
                f"{when(added.finish_p90, snapshot.now)} (UTC)"
            )
            move = _move(session, snapshot, item, provider, reason)
            if move is not None:
                moves.append(move)
                break
    return moves


def _runway_to_idle_wan(session: Session, snapshot: Snapshot) -> list[Move]:
    wan = snapshot.lane(WAN)
    free = wan.slots - len(wan.working)
    if free <= 0 or wan.waiting:
        return []
    waiting = []
    for provider, lane in snapshot.lanes.items():
        if provider is not WAN:
            may_move = _candidates(lane)
            # Each lane is in due order: its first candidates are all a pass could take.
            found = (p for p in lane.replay() if p.item_id in may_move)
            waiting += [(provider, p) for _, p in zip(range(MOVES_PER_PASS), found, strict=False)]
    waiting.sort(key=lambda pair: pair[1].due_at)
    waiting = waiting[:MOVES_PER_PASS]
    movable = _movable(session, [prediction.item_id for _, prediction in waiting])
    moves: list[Move] = []
    for _provider, prediction in waiting:
        if len(moves) >= free:
            break
        if prediction.item_id not in movable:
            continue
        item, group = movable[prediction.item_id]
        request = _request(item, group)
        if WAN not in request.allowed:
            continue
        p50, p90 = snapshot.estimates.seconds(WAN, item.frame_num, item.duration_s, item.id)
        added = wan.if_added(item.due_at, p50, p90)
        spare = (item.due_at - snapshot.now) * SPARE
        if added.harms_others or added.finish_p90 > item.due_at - spare:
            continue
        reason = (
            f"moved to Wan, idle: predicted {when(added.finish_p90, snapshot.now)}, due "
            f"{when(item.due_at, snapshot.now)} (UTC), at no cost"
        )
        move = _move(session, snapshot, item, WAN, reason)
        if move is not None:
            moves.append(move)
    return moves


def moves_of(session: Session, item_id: uuid.UUID) -> list[Reroute]:
    """The moves of one item, oldest first."""
    query = select(Reroute).where(Reroute.item_id == item_id).order_by(col(Reroute.moved_at))
    return list(session.exec(query).all())


def eta_of(session: Session, item_id: uuid.UUID) -> ItemEta | None:
    """The stored ETA of an item (None: finished, or not replayed yet)."""
    return session.get(ItemEta, item_id)


def predicted_late(session: Session) -> int:
    """How many waiting items the last replay found likely to miss their deadline."""
    return int(
        session.execute(
            sa.select(sa.func.count()).select_from(ItemEta).where(col(ItemEta.late_risk))
        ).scalar_one()
    )
