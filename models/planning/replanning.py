"""What the dispatcher redoes every few seconds: the queues replayed into ETAs, and waiting
items moved when their prediction changed.

- ETAs: every waiting item's queue position, predicted start, finish and late risk, replayed
  on its provider's slots, are stored in `item_etas` (the API, the queue page and statistics
  read them); an item at work gets position 0 and its predicted end.
- Moves: a waiting Wan item, auto-routed and with no provider task to resume (a flow run made
  for it but not started stays behind, fenced off by the provider in its claim), that is now
  predicted late moves
  to the cheapest Runway model the group allows that meets its deadline (a GPU host down, or
  videos slower than estimated). A waiting auto-routed Runway item moves to Wan when Wan has a
  free slot and nothing waiting, and meets its deadline with room to spare. A waiting
  auto-routed item of a Runway model whose breaker is open (models.health) moves to the cheapest
  option that still makes its due time within budget; without one it waits for the model. An
  item moves at most once (no ping-pong); each move is recorded with its reason and its budget
  is moved too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.core.catalogue import info
from reelroute.models.core.enums import (
    GroupPriority,
    InferenceProvider,
    ItemStatus,
    RoutedBy,
)
from reelroute.models.core.formats import clock
from reelroute.models.core.tables import Group, ItemEta, VideoItem, utcnow
from reelroute.models.items.lifecycle import move_item
from reelroute.models.money.budgets import BudgetExceeded, lock_budgets
from reelroute.models.planning.eta import Waiting
from reelroute.models.planning.routing import (
    RouteRequest,
    RoutingDecision,
    allowed_for,
    default_allowed,
    option_credits,
    usable,
)
from reelroute.models.planning.settings import PlanningConfig
from reelroute.models.planning.snapshot import Snapshot
from reelroute.models.planning.tables import PredictedLate, Reroute
from reelroute.models.store.copy import write_rows
from reelroute.models.store.queries.planning import ETA_FROM_STAGE, ETA_STAGE, ETA_STAGE_COPY
from reelroute.models.store.sql import rowcount, sql
from reelroute.models.store.tallies import count_move

WAN = InferenceProvider.wan_local
SPARE = 0.25  # Runway -> Wan only when Wan is done with a quarter of the time left to spare
MOVES_PER_PASS = 100  # candidates looked at per direction and pass (each move replays a lane)


ETA_COLUMNS = ("item_id", "queue_position", "start_at", "eta", "eta_p90", "late_risk")
EXACT_PLACES = 100
"""Queue positions up to this are stored exactly; beyond it, within 1 %."""
TIME_SLACK_S = 10.0
"""Predicted times are stored within 1 % of the time to go, and at least this many seconds."""

EtaRow = tuple[bytes, int, float, float, float, bool]
"""(item key, position (0: at work), start, finish, finish at p90, late risk), times in seconds
from the snapshot's `now`."""


@dataclass
class StoredEtas:
    """What `item_etas` holds, as this dispatcher's passes wrote it: per item key, (position,
    finish (epoch seconds), late risk). Kept by the dispatcher between passes, so that a pass
    writes only the rows whose prediction moved past the tolerance (EXACT_PLACES,
    TIME_SLACK_S); a dispatcher that starts, or whose pass failed, has None and writes every
    row once."""

    rows: dict[bytes, tuple[int, float, bool]]


def _moved(
    old: tuple[int, float, bool] | None, position: int, finish: float, late: bool, now_s: float
) -> bool:
    """Whether a stored row is past the tolerance (`finish` in seconds from `now_s`)."""
    return (
        old is None
        or old[2] is not late
        or abs(old[0] - position) > max(0, position - 1) // EXACT_PLACES
        or abs(old[1] - now_s - finish) > max(TIME_SLACK_S, 0.01 * finish)
    )


