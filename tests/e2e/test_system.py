"""End to end, with real Prefect, real process workers and the sandbox providers."""

from __future__ import annotations

import math
import os
import signal
import time

import psutil
import pytest
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType

from reelroute.flows.reconcile import cancel_everywhere
from reelroute.models.core.enums import InferenceProvider, ItemStatus, RoutedBy
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.intake.photos import store_photo
from reelroute.models.items.groups import create_group
from reelroute.models.items.lifecycle import get_item
from reelroute.models.planning.replanning import moves_of
from reelroute.models.planning.snapshot import read_service_times
from reelroute.models.store.files import Storage
from reelroute.providers.video import probe_mp4
from tests.models.helpers import image_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
FINAL = {ItemStatus.completed, ItemStatus.failed, ItemStatus.cancelled}


def add(
    system,
    providers: list[str | None],
    prompt: str,
    settings=None,
    size=(64, 48),
    wan_full_quality=False,
):
    settings = settings or system.settings
    with system.session() as session:
        group = create_group(session, name=prompt, wan_full_quality=wan_full_quality)
        photo = store_photo(
            session,
            storage=Storage(settings.store.storage_url),
            group_id=group.id,
            data=image_bytes(*size),
            filename="p.png",
            settings=settings,
        )
        items = add_batch(
            session,
            group_id=group.id,
            settings=settings,
            tasks=[
                TaskSpec(photo_id=photo.id, prompt=f"{prompt} {n}", inference_provider=p)
                for n, p in enumerate(providers)
            ],
        )
        session.commit()
    return items


def wait_for(system, item_id, condition, timeout=180, what="the item"):
    deadline = time.time() + timeout
    while True:
        with system.session() as session:
            item = get_item(session, item_id)
        if condition(item):
            return item
        assert time.time() < deadline, f"{what} did not get there: {item}"
        time.sleep(0.3)


def finished(system, item_id, timeout=180):
    return wait_for(system, item_id, lambda i: i.status in FINAL, timeout, "finished")


def posts_for(system, prompt: str) -> list[dict]:
    return [body for body in system.emulator.submissions() if body.get("promptText") == prompt]


def test_items_of_all_three_providers_complete_on_their_pools(system):
    items = add(system, ["wan_local", "runway_gen4_turbo", "runway_veo3.1"], "all three")
    done = [finished(system, item.id) for item in items]
    assert [i.status for i in done] == [ItemStatus.completed] * 3, [i.error for i in done]
    storage = Storage(system.settings.store.storage_url)
    for item in done:
        info = probe_mp4(storage.read(item.output_path))
        assert info.frames > 0 and item.progress == 1
    with system.client() as client:
        runs = {i.inference_provider: client.read_flow_run(i.flow_run_id) for i in done}
        workers = {
            pool: [w.name for w in client.read_workers_for_work_pool(pool)]
            for pool in ("gpu", "cloud")
        }
    assert runs[InferenceProvider.wan_local].work_pool_name == "gpu"
    assert runs[InferenceProvider.runway_gen4_turbo].work_pool_name == "cloud"
    assert runs[InferenceProvider.runway_veo3_1].work_pool_name == "cloud"
    assert all(run.state.type is StateType.COMPLETED for run in runs.values())
    assert any(name.startswith("gpu-") for name in workers["gpu"])
    assert any(name.startswith("cloud-") for name in workers["cloud"])
    assert [b["model"] for b in posts_for(system, "all three 1")] == ["gen4_turbo"]
    assert [b["model"] for b in posts_for(system, "all three 2")] == ["veo3.1"]
    assert done[2].cost_credits == 240  # 6 s of Veo 3.1 at 40 credits
    for item in done:
        run = runs[item.inference_provider]
        assert run.name == f"{item.inference_provider.value}-{str(item.id)[:8]}-a1"
        assert {f"provider:{item.inference_provider.value}", f"group:{item.group_id}"} <= set(
            run.tags
        )


def test_a_finished_run_shows_its_progress_and_its_video_as_artifacts(system):
    (item,) = add(system, ["runway_gen4_turbo"], "artifacts")
    done = finished(system, item.id)
    assert done.status is ItemStatus.completed
    with system.client() as client:
        artifacts = {
            artifact.key: artifact
            for artifact in client.read_artifacts(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[done.flow_run_id]))
            )
        }
    progress = artifacts[f"progress-{item.id}"]
    assert (progress.type, progress.data) == ("progress", 100.0)
    video = artifacts[f"video-{item.id}"]
    assert video.type == "markdown"
    assert str(item.id) in video.data and done.output_path in video.data
    assert "runway_gen4_turbo (gen4_turbo)" in video.data


