"""The dispatcher's arithmetic and order, on SQLite and PostgreSQL, against a Prefect stand-in."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from reelroute.flows.dispatch import DEFAULT_QUEUE, URGENT_QUEUE, Dispatcher
from reelroute.models.core.enums import GroupPriority, InferenceProvider, ItemStatus, Pool
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.items import lifecycle as ops
from reelroute.models.store.db import session_scope
from tests.models.helpers import add_items

WAN, TURBO = InferenceProvider.wan_local, InferenceProvider.runway_gen4_turbo


def dispatcher(engine, prefect, settings, **changes) -> Dispatcher:
    return Dispatcher(engine, prefect, settings.replaced(**changes))


def made_for(prefect) -> list[str]:
    return [entry["parameters"]["item_id"] for entry in prefect.created]


def test_a_pool_gets_its_slots_plus_the_look_ahead_and_no_more(engine, session, prefect, settings):
    items = add_items(session, settings, 6, WAN)
    feeder = dispatcher(engine, prefect, settings, gpu_slots=2, dispatch_lookahead=1)
    assert feeder.dispatch_once() == 3
    assert made_for(prefect) == [str(item.id) for item in items[:3]]
    assert feeder.dispatch_once() == 0  # 3 in flight: the pool is fed
    with session_scope(engine) as scoped:  # one run claims its item and finishes it
        claim = ops.claim_item(
            scoped, item_id=items[0].id, attempt=1, worker_id="w", settings=settings
        )
        assert claim is not None
        ops.complete_item(
            scoped, item_id=items[0].id, attempt=1, worker_id="w", output_path="v.mp4"
        )
    assert feeder.dispatch_once() == 1
    assert made_for(prefect)[-1] == str(items[3].id)


def test_processing_items_hold_their_slot(engine, session, prefect, settings):
    items = add_items(session, settings, 3, TURBO)
    ops.claim_next(session, pool=Pool.cloud, worker_id="pull-worker", settings=settings)
    session.commit()
    feeder = dispatcher(engine, prefect, settings, cloud_slots=2, dispatch_lookahead=0)
    assert feeder.dispatch_once() == 1
    assert made_for(prefect) == [str(items[1].id)]


def test_each_pool_is_fed_from_its_own_items_on_its_own_deployment(
    engine, session, prefect, settings
):
    wan = add_items(session, settings, 2, WAN)
    turbo = add_items(session, settings, 2, TURBO)
    feeder = dispatcher(engine, prefect, settings, gpu_slots=1, cloud_slots=5, dispatch_lookahead=0)
    assert feeder.dispatch_once() == 3
    by_item = {entry["parameters"]["item_id"]: entry for entry in prefect.created}
    assert set(by_item) == {str(wan[0].id), str(turbo[0].id), str(turbo[1].id)}
    wan_run = by_item[str(wan[0].id)]
    assert wan_run["deployment_id"] == prefect.deployments["generate-video/wan"].id
    assert wan_run["tags"] == ["provider:wan_local", "pool:gpu", f"group:{wan[0].group_id}"]
    assert wan_run["parameters"] == {
        "item_id": str(wan[0].id),
        "attempt": 1,
        "provider": "wan_local",
        "group": str(wan[0].group_id),
    }
    assert wan_run["run"].idempotency_key == f"{wan[0].id}:1"
    cloud = {by_item[str(i.id)]["deployment_id"] for i in turbo}
    assert cloud == {prefect.deployments["generate-video/runway"].id}
    with Session(engine) as check:
        stored = {i.id: i.flow_run_id for i in check.exec(select(VideoItem)).all()}
    assert stored[wan[0].id] == wan_run["run"].id and stored[wan[1].id] is None


def test_urgent_items_go_first_on_the_urgent_queue(engine, session, prefect, settings):
    add_items(session, settings, 2, TURBO)
    urgent = add_items(session, settings, 1, None, priority=GroupPriority.urgent)
    feeder = dispatcher(engine, prefect, settings, cloud_slots=1, dispatch_lookahead=0)
    assert feeder.dispatch_once() == 1
    (entry,) = prefect.created
    assert entry["parameters"]["item_id"] == str(urgent[0].id)
    assert entry["work_queue_name"] == URGENT_QUEUE
    feeder = dispatcher(engine, prefect, settings, cloud_slots=2, dispatch_lookahead=0)
    feeder.dispatch_once()
    assert prefect.created[-1]["work_queue_name"] == DEFAULT_QUEUE


def test_items_that_require_full_quality_go_to_the_gpu_pools_full_queues(
    engine, session, prefect, settings
):
    plain = add_items(session, settings, 1, WAN)
    full = add_items(session, settings, 1, WAN, wan_full_quality=True)
    urgent = add_items(session, settings, 1, WAN, GroupPriority.urgent, wan_full_quality=True)
    runway = add_items(session, settings, 1, TURBO, wan_full_quality=True)
    assert dispatcher(engine, prefect, settings, gpu_slots=3).dispatch_once() == 4
    queue = {e["parameters"]["item_id"]: e["work_queue_name"] for e in prefect.created}
    assert queue[str(urgent[0].id)] == "urgent-full"
    assert queue[str(full[0].id)] == "default-full"
    assert queue[str(plain[0].id)] == DEFAULT_QUEUE
    assert queue[str(runway[0].id)] == DEFAULT_QUEUE  # Runway has no presets


def test_items_waiting_for_their_backoff_are_not_sent(engine, session, prefect, settings):
    (item,) = add_items(session, settings, 1, TURBO)
    claim = ops.claim_next(session, pool=Pool.cloud, worker_id="w", settings=settings)
    assert claim is not None
    ops.fail_item(
        session,
        item_id=item.id,
        attempt=1,
        worker_id="w",
        error="503",
        permanent=False,
        settings=settings.replaced(retry_backoff_seconds=3600),
    )
    session.commit()
    feeder = dispatcher(engine, prefect, settings)
    assert feeder.dispatch_once() == 0
    session.get(VideoItem, item.id).next_attempt_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert feeder.dispatch_once() == 1
    assert prefect.created[0]["parameters"]["attempt"] == 2
    assert prefect.created[0]["run"].idempotency_key == f"{item.id}:2"


def test_a_run_made_for_an_item_cancelled_meanwhile_is_cancelled(
    engine, session, prefect, settings
):
    (item,) = add_items(session, settings, 1, TURBO)

    def admin_cancels(_run) -> None:
        with session_scope(engine) as scoped:
            ops.cancel_item(scoped, item_id=item.id)

    prefect.on_create = admin_cancels
    assert dispatcher(engine, prefect, settings).dispatch_once() == 0
    (run,) = prefect.runs.values()
    assert run.state.name == "Cancelled"
    with Session(engine) as check:
        final = check.get(VideoItem, item.id)
        assert final.status is ItemStatus.cancelled and final.flow_run_id is None
