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
import itertools
import operator
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Working:
    """An item being made: it holds a slot until it is predicted to end."""

    item_id: uuid.UUID
    started_at: datetime
    seconds_p50: float
    host: str | None = None
    """The GPU host making it (Wan), when known: it holds one of that host's slots."""


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
    slot: int = 0
    """The slot it is predicted to run on (its host's speed applies)."""
    speed: float = 1.0
    """That slot's speed: its service time over the reference."""

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


@dataclass(frozen=True)
class Slot:
    """One slot of a lane: whose it is (a GPU host, for Wan) and its speed (its service time
    over the lane's reference service time: 0.1 makes an item ten times faster)."""

    host: str | None = None
    speed: float = 1.0


class Lane:
    """One provider's slots and queue, replayed from `now`. Without `hosts` every slot has the
    reference speed; with them (Wan's GPU hosts, each at its preset's and GPU's speed), each
    slot has its own, and an item at work holds a slot of its host.

    The waiting items are kept as columns (key, due in seconds from `now`, service times,
    movable), in the dispatcher's order, and so are the replay's results: a lane of 100,000
    items is replayed without making an object per item. `replay()` makes the `Prediction`s
    for whoever wants them; the dispatcher's pass reads the columns."""

    def __init__(
        self,
        slots: int,
        now: datetime,
        working: Iterable[Working] = (),
        waiting: Iterable[Waiting] = (),
        hosts: list[Slot] | None = None,
    ) -> None:
        self.slots = len(hosts) if hosts else slots
        self.slots = max(self.slots, 1)
        self.now = now
        self.working = list(working)
        self.hosts = hosts
        self.keys: list[bytes] = []
        """Each waiting item's id (`uuid.UUID.bytes`), in the dispatcher's order (earliest due
        first, then oldest)."""
        self.due_s: list[float] = []
        self.p50: list[float] = []
        self.p90: list[float] = []
        self.movable: list[bool] = []
        self.samples: frozenset[bytes] = frozenset()
        """The keys of the waiting A/B samples' second videos: no deadline of a customer's, so
        they are left out of the harm test (`if_added`)."""
        for item in waiting:
            self._append(item.item_id.bytes, (item.due_at - now).total_seconds(), item)
        self._replayed = False

    def _append(self, key: bytes, due_s: float, item: Waiting) -> None:
        self.keys.append(key)
        self.due_s.append(due_s)
        self.p50.append(item.seconds_p50)
        self.p90.append(item.seconds_p90)
        self.movable.append(item.movable)

    @classmethod
    def of_columns(
        cls,
        *,
        slots: int,
        now: datetime,
        working: Iterable[Working],
        keys: list[bytes],
        due_s: list[float],
        p50: list[float],
        p90: list[float],
        movable: list[bool],
        hosts: list[Slot] | None = None,
    ) -> Lane:
        """A lane from its waiting items' columns, already in the dispatcher's order."""
        lane = cls(slots=slots, now=now, working=working, hosts=hosts)
        lane.keys, lane.due_s, lane.p50, lane.p90, lane.movable = keys, due_s, p50, p90, movable
        return lane

    def __len__(self) -> int:
        """How many items wait."""
        return len(self.keys)

    @property
    def waiting(self) -> list[Waiting]:
        """The waiting items, in queue order (made on each call)."""
        now = self.now
        return [
            Waiting(uuid.UUID(bytes=key), now + timedelta(seconds=due), p50, p90, movable)
            for key, due, p50, p90, movable in zip(
                self.keys, self.due_s, self.p50, self.p90, self.movable, strict=True
            )
        ]

    @property
    def speeds(self) -> list[float]:
        """Each slot's speed."""
        return [slot.speed for slot in self.hosts] if self.hosts else [1.0] * self.slots

    def speed_of(self, host: str | None) -> float:
        """The speed of `host`'s slots (the reference speed for an unknown host)."""
        for slot in self.hosts or ():
            if slot.host == host:
                return slot.speed
        return 1.0

    def end_of(self, work: Working) -> float:
        """When an item at work is predicted to end, in seconds from `now` (0: overdue)."""
        took = work.seconds_p50 * self.speed_of(work.host)
        return max(0.0, (work.started_at - self.now).total_seconds() + took)

    def _free_times(self) -> list[tuple[float, int]]:
        """When each slot is free again, as (seconds from `now`, slot) (a heap). With more items
        at work than slots (the slots just shrank), a slot frees only as the extra ones end."""
        if not self.hosts:
            ends = sorted(
                max(0.0, (w.started_at - self.now).total_seconds() + w.seconds_p50)
                for w in self.working
            )
            if len(ends) >= self.slots:
                times = ends[len(ends) - self.slots :]
            else:
                times = ends + [0.0] * (self.slots - len(ends))
            free = [(time, index) for index, time in enumerate(times)]
        else:
            free = self._free_host_slots(self.hosts)
        heapq.heapify(free)
        return free

    def _free_host_slots(self, hosts: list[Slot]) -> list[tuple[float, int]]:
        """Each host's slots are held by its own items at work (at its speed); items at work on
        an unknown host take the slots that are left."""
        slots_of: dict[str | None, list[int]] = {}
        for index, slot in enumerate(hosts):
            slots_of.setdefault(slot.host, []).append(index)
        times = [0.0] * len(hosts)
        unplaced: list[float] = []
        ends_of: dict[str | None, list[float]] = {}
        for work in self.working:
            host = work.host if work.host in slots_of else None
            speed = hosts[slots_of[host][0]].speed if host is not None else 1.0
            end = max(0.0, (work.started_at - self.now).total_seconds() + work.seconds_p50 * speed)
            if host is None:
                unplaced.append(end)
            else:
                ends_of.setdefault(host, []).append(end)
        for host, ends in ends_of.items():
            for index, end in zip(slots_of[host], sorted(ends, reverse=True), strict=False):
                times[index] = end
        idle = sorted((i for i, t in enumerate(times) if t == 0.0), key=lambda i: hosts[i].speed)
        for index, end in zip(idle, sorted(unplaced, reverse=True), strict=False):
            times[index] = end
        return [(time, index) for index, time in enumerate(times)]

    def _replay(self) -> None:
        """Replay the waiting items on the slots, into columns: start, finish (p50 and p90),
        late risk, slot (and its speed)."""
        if self._replayed:
            return
        free = self._free_times()
        replace = heapq.heapreplace
        starts: list[float] = []
        finishes: list[float] = []
        finishes_p90: list[float] = []
        slots: list[int] = []
        if not self.hosts:  # every slot at the reference speed: the hot path
            for p50, p90 in zip(self.p50, self.p90, strict=True):
                start, slot = free[0]
                replace(free, (start + p50, slot))
                starts.append(start)
                finishes.append(start + p50)
                finishes_p90.append(start + p90)
                slots.append(slot)
        else:
            speeds = self.speeds
            for p50, p90 in zip(self.p50, self.p90, strict=True):
                start, slot = free[0]
                speed = speeds[slot]
                replace(free, (start + p50 * speed, slot))
                starts.append(start)
                finishes.append(start + p50 * speed)
                finishes_p90.append(start + p90 * speed)
                slots.append(slot)
        self.start_s, self.finish_s, self.finish_p90_s, self.slot_of = (
            starts,
            finishes,
            finishes_p90,
            slots,
        )
        self.late_risk = list(map(operator.gt, finishes_p90, self.due_s))
        """Each item's late risk: its p90 finish is past its due time."""
        self._tail = free[0] if free else (0.0, 0)
        self._suffix_slack: list[float] | None = None
        self._replayed = True

    def replayed(self) -> Lane:
        """The lane, its columns replayed (start_s, finish_s, finish_p90_s, late_risk,
        slot_of)."""
        self._replay()
        return self

    def prediction(self, index: int) -> Prediction:
        """The prediction of the waiting item at `index` (0: the next to start)."""
        self._replay()
        slot = self.slot_of[index]
        return Prediction(
            uuid.UUID(bytes=self.keys[index]),
            index + 1,
            self.start_s[index],
            self.finish_s[index],
            self.finish_p90_s[index],
            self.now + timedelta(seconds=self.due_s[index]),
            self.now,
            self.late_risk[index],
            slot,
            self.speeds[slot] if self.hosts else 1.0,
        )

    def replay(self) -> list[Prediction]:
        """Every waiting item's prediction, in queue order."""
        self._replay()
        return [self.prediction(index) for index in range(len(self.keys))]

    def _suffix(self) -> list[float]:
        """The smallest slack of the on-time items from each position to the end (slack = due -
        p90 finish), for `if_added`."""
        self._replay()
        if self._suffix_slack is None:
            inf = float("inf")
            suffix = [inf] * (len(self.keys) + 1)
            smallest = inf
            keys, samples = self.keys, self.samples
            for index in range(len(keys) - 1, -1, -1):
                # an item already late cannot become late; a sample may wait
                if not self.late_risk[index] and (not samples or keys[index] not in samples):
                    smallest = min(smallest, self.due_s[index] - self.finish_p90_s[index])
                suffix[index] = smallest
            self._suffix_slack = suffix
        return self._suffix_slack

    def if_added(self, due_at: datetime, seconds_p50: float, seconds_p90: float) -> Added:
        """What adding one more item due at `due_at` would give: its predicted finish, and
        whether it would make an item already queued here late."""
        suffix = self._suffix()
        position = bisect.bisect_right(self.due_s, (due_at - self.now).total_seconds())
        if position < len(self.keys):
            start_s, slot = self.start_s[position], self.slot_of[position]
        else:
            start_s, slot = self._tail
        start = self.now + timedelta(seconds=start_s)
        speeds = self.speeds
        speed = speeds[slot]
        # Everything behind it starts later by about its service time spread over the slots.
        delay = seconds_p50 * sum(speeds) / len(speeds) / self.slots
        harms = suffix[position] < delay
        return Added(
            position=position + 1,
            start=start,
            finish=start + timedelta(seconds=seconds_p50 * speed),
            finish_p90=start + timedelta(seconds=seconds_p90 * speed),
            harms_others=harms,
        )

    def add(self, item: Waiting) -> None:
        """Queue one more item (after those due at the same time)."""
        due_s = (item.due_at - self.now).total_seconds()
        position = bisect.bisect_right(self.due_s, due_s)
        self.keys.insert(position, item.item_id.bytes)
        self.due_s.insert(position, due_s)
        self.p50.insert(position, item.seconds_p50)
        self.p90.insert(position, item.seconds_p90)
        self.movable.insert(position, item.movable)
        self._replayed = False

    def copy(self) -> Lane:
        """An independent lane with the same items (to try additions on)."""
        lane = Lane.of_columns(
            slots=self.slots,
            now=self.now,
            working=self.working,
            keys=list(self.keys),
            due_s=list(self.due_s),
            p50=list(self.p50),
            p90=list(self.p90),
            movable=list(self.movable),
            hosts=self.hosts,
        )
        lane.samples = self.samples
        return lane

    def remove(self, item_id: uuid.UUID) -> None:
        """Take an item out of the queue (it moved to another provider)."""
        try:
            index = self.keys.index(item_id.bytes)
        except ValueError:
            return
        for column in (self.keys, self.due_s, self.p50, self.p90, self.movable):
            del column[index]
        self._replayed = False

    def movable_indices(self, limit: int, *, late_only: bool = False) -> list[int]:
        """The first `limit` waiting items (their indices) that may still move, as the snapshot
        read them; `late_only`: only those likely to miss their deadline."""
        if late_only:
            self._replay()
            flags: Iterable[bool] = map(operator.and_, self.movable, self.late_risk)
        else:
            flags = self.movable
        return list(itertools.islice(itertools.compress(itertools.count(), flags), limit))

    def late(self) -> list[Prediction]:
        """The waiting items likely to miss their deadline."""
        self._replay()
        return [self.prediction(i) for i, late in enumerate(self.late_risk) if late]


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
    hosts: list[Slot] | None = None,
) -> Lane:
    """A lane, its waiting items put in the dispatcher's order (due, then as given; `ordered`:
    they already are, as the database sent them)."""
    items = list(waiting)
    if not ordered:
        items.sort(key=lambda item: item.due_at)  # stable: as given among equal dues
    return Lane(slots=slots, now=now, working=list(working), waiting=items, hosts=hosts)