def test_the_fallback_sends_a_default_routed_wan_item_to_gen4_turbo(system):
    settings = system.settings.replaced(
        default_provider=InferenceProvider.wan_local,
        wan_fallback_threshold=1,
        routing_policy="threshold",
    )
    add(system, ["wan_local", "wan_local"], "busy gpu", settings)
    (item,) = add(system, [None], "fallback", settings)
    assert item.inference_provider is InferenceProvider.runway_gen4_turbo
    assert item.routed_by is RoutedBy.fallback
    done = finished(system, item.id)
    assert done.status is ItemStatus.completed
    assert [b["model"] for b in posts_for(system, "fallback 0")] == ["gen4_turbo"]


def running_with_task(system, prompt_latency: float, prompt: str):
    system.emulator.script.latency_s = prompt_latency
    try:
        (item,) = add(system, ["runway_gen4_turbo"], prompt)
        return wait_for(system, item.id, lambda i: i.provider_task_id is not None, 120, "submitted")
    finally:
        system.emulator.script.latency_s = 1.0


def test_a_killed_flow_process_is_recovered_and_paid_once(system):
    item = running_with_task(system, 12.0, "crash me")
    with system.client() as client:
        run = client.read_flow_run(item.flow_run_id)
    pid = int(str(run.infrastructure_pid).rsplit(":", 1)[-1])
    # One interpreter per flow run: the worker started the engine itself (the deployments'
    # command), not Prefect's workspace supervisor with the engine as its child.
    assert psutil.Process(pid).cmdline()[1:] == ["-m", "prefect.engine"]
    os.kill(pid, signal.SIGKILL)
    done = finished(system, item.id)
    assert done.status is ItemStatus.completed, done.error
    assert done.retry_count == 2 and done.provider_task_id == item.provider_task_id
    assert len(posts_for(system, "crash me 0")) == 1  # one submission: paid once
    with system.client() as client:
        assert client.read_flow_run(item.flow_run_id).state.type is StateType.CRASHED


def test_cancelling_a_running_item_cancels_its_run_and_its_runway_task(system):
    item = running_with_task(system, 30.0, "cancel me")
    with system.client() as client:
        cancel_everywhere(system.engine, system.settings, item.id, client=client)
        deadline = time.time() + 60
        while client.read_flow_run(item.flow_run_id).state.type is not StateType.CANCELLED:
            assert time.time() < deadline, "the flow run was not cancelled"
            time.sleep(0.5)
    assert system.emulator.tasks[item.provider_task_id].cancelled
    assert any(
        r.method == "DELETE" and r.path.endswith(item.provider_task_id)
        for r in system.emulator.requests
    )
    with system.session() as session:
        final = get_item(session, item.id)
    assert final.status is ItemStatus.cancelled and final.provider_task_id is None


def test_items_created_while_prefect_is_down_run_once_it_is_back(system):
    system.server.stop()
    try:
        items = add(system, ["runway_gen4_turbo", "wan_local"], "outage")
        time.sleep(5)  # the dispatcher keeps trying; nothing is lost or half-sent
        with system.session() as session:
            waiting = [get_item(session, item.id) for item in items]
        assert [(i.status, i.flow_run_id) for i in waiting] == [(ItemStatus.pending, None)] * 2
    finally:
        system.server.start()
    done = [finished(system, item.id, timeout=240) for item in items]
    assert [i.status for i in done] == [ItemStatus.completed] * 2, [i.error for i in done]
    assert all(i.retry_count == 1 for i in done)


