"""A lane's queue replayed on its slots, kept as columns: the same predictions as a plain
simulation, whatever the slots' speeds; moves pick from the columns in queue order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reelroute.models.planning.eta import Lane, Slot, Waiting, Working

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def simulate(lane: Lane) -> list[tuple[float, float, float, bool]]:
    """Each waiting item, in order, takes the slot free soonest (the lowest index among equal
    ones): (start, finish, finish at p90, late), by plain lists."""
    speeds = lane.speeds
    free = [time for time, _ in sorted(lane._free_times(), key=lambda pair: pair[1])]
    found = []
    for item in lane.waiting:
        slot = min(range(len(free)), key=lambda index: (free[index], index))
        start = free[slot]
        speed = speeds[slot] if lane.hosts else 1.0
        free[slot] = start + item.seconds_p50 * speed
        p90 = start + item.seconds_p90 * speed
        due = (item.due_at - NOW).total_seconds()
        found.append((start, free[slot], p90, p90 > due))
    return found


queues = st.lists(
    st.tuples(
        st.integers(min_value=60, max_value=20_000),  # due, seconds from now
        st.floats(min_value=10, max_value=3_000),  # p50
        st.booleans(),  # movable
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(
    queue=queues,
    speeds=st.lists(st.sampled_from([0.1, 0.5, 1.0, 2.0]), min_size=1, max_size=5),
    hosts=st.booleans(),
    busy=st.lists(st.integers(min_value=-2_000, max_value=0), max_size=3),
)
def test_the_replay_is_a_plain_simulation_of_the_slots(queue, speeds, hosts, busy):
    waiting = [
        Waiting(uuid.uuid4(), NOW + timedelta(seconds=due), p50, p50 * 1.3, movable)
        for due, p50, movable in sorted(queue, key=lambda entry: entry[0])
    ]
    slots = [Slot(f"h{n}", speed) for n, speed in enumerate(speeds)] if hosts else None
    working = [
        Working(uuid.uuid4(), NOW + timedelta(seconds=at), 1_500.0, f"h{n}" if hosts else None)
        for n, at in enumerate(busy)
    ]
    lane = Lane(slots=len(speeds), now=NOW, working=working, waiting=waiting, hosts=slots)
    expected = simulate(lane)
    got = [(p.start_s, p.finish_s, p.finish_p90_s, p.late_risk) for p in lane.replay()]
    assert [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in got] == [
        tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in expected
    ]
    assert [p.position for p in lane.replay()] == list(range(1, len(waiting) + 1))
    assert [p.item_id for p in lane.replay()] == [item.item_id for item in waiting]


def lane_of(count: int, *, movable_every: int = 1, slots: int = 1) -> Lane:
    waiting = [
        Waiting(uuid.uuid4(), NOW + timedelta(minutes=10 + n), 540.0, 570.0, n % movable_every == 0)
        for n in range(count)
    ]
    return Lane(slots=slots, now=NOW, waiting=waiting)


def test_a_lane_of_columns_is_the_lane_of_its_items():
    lane = lane_of(5, movable_every=2)
    same = Lane.of_columns(
        slots=1,
        now=NOW,
        working=[],
        keys=list(lane.keys),
        due_s=list(lane.due_s),
        p50=list(lane.p50),
        p90=list(lane.p90),
        movable=list(lane.movable),
    )
    assert same.replay() == lane.replay()
    assert same.waiting == lane.waiting
    assert len(lane) == 5 and lane.movable == [True, False, True, False, True]


def test_moves_pick_the_first_movable_items_and_the_first_late_ones():
    lane = lane_of(8, movable_every=2)  # one slot, 9 min each, due 10, 11, 12 … min
    assert lane.movable_indices(2) == [0, 2]
    late = [index for index, late in enumerate(lane.replayed().late_risk) if late]
    assert late == list(range(1, 8))  # the first one makes it
    assert lane.movable_indices(10, late_only=True) == [2, 4, 6]
    assert [p.position for p in lane.late()] == list(range(2, 9))


def test_add_queues_after_equal_dues_and_remove_takes_the_item_out():
    lane = lane_of(3)
    twin = Waiting(uuid.uuid4(), NOW + timedelta(minutes=11), 60.0, 90.0)
    trial = lane.copy()
    trial.add(twin)
    assert [w.item_id for w in trial.waiting][2] == twin.item_id  # after the one due at 11 min
    assert len(lane) == 3  # the copy is independent
    trial.remove(twin.item_id)
    assert trial.replay() == lane.replay()
    trial.remove(uuid.uuid4())  # not queued here: nothing changes
    assert len(trial) == 3


def test_a_waiting_ab_sample_is_left_out_of_the_harm_test():
    """One slot; an item due in 20 min waits with 10 min of slack. A new 15-minute item due
    sooner would make it late: it harms. When the waiting one is an A/B sample (its due time
    a day out is ours, not a customer's), it does not."""
    sample = Waiting(uuid.uuid4(), NOW + timedelta(minutes=20), 600.0, 600.0)
    lane = Lane(slots=1, now=NOW, waiting=[sample])
    assert lane.if_added(NOW + timedelta(minutes=16), 900.0, 900.0).harms_others
    lane.samples = frozenset({sample.item_id.bytes})
    trial = lane.copy()
    assert not trial.if_added(NOW + timedelta(minutes=16), 900.0, 900.0).harms_others
