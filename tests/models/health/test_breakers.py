"""Circuit breakers: every transition, on SQLite and PostgreSQL; what an open breaker does to
dispatch, routing and waiting items; the rule of each failure class."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from reelroute.models.core.enums import (
    BreakerState,
    EventType,
    FailureClass,
    FailureCode,
    InferenceProvider,
    ItemStatus,
    Pool,
)
from reelroute.models.core.failures import CLASS_OF, RULES, class_of
from reelroute.models.core.tables import utcnow
from reelroute.models.health.breakers import (
    begin_probe,
    gate,
    host_breaker,
    model_breaker,
    pool_breaker,
    probe_stale_after,
    prune,
    record_outcome,
    record_success,
    unavailable,
)
from reelroute.models.health.tables import Breaker, BreakerOutcome
from reelroute.models.items import lifecycle as ops
from reelroute.models.items.dispatch import plan_dispatch, run_lost_before_claim, run_started
from reelroute.models.outbox.tables import ItemEvent
from tests.models.helpers import add_items, claim_next_item

TURBO, VEO = InferenceProvider.runway_gen4_turbo, InferenceProvider.runway_veo3_1
TURBO_BREAKER = model_breaker(TURBO)


def breaker(session, name: str) -> Breaker:
    found = session.get(Breaker, name, populate_existing=True)
    assert found is not None
    return found


def fail(session, settings, name=TURBO_BREAKER, kind=FailureClass.provider_transient, **kw):
    change = record_outcome(
        session, settings, name=name, ok=False, failure_class=kind, reason="HTTP 503", **kw
    )
    session.commit()
    return change


def events(session, kind: EventType) -> list[ItemEvent]:
    return list(session.exec(select(ItemEvent).where(ItemEvent.type == kind)).all())


# --- the classes ------------------------------------------------------------------------------


def test_every_failure_code_has_a_class_and_every_class_a_rule():
    assert set(CLASS_OF) == set(FailureCode)
    assert set(RULES) == set(FailureClass)
    assert class_of(None) is FailureClass.unknown
    assert class_of(FailureCode.SAFETY_INPUT) is FailureClass.input
    assert class_of(FailureCode.HTTP_429) is FailureClass.provider_exhausted
    assert class_of(FailureCode.RUN_NOT_STARTED) is FailureClass.infra
    assert class_of(FailureCode.GPU_FAULT) is FailureClass.gpu_host
    assert class_of(FailureCode.CUDA_OOM) is FailureClass.input  # unless made elsewhere
    assert class_of(FailureCode.WAN_FAILED) is FailureClass.input


def test_an_input_failure_fails_the_item_and_leaves_the_breaker_alone(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    failed = ops.fail_item(
        session, item_id=item.id, attempt=1, worker_id="w1", error="moderation",
        failure_code=FailureCode.SAFETY_INPUT, permanent=False, settings=settings,
    )  # fmt: skip
    session.commit()
    assert failed.status is ItemStatus.failed
    assert session.get(Breaker, TURBO_BREAKER) is None


def test_an_unknown_failure_counts_and_a_permanent_one_ends_it(session, settings):
    first, second = add_items(session, settings, 2)
    claim_next_item(session, settings)
    counted = ops.fail_item(
        session, item_id=first.id, attempt=1, worker_id="w1", error="odd",
        failure_code=FailureCode.OTHER, permanent=False, settings=settings,
    )  # fmt: skip
    assert counted.status is ItemStatus.pending and counted.spared_attempts == 0
    session.commit()
    claim_next_item(session, settings)
    ended = ops.fail_item(
        session, item_id=second.id, attempt=1, worker_id="w1", error="not a video",
        failure_code=FailureCode.NOT_A_VIDEO, permanent=True, settings=settings,
    )  # fmt: skip
    assert ended.status is ItemStatus.failed


def test_a_missing_key_closes_the_model_and_the_item_waits(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    waiting = ops.fail_item(
        session, item_id=item.id, attempt=1, worker_id="w1", error="401",
        failure_code=FailureCode.HTTP_401, permanent=True, settings=settings,
    )  # fmt: skip
    session.commit()
    assert waiting.status is ItemStatus.pending and waiting.spared_attempts == 1
    assert breaker(session, TURBO_BREAKER).state is BreakerState.open


def test_a_gpu_hosts_failures_open_that_hosts_breaker(session, settings):
    from reelroute.models.core.workers import flow_run_worker_id

    items = add_items(session, settings, 3, InferenceProvider.wan_local)
    for item in items:
        holder = flow_run_worker_id(uuid.uuid4(), "gpu-a")
        claimed = ops.claim_item(
            session, item_id=item.id, attempt=1, worker_id=holder, settings=settings
        )
        assert claimed is not None
        failed = ops.fail_item(
            session, item_id=item.id, attempt=1, worker_id=holder, error="CUDA error: ECC",
            failure_code=FailureCode.GPU_FAULT, permanent=False, settings=settings,
        )  # fmt: skip
        assert failed.status is ItemStatus.pending and failed.spared_attempts == 1
    session.commit()
    assert breaker(session, host_breaker("gpu-a")).state is BreakerState.open


def wan_attempt(session, settings, item, host: str):
    from reelroute.models.core.workers import flow_run_worker_id

    holder = flow_run_worker_id(uuid.uuid4(), host)
    claimed = ops.claim_item(
        session, item_id=item.id, attempt=1, worker_id=holder, settings=settings
    )
    assert claimed is not None
    return holder


@pytest.mark.parametrize("code", [FailureCode.CUDA_OOM, FailureCode.WAN_FAILED])
def test_an_input_that_breaks_the_pipeline_fails_alone_and_spares_the_host(session, settings, code):
    """Out of memory, or a crash that follows the input: the same input fails again, so the
    item fails at once with what to change, and the host's breaker never hears of it."""
    items = add_items(session, settings, 4, InferenceProvider.wan_local)
    for item in items:
        holder = wan_attempt(session, settings, item, "gpu-a")
        failed = ops.fail_item(
            session, item_id=item.id, attempt=1, worker_id=holder,
            error="the GPU ran out of memory at 1280x704, 121 frames: set REELROUTE_WAN_OFFLOAD",
            failure_code=code, permanent=True, settings=settings,
        )  # fmt: skip
        assert failed.status is ItemStatus.failed and failed.retry_count == 1
        assert "REELROUTE_WAN_OFFLOAD" in (failed.error or "")
    session.commit()
    assert session.get(Breaker, host_breaker("gpu-a")) is None