def test_deploying_twice_changes_nothing(system):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from reelroute.deployments.prefect_setup import ZOMBIE_AUTOMATION, deploy, job_variables

    def snapshot():
        with system.client() as client:
            deployments = sorted(
                (d.name, str(d.id), d.work_pool_name, d.job_variables)
                for d in client.read_deployments()
            )
            pools = {
                p: (
                    client.read_work_pool(p).concurrency_limit,
                    sorted((q.name, q.priority) for q in client.read_work_queues(work_pool_name=p)),
                )
                for p in ("gpu", "cloud")
            }
            automations = [a.name for a in client.read_automations()]
        return deployments, pools, automations

    before = snapshot()
    with temporary_settings(updates={PREFECT_API_URL: system.server.api_url}):
        deploy(system.settings)
    assert snapshot() == before
    deployments, pools, automations = before
    assert [(name, pool) for name, _, pool, _ in deployments] == [
        ("runway", "cloud"),
        ("wan", "gpu"),
    ]
    assert all(variables == job_variables() for *_, variables in deployments)
    assert pools == {
        "gpu": (2, [("default", 4), ("default-full", 3), ("urgent", 2), ("urgent-full", 1)]),
        "cloud": (4, [("default", 2), ("urgent", 1)]),
    }
    assert automations.count(ZOMBIE_AUTOMATION) == 1


def test_a_waiting_wan_item_moves_to_runway_when_the_gpu_worker_stops(system):
    """The GPU host stops (its worker frozen): an auto-routed Wan item, on time when it was
    added, is predicted late as it waits; the dispatcher moves it to Gen-4 Turbo, cancels the
    run it had made for the GPU, and the video is done before its deadline."""
    with system.session() as session:
        estimates = read_service_times(session, system.settings)
    _, wan_p90 = estimates.seconds(InferenceProvider.wan_local, None, None)
    # Wan just makes it now; a few seconds of waiting later it no longer does.
    deadline = max(60, math.ceil(wan_p90) + 10)
    frozen = system.gpu_tree()  # the worker, its Prefect worker and pipeline processes
    for process in frozen:
        process.suspend()
    try:
        with system.session() as session:
            group = create_group(session, name="frozen gpu")
            photo = store_photo(
                session,
                storage=Storage(system.settings.store.storage_url),
                group_id=group.id,
                data=image_bytes(),
                filename="p.png",
                settings=system.settings,
            )
            (item,) = add_batch(
                session,
                group_id=group.id,
                settings=system.settings,
                tasks=[TaskSpec(photo_id=photo.id, prompt="moved", deadline_seconds=deadline)],
            )
            session.commit()
        assert item.inference_provider is InferenceProvider.wan_local, item.route_reason
        gpu_run = wait_for(system, item.id, lambda i: i.flow_run_id is not None, 60).flow_run_id
        done = finished(system, item.id, timeout=deadline + 60)
        assert done.status is ItemStatus.completed
        assert done.inference_provider is InferenceProvider.runway_gen4_turbo
        assert done.routed_by is RoutedBy.rerouted
        assert done.route_reason.startswith("moved from Wan: now predicted")
        assert done.finished_at <= done.due_at
        assert [b["model"] for b in posts_for(system, "moved")] == ["gen4_turbo"]
        with system.session() as session:
            [move] = moves_of(session, item.id)
        assert (move.from_provider, move.to_provider) == (
            InferenceProvider.wan_local,
            InferenceProvider.runway_gen4_turbo,
        )
        with system.client() as client:
            run = client.read_flow_run(gpu_run)
        assert run.state is not None and run.state.type is StateType.CANCELLED
    finally:
        for process in frozen:
            process.resume()


# --- Wan kept warm: the gpu worker's pipeline processes ----------------------------------------


def wan_items(system, count: int, prompt: str, frame_num: int):
    with system.session() as session:
        group = create_group(session, name=prompt)
        photo = store_photo(
            session,
            storage=Storage(system.settings.store.storage_url),
            group_id=group.id,
            data=image_bytes(),
            filename="p.png",
            settings=system.settings,
        )
        items = add_batch(
            session,
            group_id=group.id,
            settings=system.settings,
            tasks=[
                TaskSpec(
                    photo_id=photo.id,
                    prompt=f"{prompt} {n}",
                    inference_provider="wan_local",
                    frame_num=frame_num,
                )
                for n in range(count)
            ],
        )
        session.commit()
    return items


def warm(system):
    return wait_for_health(system, lambda found: len(found) == 2)


def wait_for_health(system, condition, timeout=120):
    deadline = time.time() + timeout
    while True:
        found = system.pipeline_health()
        if condition(found):
            return found
        assert time.time() < deadline, f"pipeline processes: {found}"
        time.sleep(0.5)