def _eta_rows(snapshot: Snapshot, stored: StoredEtas | None) -> tuple[list[EtaRow], set[bytes]]:
    """The rows to write (every row when `stored` is None, else those past the tolerance, and
    `stored` is brought up to date), and the keys of every item with a prediction."""
    now = snapshot.now
    now_s = now.timestamp()
    before = stored.rows if stored is not None else {}
    rows: list[EtaRow] = []
    keys: set[bytes] = set()
    for lane in snapshot.lanes.values():
        for working in lane.working:
            key = working.item_id.bytes
            end = lane.end_of(working)
            keys.add(key)
            if stored is None or _moved(before.get(key), 0, end, False, now_s):
                started = (working.started_at - now).total_seconds()
                rows.append((key, 0, started, end, end, False))
        lane.replayed()
        keys.update(lane.keys)
        if stored is None:
            rows += zip(
                lane.keys,
                range(1, len(lane) + 1),
                lane.start_s,
                lane.finish_s,
                lane.finish_p90_s,
                lane.late_risk,
                strict=True,
            )
            continue
        # The hot loop of a pass at 100,000 waiting items: no object per item that stays.
        slack, exact = TIME_SLACK_S, EXACT_PLACES
        olds = map(before.get, lane.keys)
        for index, (old, finish, late) in enumerate(
            zip(olds, lane.finish_s, lane.late_risk, strict=True)
        ):
            position = index + 1
            if (
                old is None
                or old[2] is not late
                or abs(old[0] - position) > (position - 1) // exact
                or abs(old[1] - now_s - finish) > (slack if finish < 100 * slack else 0.01 * finish)
            ):
                rows.append(
                    (
                        lane.keys[index],
                        position,
                        lane.start_s[index],
                        finish,
                        lane.finish_p90_s[index],
                        late,
                    )
                )
    return rows, keys


MOVES_KEPT = timedelta(days=30)
"""How long `item_reroutes` keeps a move (an item's history); `move_tallies` counts them all."""


def _store_late(session: Session, snapshot: Snapshot) -> None:
    """The waiting items predicted late per provider, as this pass replayed them (every
    provider's row, zeros too): what /metrics and the statistics read."""
    counts = {
        provider.value: sum(1 for late in lane.late_risk if late)
        for provider, lane in snapshot.lanes.items()
    }
    if not counts:
        return
    rows = [
        {"provider": provider, "items": items, "updated_at": snapshot.now}
        for provider, items in counts.items()
    ]
    session.execute(sa.delete(PredictedLate).where(col(PredictedLate.provider).in_(list(counts))))
    session.execute(sa.insert(PredictedLate), rows)


def prune_moves(session: Session, *, now: datetime | None = None) -> int:
    """Forget the moves older than MOVES_KEPT (the reconciler, every pass); returns how many."""
    before = (now or utcnow()) - MOVES_KEPT
    done = session.execute(sa.delete(Reroute).where(col(Reroute.moved_at) < before))
    return rowcount(done)


def store_etas(
    session: Session, snapshot: Snapshot, stored: StoredEtas | None = None
) -> StoredEtas:
    """Bring `item_etas` to the snapshot's predictions and return what it then holds (once
    committed): every row is written when `stored` is None; else `stored` (what the caller's
    last committed pass returned; it is updated in place) says which rows moved past the
    tolerance, and only those are written. Rows of items no longer queued are deleted."""
    rows, keys = _eta_rows(snapshot, stored)
    _store_late(session, snapshot)
    now_s = snapshot.now.timestamp()
    if stored is None:
        session.execute(sa.delete(ItemEta))
        stored, gone = StoredEtas({}), []
    else:
        gone = list(stored.rows.keys() - keys)
    for key in gone:
        del stored.rows[key]
    for key, position, _, finish, _, late in rows:
        stored.rows[key] = (position, now_s + finish, late)
    stale = [uuid.UUID(bytes=key) for key in gone]
    postgres = session.connection().dialect.name == "postgresql"
    if not postgres:  # SQLite: replaced rows are deleted first
        stale += [uuid.UUID(bytes=row[0]) for row in rows]
    for chunk in range(0, len(stale), 10_000):
        batch = stale[chunk : chunk + 10_000]
        session.execute(sa.delete(ItemEta).where(col(ItemEta.item_id).in_(batch)))
    if not rows:
        return stored
    if postgres:
        session.execute(sa.text(ETA_STAGE))
        write_rows(session, ETA_STAGE_COPY, ("16s", "i", "d", "d", "d", "?"), rows)
        session.execute(sql(ETA_FROM_STAGE), {"now": snapshot.now})
        session.execute(sa.text("DROP TABLE eta_stage"))
        return stored
    now = snapshot.now
    session.execute(
        sa.insert(ItemEta),
        [
            dict(
                zip(
                    ETA_COLUMNS,
                    (
                        uuid.UUID(bytes=key),
                        position,
                        now + timedelta(seconds=start),
                        now + timedelta(seconds=finish),
                        now + timedelta(seconds=p90),
                        late,
                    ),
                    strict=True,
                )
            )
            for key, position, start, finish, p90, late in rows
        ],
    )
    return stored


