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

from reelroute.models.budgets import BudgetExceeded, lock_budgets, release, reserve
from reelroute.models.catalogue import info
from reelroute.models.enums import GroupPriority, InferenceProvider, ItemStatus, RoutedBy
from reelroute.models.eta import Waiting
from reelroute.models.routing import RouteRequest, default_allowed, usable, when
from reelroute.models.snapshot import Snapshot
from reelroute.models.sql import rowcount, sql
from reelroute.models.tables import Group, ItemEta, Reroute, VideoItem

WAN = InferenceProvider.wan_local
SPARE = 0.25  # Runway -> Wan only when Wan is done with a quarter of the time left to spare


def store_etas(session: Session, snapshot: Snapshot) -> int:
    """Replace the stored ETAs with the snapshot's; returns how many items have one."""
    rows: list[dict[str, object]] = []
    for lane in snapshot.lanes.values():
        for working in lane.working:
            end = working.started_at + timedelta(seconds=working.seconds_p50)
            rows.append(
                {
                    "item_id": working.item_id,
                    "queue_position": 0,
                    "start_at": working.started_at,
                    "eta": max(end, snapshot.now),
                    "eta_p90": max(end, snapshot.now),
                    "late_risk": False,
                }
            )
        for prediction in lane.replay():
            rows.append(
                {
                    "item_id": prediction.item_id,
                    "queue_position": prediction.position,
                    "start_at": prediction.start,
                    "eta": prediction.finish,
                    "eta_p90": prediction.finish_p90,
                    "late_risk": prediction.late_risk,
                }
            )
    session.execute(sa.delete(ItemEta))
    if rows:
        session.execute(sa.insert(ItemEta), rows)
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
    credits = info(to).credits_for(item.duration_s, item.frame_num)
    params = {
        "item_id": item.id,
        "from_provider": item.inference_provider.value,
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
                    from_provider=item.inference_provider,
                    to_provider=to,
                    reason=reason,
                    moved_at=snapshot.now,
                )
            )
    except BudgetExceeded:
        return None
    p50, p90 = snapshot.estimates.seconds(to, item.frame_num, item.duration_s, item.id)
    snapshot.lane(item.inference_provider).remove(item.id)
    snapshot.lane(to).add(Waiting(item.id, item.due_at, p50, p90))
    snapshot.caps.take(to, item.group_id, credits)
    return Move(item.id, item.inference_provider, to, reason, item.flow_run_id)


def reroute_waiting(session: Session, snapshot: Snapshot) -> list[Move]:
    """Move the waiting items whose prediction changed (see the module's docstring)."""
    moves = _late_wan_to_runway(session, snapshot)
    moves += _runway_to_idle_wan(session, snapshot)
    return moves


def _late_wan_to_runway(session: Session, snapshot: Snapshot) -> list[Move]:
    late = snapshot.lane(WAN).late()
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
    waiting = [
        (provider, prediction)
        for provider, lane in snapshot.lanes.items()
        if provider is not WAN
        for prediction in lane.replay()
    ]
    waiting.sort(key=lambda pair: pair[1].due_at)
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