def test_five_wan_items_in_a_row_load_the_pipeline_once(system):
    before = warm(system)
    for item in wan_items(system, 5, "warm", frame_num=9):
        done = finished(system, item.id)
        assert done.status is ItemStatus.completed
        # its GPU time, claim to video, at no cost (owned GPUs: REELROUTE_GPU_HOUR_COST=0)
        assert done.gpu_seconds is not None and done.gpu_seconds > 0
        assert done.gpu_dollars == 0
    after = system.pipeline_health()
    assert {gpu: h.loads for gpu, h in after.items()} == {"cpu:0": 1, "cpu:1": 1}
    served = sum(h.videos for h in after.values()) - sum(h.videos for h in before.values())
    assert served == 5
    assert {h.pid for h in after.values()} == {h.pid for h in before.values()}  # same processes


def test_two_gpu_processes_make_two_videos_at_once_one_on_each(system):
    before = warm(system)
    first, second = wan_items(system, 2, "two at once", frame_num=121)  # 10 s each

    def both_processing():
        with system.session() as session:
            states = [get_item(session, i.id) for i in (first, second)]
        return all(s.status is ItemStatus.processing and s.progress > 0 for s in states)

    wait_for(system, first.id, lambda _: both_processing(), 120, "both processing")
    busy = system.pipeline_health()
    assert [h.busy for h in busy.values()] == [True, True]  # one video on each
    for item in (first, second):
        assert finished(system, item.id).status is ItemStatus.completed
    after = system.pipeline_health()
    assert [after[g].videos - before[g].videos for g in sorted(after)] == [1, 1]


def test_cancelling_a_wan_run_stops_its_video_and_the_next_item_works(system):
    before = warm(system)
    (item,) = wan_items(system, 1, "cancel wan", frame_num=121)
    running = wait_for(
        system, item.id, lambda i: i.status is ItemStatus.processing and i.progress > 0, 120
    )
    cancel_everywhere(system.engine, system.settings, item.id)
    with system.client() as client:
        deadline = time.time() + 60
        while True:
            run = client.read_flow_run(running.flow_run_id)
            if run.state is not None and run.state.type is StateType.CANCELLED:
                break
            assert time.time() < deadline, f"the run is {run.state}"
            time.sleep(0.5)
    # The process stopped that video at its next step and is free again (no video counted).
    after = wait_for_health(system, lambda found: not any(h.busy for h in found.values()), 60)
    assert sum(h.videos for h in after.values()) == sum(h.videos for h in before.values())
    assert {h.pid for h in after.values()} == {h.pid for h in before.values()}
    (following,) = wan_items(system, 1, "after the cancel", frame_num=9)
    assert finished(system, following.id).status is ItemStatus.completed


def test_a_pipeline_process_killed_mid_video_and_the_item_completes_next_attempt(system):
    warm(system)
    (item,) = wan_items(system, 1, "kill wan", frame_num=121)
    wait_for(system, item.id, lambda i: i.status is ItemStatus.processing and i.progress > 0, 120)
    [busy] = [h for h in system.pipeline_health().values() if h.busy]
    os.kill(busy.pid, signal.SIGKILL)  # the process making the video
    done = finished(system, item.id, timeout=240)
    assert done.status is ItemStatus.completed
    assert done.retry_count == 2  # the first attempt failed with its process
    wait_for_health(system, lambda found: len(found) == 2)  # both restarted


def test_a_group_that_requires_full_quality_is_served_by_full_quality_hosts_only(system):
    """Its items' runs wait on the gpu pool's `-full` queues, which a GPU host whose preset
    keeps the quality polls (this one runs `full`) and another host would not: Prefect's own
    query for a worker polling `urgent` and `default` does not return them."""
    from reelroute.flows.dispatch import queues_for
    from reelroute.models.core.enums import Pool

    (item,) = add(system, ["wan_local"], "full quality only", wan_full_quality=True)
    assert item.wan_full_quality
    dispatched = wait_for(system, item.id, lambda i: i.flow_run_id is not None, 60, "dispatched")
    with system.client() as client:
        run = client.read_flow_run(dispatched.flow_run_id)
    assert run.work_queue_name == "default-full"
    done = finished(system, item.id)
    assert done.status is ItemStatus.completed and done.wan_preset == "full@1"
    # A host running `fast` would poll these queues only, which never hold such a run.
    fast_queues = queues_for(Pool.gpu, full_quality=False)
    assert fast_queues == ["urgent", "default"] and run.work_queue_name not in fast_queues