def test_a_host_failing_on_what_another_host_makes_opens_its_breaker(session, settings):
    """The same length made on gpu-b today: gpu-a's out-of-memory errors are gpu-a's fault;
    its items are tried again, and its breaker opens."""
    from reelroute.models.items.lifecycle import MadeBy

    made, *items = add_items(session, settings, 4, InferenceProvider.wan_local)
    holder = wan_attempt(session, settings, made, "gpu-b")
    ops.complete_item(
        session, item_id=made.id, attempt=1, worker_id=holder, output_path="videos/a.mp4",
        made_by=MadeBy(wan_preset="fast@1", gpu_host="gpu-b", gpu_class="NVIDIA H200"),
    )  # fmt: skip
    session.commit()
    for item in items:
        holder = wan_attempt(session, settings, item, "gpu-a")
        failed = ops.fail_item(
            session, item_id=item.id, attempt=1, worker_id=holder,
            error="the GPU ran out of memory", failure_code=FailureCode.CUDA_OOM,
            permanent=True, settings=settings,
        )  # fmt: skip
        assert failed.status is ItemStatus.pending and failed.spared_attempts == 1
        assert "made on gpu-b in the last day" in (failed.error or "")
    session.commit()
    assert breaker(session, host_breaker("gpu-a")).state is BreakerState.open
    assert session.get(Breaker, host_breaker("gpu-b")) is None or (
        breaker(session, host_breaker("gpu-b")).state is BreakerState.closed
    )


def test_another_length_made_elsewhere_does_not_blame_the_host(session, settings):
    from reelroute.models.items.lifecycle import MadeBy

    made, item = add_items(session, settings, 2, InferenceProvider.wan_local)
    made.frame_num, item.frame_num = 81, 241  # a short video elsewhere, a long one here
    session.add_all([made, item])
    session.commit()
    holder = wan_attempt(session, settings, made, "gpu-b")
    ops.complete_item(
        session, item_id=made.id, attempt=1, worker_id=holder, output_path="videos/a.mp4",
        made_by=MadeBy(gpu_host="gpu-b"),
    )  # fmt: skip
    holder = wan_attempt(session, settings, item, "gpu-a")
    failed = ops.fail_item(
        session, item_id=item.id, attempt=1, worker_id=holder, error="out of memory",
        failure_code=FailureCode.CUDA_OOM, permanent=True, settings=settings,
    )  # fmt: skip
    assert failed.status is ItemStatus.failed