@dataclass(frozen=True)
class Move:
    """One waiting item sent to another provider."""

    item_id: uuid.UUID
    from_provider: InferenceProvider
    to_provider: InferenceProvider
    reason: str
    abandoned_run: uuid.UUID | None = None
    """The flow run made for the item before it moved (never started); to be cancelled."""


def _movable(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[VideoItem, Group]]:
    """The items among `ids` that may still move, with their group."""
    if not ids:
        return {}
    query = (
        select(VideoItem, Group)
        .join(Group, col(Group.id) == col(VideoItem.group_id))
        .where(col(VideoItem.id).in_(ids))
        .where(col(VideoItem.status) == ItemStatus.pending)
        .where(col(VideoItem.provider_task_id).is_(None))
        .where(col(VideoItem.rerouted_at).is_(None))
        .where(col(VideoItem.routed_by) != RoutedBy.explicit)
        .execution_options(populate_existing=True)
    )
    return {item.id: (item, group) for item, group in session.exec(query).all()}


def _request(item: VideoItem, group: Group) -> RouteRequest:
    allowed = allowed_for(group)
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
        full_quality=item.wan_full_quality,
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
    try:
        with session.begin_nested():
            lock_budgets(session, group_id=item.group_id, now=snapshot.now)
            moved = move_item(
                session,
                item_id=item.id,
                origin=origin,
                to=to,
                reason=reason,
                credits=credits,
                now=snapshot.now,
            )
            if moved is None:
                return None
            session.add(
                Reroute(
                    item_id=item.id,
                    from_provider=origin,
                    to_provider=to,
                    reason=reason,
                    moved_at=snapshot.now,
                )
            )
            count_move(session, origin.value, to.value)
    except BudgetExceeded:
        return None
    p50, p90 = snapshot.estimates.seconds(to, item.frame_num, item.duration_s, item.id)
    snapshot.lane(origin).remove(item.id)
    snapshot.lane(to).add(Waiting(item.id, item.due_at, p50, p90))
    snapshot.caps.take(to, item.group_id, credits)
    return Move(item.id, origin, to, reason, abandoned)


def _first_on_time(
    session: Session,
    snapshot: Snapshot,
    item: VideoItem,
    request: RouteRequest,
    origin: InferenceProvider,
    reason: tuple[str, str],
) -> Move | None:
    """Move `item` off `origin` to the cheapest usable option whose predicted finish meets its
    due time; its reason is `reason`'s two parts around "<option> predicted <finish>". None when
    none does, or none could take it."""
    options = sorted(
        (p for p in request.allowed if p is not origin and usable(request, snapshot, p) is None),
        key=lambda p: option_credits(request, snapshot, p),
    )
    for provider in options:
        p50, p90 = snapshot.estimates.seconds(provider, item.frame_num, item.duration_s, item.id)
        added = snapshot.lane(provider).if_added(item.due_at, p50, p90)
        if not added.meets(item.due_at):
            continue
        predicted = f"{info(provider).badge} predicted {clock(added.finish_p90, snapshot.now)}"
        move = _move(session, snapshot, item, provider, reason[0] + predicted + reason[1])
        if move is not None:
            return move
    return None


def reroute_waiting(session: Session, snapshot: Snapshot) -> list[Move]:
    """Move the waiting items whose prediction changed (see the module's docstring)."""
    moves = _off_unavailable(session, snapshot)
    moves += _late_wan_to_runway(session, snapshot)
    moves += _runway_to_idle_wan(session, snapshot)
    return moves


def _off_unavailable(session: Session, snapshot: Snapshot) -> list[Move]:
    """Waiting items of models whose breaker is open, to the cheapest option on time."""
    moves: list[Move] = []
    for origin, why in snapshot.unavailable.items():
        lane = snapshot.lane(origin)
        waiting = [lane.prediction(i) for i in lane.movable_indices(MOVES_PER_PASS)]
        movable = _movable(session, [p.item_id for p in waiting])
        for entry in waiting:
            if entry.item_id not in movable:
                continue
            item, group = movable[entry.item_id]
            move = _first_on_time(
                session,
                snapshot,
                item,
                _request(item, group),
                origin,
                (f"moved: {why}; ", f", due {clock(item.due_at, snapshot.now)} (UTC)"),
            )
            if move is not None:
                moves.append(move)
    return moves


