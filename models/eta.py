"""When will a video be ready? The queue of one provider replayed on its slots.

A lane is one provider's work: the items it is making now (each holding a slot until its
predicted end) and the items waiting for it, in the order the dispatcher takes them (earliest
due first). Replaying the waiting items on the slots gives each its queue position, predicted
start and predicted finish (at the median and at the 90th percentile of the service time).

Pure functions of what they are given: the dispatcher, the routing policy, the API and
`reelroute replay` (on a simulated clock) all use them.
"""

from __future__ import annotations

import bisect
import heapq
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Working:
    """An item being made: it holds a slot until it is predicted to end."""

    item_id: uuid.UUID
    started_at: datetime
    seconds_p50: float


@dataclass(frozen=True, slots=True)
class Waiting:
    """An item waiting for a slot of the lane."""

    item_id: uuid.UUID
    due_at: datetime
    seconds_p50: float
    seconds_p90: float
    movable: bool = True
    """It may still move to another provider (auto-routed, never started, never moved)."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """Where a waiting item stands: its place in the lane and when it should be done (times
    kept as seconds from the lane's `now`; the datetimes are computed when asked for)."""

    item_id: uuid.UUID
    position: int
    """1 for the next item to start."""
    start_s: float
    finish_s: float
    """At the median service time: the ETA."""
    finish_p90_s: float
    due_at: datetime
    now: datetime
    late_risk: bool
    """True when the item is likely to miss its deadline (its p90 finish is past it)."""

    @property
    def start(self) -> datetime:
        """Predicted start."""
        return self.now + timedelta(seconds=self.start_s)

    @property
    def finish(self) -> datetime:
        """Predicted finish at the median service time: the ETA."""
        return self.now + timedelta(seconds=self.finish_s)

    @property
    def finish_p90(self) -> datetime:
        """Predicted finish at the 90th percentile."""
        return self.now + timedelta(seconds=self.finish_p90_s)


@dataclass
class Lane:
    """One provider's slots and queue, replayed from `now`."""

    slots: int
    now: datetime
    working: list[Working] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    """In the dispatcher's order (earliest due first, then oldest)."""

    def __post_init__(self) -> None:
        self.slots = max(self.slots, 1)
        self._replayed: list[Prediction] | None = None

    def _free_times(self) -> list[float]:
        """When each slot is free again, as seconds from `now` (a heap). With more items at
        work than slots (the slots just shrank), a slot frees only as the extra ones end."""
        ends = sorted(
            max(0.0, (w.started_at - self.now).total_seconds() + w.seconds_p50)
            for w in self.working
        )
        if len(ends) >= self.slots:
            free = ends[len(ends) - self.slots :]
        else:
            free = ends + [0.0] * (self.slots - len(ends))
        heapq.heapify(free)
        return free

    def replay(self) -> list[Prediction]:
        """Every waiting item's prediction, in queue order."""
        if self._replayed is None:
            free = self._free_times()
            now = self.now
            pop, push = heapq.heappop, heapq.heappush
            predictions = []
            for position, item in enumerate(self.waiting, start=1):
                start = pop(free)
                push(free, start + item.seconds_p50)
                due_s = (item.due_at - now).total_seconds()
                p90 = start + item.seconds_p90
                predictions.append(
                    Prediction(
                        item.item_id,
                        position,
                        start,
                        start + item.seconds_p50,
                        p90,
                        item.due_at,
                        now,
                        p90 > due_s,
                    )
                )
            self._tail_start = free[0] if free else 0.0
            self._replayed = predictions
            self._index()
        return self._replayed

    def _index(self) -> None:
        """Arrays for `if_added`: dues in order, and the smallest slack of the on-time items
        from each position to the end (slack = due - p90 finish)."""
        assert self._replayed is not None
        self._dues = [p.due_at for p in self._replayed]
        inf = float("inf")
        now = self.now
        suffix = [inf] * (len(self._replayed) + 1)
        smallest = inf
        for index in range(len(self._replayed) - 1, -1, -1):
            prediction = self._replayed[index]
            if not prediction.late_risk:  # an item already late cannot become late
                slack = (prediction.due_at - now).total_seconds() - prediction.finish_p90_s
                smallest = min(smallest, slack)
            suffix[index] = smallest
        self._suffix_slack = suffix

    def if_added(self, due_at: datetime, seconds_p50: float, seconds_p90: float) -> Added:
        """What adding one more item due at `due_at` would give: its predicted finish, and
        whether it would make an item already queued here late."""
        predictions = self.replay()
        position = bisect.bisect_right(self._dues, due_at)
        if position < len(predictions):
            start = predictions[position].start
        else:
            start = self.now + timedelta(seconds=self._tail_start)
        # Everything behind it starts later by about its service time spread over the slots.
        delay = seconds_p50 / self.slots
        harms = self._suffix_slack[position] < delay
        return Added(
            position=position + 1,
            start=start,
            finish=start + timedelta(seconds=seconds_p50),
            finish_p90=start + timedelta(seconds=seconds_p90),
            harms_others=harms,
        )

    def add(self, item: Waiting) -> None:
        """Queue one more item (after those due at the same time)."""
        position = bisect.bisect_right([w.due_at for w in self.waiting], item.due_at)
        self.waiting.insert(position, item)
        self._replayed = None

    def copy(self) -> Lane:
        """An independent lane with the same items (to try additions on)."""
        return Lane(
            slots=self.slots, now=self.now, working=list(self.working), waiting=list(self.waiting)
        )

    def remove(self, item_id: uuid.UUID) -> None:
        """Take an item out of the queue (it moved to another provider)."""
        self.waiting = [w for w in self.waiting if w.item_id != item_id]
        self._replayed = None

    def late(self) -> list[Prediction]:
        """The waiting items likely to miss their deadline."""
        return [p for p in self.replay() if p.late_risk]


@dataclass(frozen=True)
class Added:
    """The prediction for an item not yet in the lane."""

    position: int
    start: datetime
    finish: datetime
    finish_p90: datetime
    harms_others: bool

    def meets(self, due_at: datetime) -> bool:
        """True when it is predicted done by `due_at` (at p90) without making others late."""
        return self.finish_p90 <= due_at and not self.harms_others


def lane_of(
    *,
    slots: int,
    now: datetime,
    working: Iterable[Working],
    waiting: Iterable[Waiting],
    ordered: bool = False,
) -> Lane:
    """A lane, its waiting items put in the dispatcher's order (due, then as given; `ordered`:
    they already are, as the database sent them)."""
    items = list(waiting)
    if not ordered:
        items.sort(key=lambda item: item.due_at)  # stable: as given among equal dues
    return Lane(slots=slots, now=now, working=list(working), waiting=items)