# --- transitions ------------------------------------------------------------------------------


def test_the_failure_rate_in_the_window_opens_it(session, settings):
    now = utcnow()
    record_success(session, name=TURBO_BREAKER, now=now - timedelta(minutes=1))
    assert fail(session, settings, now=now - timedelta(minutes=10)) is None  # outside the window
    assert fail(session, settings, now=now) is None
    assert fail(session, settings, now=now) is None
    change = fail(session, settings, now=now)
    assert change is not None and change.after is BreakerState.open
    opened = breaker(session, TURBO_BREAKER)
    assert opened.next_probe_at == now + timedelta(seconds=settings.health.cooldown_seconds)
    assert "3 of its last 4 attempts failed" in (opened.reason or "")
    (event,) = events(session, EventType.provider_opened)
    assert event.subject == TURBO_BREAKER and "Gen-4 Turbo" in (event.detail or "")


def test_successes_keep_it_closed(session, settings):
    now = utcnow()
    for _ in range(4):
        record_success(session, name=TURBO_BREAKER, now=now)
    for _ in range(3):
        assert fail(session, settings, now=now) is None  # 3 of 7: under half
    assert breaker(session, TURBO_BREAKER).state is BreakerState.closed


def test_a_daily_cap_opens_it_at_once_until_runways_reset(session, settings):
    now = utcnow()
    change = fail(session, settings, kind=FailureClass.provider_exhausted, retry_after=900, now=now)
    assert change is not None and change.after is BreakerState.open
    assert breaker(session, TURBO_BREAKER).next_probe_at == now + timedelta(seconds=900)
    without = model_breaker(VEO)
    fail(session, settings, name=without, kind=FailureClass.provider_exhausted, now=now)
    assert breaker(session, without).next_probe_at == now + timedelta(
        seconds=settings.health.exhausted_seconds
    )


def test_a_probe_after_the_cooldown_closes_it_or_opens_it_for_twice_as_long(session, settings):
    now = utcnow()
    stale = probe_stale_after(settings)
    fail(session, settings, kind=FailureClass.provider_exhausted, retry_after=60, now=now)
    assert gate(breaker(session, TURBO_BREAKER), now, stale) == 0
    later = now + timedelta(seconds=61)
    assert gate(breaker(session, TURBO_BREAKER), later, stale) == 1
    probe = uuid.uuid4()
    begin_probe(session, TURBO_BREAKER, probe, later)
    session.commit()
    assert breaker(session, TURBO_BREAKER).state is BreakerState.half_open
    assert gate(breaker(session, TURBO_BREAKER), later, stale) == 0
    assert gate(breaker(session, TURBO_BREAKER), later + stale + timedelta(seconds=1), stale) == 1
    assert fail(session, settings, item_id=uuid.uuid4(), now=later) is None  # not the probe's
    change = fail(session, settings, item_id=probe, now=later)
    assert change is not None and change.after is BreakerState.open
    reopened = breaker(session, TURBO_BREAKER)
    assert reopened.cooldown_seconds == 120 and reopened.next_probe_at == later + timedelta(
        seconds=120
    )
    assert len(events(session, EventType.provider_opened)) == 1  # a failed probe is no news
    again = later + timedelta(seconds=121)
    second = uuid.uuid4()
    begin_probe(session, TURBO_BREAKER, second, again)
    closed = record_success(session, name=TURBO_BREAKER, item_id=second, now=again)
    session.commit()
    assert closed is not None and closed.after is BreakerState.closed
    assert closed.reason == "a probe succeeded"
    final = breaker(session, TURBO_BREAKER)
    assert final.state is BreakerState.closed and final.next_probe_at is None
    assert len(events(session, EventType.provider_closed)) == 1


def test_the_cooldown_never_exceeds_its_ceiling(session, settings):
    settings = settings.replaced(breaker_max_cooldown_seconds=100)
    now = utcnow()
    fail(session, settings, kind=FailureClass.provider_config, now=now)
    for _ in range(4):
        probe = uuid.uuid4()
        begin_probe(session, TURBO_BREAKER, probe, now)
        fail(session, settings, item_id=probe, now=now)
    assert breaker(session, TURBO_BREAKER).cooldown_seconds == 100