def _late_wan_to_runway(session: Session, snapshot: Snapshot) -> list[Move]:
    lane = snapshot.lane(WAN)
    # The earliest due first, a bounded number a pass: the rest are looked at next pass.
    late = [lane.prediction(i) for i in lane.movable_indices(MOVES_PER_PASS, late_only=True)]
    movable = _movable(session, [p.item_id for p in late])
    moves = []
    for prediction in late:
        if prediction.item_id not in movable:
            continue
        item, group = movable[prediction.item_id]
        was = clock(prediction.finish_p90, snapshot.now)
        move = _first_on_time(
            session,
            snapshot,
            item,
            _request(item, group),
            WAN,
            (
                f"moved from Wan: now predicted {was}, due {clock(item.due_at, snapshot.now)}; ",
                " (UTC)",
            ),
        )
        if move is not None:
            moves.append(move)
    return moves


def _runway_to_idle_wan(session: Session, snapshot: Snapshot) -> list[Move]:
    wan = snapshot.lane(WAN)
    free = wan.slots - len(wan.working)
    if free <= 0 or len(wan):
        return []
    waiting = []
    for provider, lane in snapshot.lanes.items():
        if provider is not WAN:
            # Each lane is in due order: its first candidates are all a pass could take.
            found = lane.movable_indices(MOVES_PER_PASS)
            waiting += [(provider, lane.prediction(i)) for i in found]
    waiting.sort(key=lambda pair: pair[1].due_at)
    waiting = waiting[:MOVES_PER_PASS]
    movable = _movable(session, [prediction.item_id for _, prediction in waiting])
    moves: list[Move] = []
    for origin, prediction in waiting:
        if len(moves) >= free:
            break
        if prediction.item_id not in movable:
            continue
        item, group = movable[prediction.item_id]
        request = _request(item, group)
        if WAN not in request.allowed or usable(request, snapshot, WAN) is not None:
            continue
        gpu = option_credits(request, snapshot, WAN)
        if gpu > option_credits(request, snapshot, origin):
            continue  # GPUs billed per second would cost more than the paid model
        p50, p90 = snapshot.estimates.seconds(WAN, item.frame_num, item.duration_s, item.id)
        added = wan.if_added(item.due_at, p50, p90)
        spare = (item.due_at - snapshot.now) * SPARE
        if added.harms_others or added.finish_p90 > item.due_at - spare:
            continue
        cost = f"GPU time about {gpu / 100:.2f} $" if gpu else "at no cost"
        reason = (
            f"moved to Wan, idle: predicted {clock(added.finish_p90, snapshot.now)}, due "
            f"{clock(item.due_at, snapshot.now)} (UTC), {cost}"
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


def predicted_late(session: Session) -> dict[str, int]:
    """Per provider, how many waiting items the last replay found likely to miss their
    deadline (the planner's `predicted_late` rows: no count of the waiting items)."""
    return {row.provider: row.items for row in session.exec(select(PredictedLate)).all()}


def next_option(
    session: Session, settings: PlanningConfig, item: VideoItem, *, now: datetime | None = None
) -> RoutingDecision | None:
    """Where an item whose video is made again goes: the deadline policy over its group's
    allowed providers, its current one left out (within budget and Runway's limits); None when
    no other option can take it."""
    from reelroute.models.planning.routing import deadline_choice
    from reelroute.models.planning.snapshot import build_snapshot

    now = now or utcnow()
    group = session.get(Group, item.group_id) if item.group_id else None
    request = (
        _request(item, group)
        if group is not None
        else RouteRequest(
            requested=None,
            group_id=None,
            priority=GroupPriority.normal,
            group_default=None,
            allowed=default_allowed(GroupPriority.normal),
            due_at=item.due_at,
            frame_num=item.frame_num,
            duration_s=item.duration_s,
            item_id=item.id,
            full_quality=item.wan_full_quality,
        )
    )
    snapshot = build_snapshot(session, settings, now=now)
    decision = deadline_choice(request, snapshot, exclude=frozenset({item.inference_provider}))
    if decision.provider is item.inference_provider:
        return None  # every other option is at a cap, or not allowed
    return decision