def test_runs_that_never_start_open_the_pools_breaker_and_one_that_does_resets_it(
    session, settings
):
    settings = settings.replaced(breaker_runs_not_started=3)
    items = add_items(session, settings, 4)
    for item in items[:2]:
        item.flow_run_id = uuid.uuid4()
        session.add(item)
    session.commit()
    for item in items[:2]:
        assert item.flow_run_id is not None
        run_lost_before_claim(
            session, item_id=item.id, flow_run_id=item.flow_run_id, reason="crashed",
            settings=settings,
        )  # fmt: skip
    session.commit()
    run_started(session, pool=Pool.cloud, item_id=items[3].id)  # the streak ends
    session.commit()
    for item in items[:3]:
        reloaded = ops.get_item(session, item.id)
        reloaded.flow_run_id = uuid.uuid4()
        session.add(reloaded)
        session.commit()
        run_lost_before_claim(
            session, item_id=item.id, flow_run_id=reloaded.flow_run_id, reason="crashed",
            settings=settings,
        )  # fmt: skip
        session.commit()
    opened = breaker(session, pool_breaker(Pool.cloud))
    assert opened.state is BreakerState.open and "3 flow runs in a row" in (opened.reason or "")
    spared = ops.get_item(session, items[0].id)
    assert spared.status is ItemStatus.pending and spared.spared_attempts == 2


# --- what an open breaker does ----------------------------------------------------------------


def test_the_dispatcher_sends_nothing_to_an_open_model_then_one_probe(session, settings):
    turbo = add_items(session, settings, 3, TURBO)
    veo = add_items(session, settings, 1, VEO)
    now = utcnow()
    fail(session, settings, kind=FailureClass.provider_exhausted, retry_after=60, now=now)
    chosen = plan_dispatch(session, pool=Pool.cloud, settings=settings, now=now)
    assert [i.item_id for i in chosen] == [veo[0].id]
    later = now + timedelta(seconds=61)
    chosen = plan_dispatch(session, pool=Pool.cloud, settings=settings, now=later)
    probes = [i.item_id for i in chosen if i.inference_provider is TURBO]
    assert probes == [turbo[0].id]
    session.commit()
    probing = breaker(session, TURBO_BREAKER)
    assert probing.state is BreakerState.half_open and probing.probe_item_id == turbo[0].id
    again = plan_dispatch(session, pool=Pool.cloud, settings=settings, now=later)
    assert not [i for i in again if i.inference_provider is TURBO]


def test_an_open_pool_sends_nothing_but_its_probe(session, settings):
    add_items(session, settings, 3, TURBO)
    now = utcnow()
    settings = settings.replaced(breaker_runs_not_started=1)
    fail(session, settings, name=pool_breaker(Pool.cloud), kind=FailureClass.infra, now=now)
    assert plan_dispatch(session, pool=Pool.cloud, settings=settings, now=now) == []
    later = now + timedelta(seconds=settings.health.cooldown_seconds + 1)
    assert len(plan_dispatch(session, pool=Pool.cloud, settings=settings, now=later)) == 1


def test_an_open_model_is_unavailable_with_why_items_wait(session, settings):
    now = utcnow()
    fail(session, settings, kind=FailureClass.provider_exhausted, retry_after=300, now=now)
    (why,) = unavailable(session, now).values()
    assert why.startswith("Gen-4 Turbo unavailable since ")
    assert "next probe" in why and "HTTP 503" in why
    # Once its probe is due routing may send it items again (or nothing would probe it); while
    # the probe runs it is unavailable again.
    due = now + timedelta(seconds=301)
    assert unavailable(session, due) == {}
    begin_probe(session, TURBO_BREAKER, uuid.uuid4(), due)
    session.commit()
    assert "a probe is under way" in unavailable(session, due)[TURBO]


def test_outcomes_older_than_a_day_are_pruned(session, settings):
    now = utcnow()
    fail(session, settings, now=now - timedelta(days=2))
    fail(session, settings, now=now)
    assert prune(session, now=now) == 1
    session.commit()
    assert len(session.exec(select(BreakerOutcome)).all()) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_processes_agree_on_one_transition(engine, settings):
    """Concurrent failures from two sessions: the row lock makes one of them open it."""
    import threading

    from sqlmodel import Session

    barrier = threading.Barrier(4)
    changes = []

    def failing() -> None:
        with Session(engine) as own:
            barrier.wait()
            for _ in range(3):
                change = fail(own, settings)
                if change is not None:
                    changes.append(change)

    threads = [threading.Thread(target=failing) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [c.after for c in changes] == [BreakerState.open]
    with Session(engine) as check:
        assert len(events(check, EventType.provider_opened)) == 1
