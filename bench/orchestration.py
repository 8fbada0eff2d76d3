"""Orchestration benchmarks: overhead per item, Runway throughput, dispatch of a big backlog.

`python -m bench.orchestration` (part of `make bench`). Every figure is compared with a baseline
measured in the same run: a trivial flow on the same pool setup, the ideal ⌈N/C⌉·T, the pools'
limits.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from prefect import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from sqlmodel import Session

from bench.data import fresh_database
from bench.system import LocalSystem, local_system
from reelroute.models.core.enums import InferenceProvider, ItemStatus
from reelroute.models.core.tables import VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.intake.photos import store_photo
from reelroute.models.items.groups import create_group
from reelroute.models.store.db import make_engine
from reelroute.models.store.files import Storage
from reelroute.models.store.ledger import count_ledger

PHOTO_SIZE = (64, 48)


def add_items(system: LocalSystem, providers: list[InferenceProvider], prompt: str) -> list[Any]:
    """Create items (one photo, one group), as the admin would."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", PHOTO_SIZE, (90, 140, 200)).save(buffer, format="PNG")
    engine = make_engine(system.settings.store.database_url)
    with Session(engine, expire_on_commit=False) as session:
        group = create_group(session, name=prompt)
        photo = store_photo(
            session,
            storage=Storage(system.settings.store.storage_url),
            group_id=group.id,
            data=buffer.getvalue(),
            filename="p.png",
            settings=system.settings,
        )
        tasks = [
            TaskSpec(photo_id=photo.id, prompt=f"{prompt} {n}", inference_provider=p.value)
            for n, p in enumerate(providers)
        ]
        items = []
        for start in range(0, len(tasks), 500):
            items += add_batch(
                session,
                group_id=group.id,
                tasks=tasks[start : start + 500],
                settings=system.settings,
            )
        session.commit()
    engine.dispose()
    return items


def wait_all(system: LocalSystem, ids: list[uuid.UUID], timeout: float) -> float:
    """Seconds until every item is final (raises on timeout or a failed item)."""
    engine = make_engine(system.settings.store.database_url)
    started = time.time()
    try:
        while True:
            with Session(engine) as session:
                items = [session.get(VideoItem, i) for i in ids]
            if all(i is not None and i.status is ItemStatus.completed for i in items):
                return time.time() - started
            failed = [i for i in items if i is not None and i.status is ItemStatus.failed]
            if failed:
                raise RuntimeError(f"{len(failed)} items failed: {failed[0].error}")
            if time.time() - started > timeout:
                raise RuntimeError("items did not finish in time")
            time.sleep(0.25)
    finally:
        engine.dispose()


def cpu_seconds(process: psutil.Process) -> float:
    """CPU of a worker and of its finished children (the flow run processes it reaped)."""
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def _final(state: Any) -> bool:
    return state is not None and bool(state.is_final())


def overhead(root: Path, items: int, pace: float) -> dict[str, float]:
    """Item created → provider called, and worker-side CPU per run against a trivial flow."""
    with local_system(root, cloud_slots=8, latency_s=0.0) as system:
        system.start_dispatcher()
        add_items(system, [InferenceProvider.runway_gen4_turbo], "warm-up")
        time.sleep(15)
        worker = system.worker("cloud")
        before = cpu_seconds(worker)
        created: dict[str, float] = {}
        ids = []
        for n in range(items):
            (item,) = add_items(system, [InferenceProvider.runway_gen4_turbo], f"overhead-{n}")
            created[f"overhead-{n} 0"] = item.created_at.timestamp()
            ids.append(item.id)
            time.sleep(pace)
        wait_all(system, ids, timeout=600)
        time.sleep(3)
        runway_cpu = (cpu_seconds(worker) - before) / items
        latencies = sorted(
            request.received_at - created[request.body["promptText"]]
            for request in system.emulator.requests
            if request.method == "POST"
            and request.body
            and request.body.get("promptText") in created
        )
        # The floor: the same number of trivial flow runs on the same pool, at the same pace.
        before = cpu_seconds(worker)
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("noop/cloud")
            runs = []
            for n in range(items):
                runs.append(
                    client.create_flow_run_from_deployment(
                        deployment.id, parameters={"item_id": str(n)}
                    )
                )
                time.sleep(pace)
            deadline = time.time() + 600
            while not all(_final(client.read_flow_run(r.id).state) for r in runs):
                if time.time() > deadline:
                    raise RuntimeError("trivial runs did not finish")
                time.sleep(0.5)
        time.sleep(3)
        trivial_cpu = (cpu_seconds(worker) - before) / items
    return {
        "p50": statistics.median(latencies),
        "p95": latencies[max(0, math.ceil(0.95 * len(latencies)) - 1)],
        "runway_cpu": runway_cpu,
        "trivial_cpu": trivial_cpu,
    }


def throughput(root: Path, items: int, concurrency: int, latency: float) -> dict[str, float]:
    """N Runway items against the emulator with latency T and concurrency C."""
    # Twice Runway's concurrency in flow runs: the extra runs submit early and wait THROTTLED
    # at Runway, so no process start-up sits between one task and the next (docs/operations.md).
    with local_system(
        root, cloud_slots=2 * concurrency, latency_s=latency, runway_concurrency=concurrency
    ) as system:
        batch = add_items(system, [InferenceProvider.runway_gen4_turbo] * items, "throughput")
        started = system.start_dispatcher()
        wait_all(system, [item.id for item in batch], timeout=1200)
        took = time.time() - started
    ideal = math.ceil(items / concurrency) * latency
    return {"seconds": took, "ideal": ideal}


def dispatch(root: Path, items: int, *, postgres: bool = False) -> dict[str, float]:
    """A backlog of pending items: time until both pools are full; most Scheduled runs ever
    seen. With `postgres`, the items and the Prefect server are both on PostgreSQL."""
    slots = {"gpu": 1, "cloud": 5}
    database_url = prefect_database_url = None
    if postgres:
        database_url = fresh_database("reelroute_bench_dispatch")
        prefect = fresh_database("reelroute_bench_prefect", migrate=False)
        prefect_database_url = prefect.replace("+psycopg", "+asyncpg")
    with local_system(
        root,
        cloud_slots=slots["cloud"],
        latency_s=600.0,
        database_url=database_url,
        prefect_database_url=prefect_database_url,
    ) as system:
        providers = [
            InferenceProvider.wan_local,
            InferenceProvider.runway_gen4_turbo,
            InferenceProvider.runway_veo3_1,
        ]
        add_items(system, [providers[n % 3] for n in range(items)], "backlog")
        started = system.start_dispatcher()
        most_scheduled = 0
        full_after = math.inf
        with get_client(sync_client=True) as client:
            while time.time() - started < 180:
                counts = {}
                for pool, name in (("gpu", "wan"), ("cloud", "runway")):
                    runs = client.read_flow_runs(
                        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
                        flow_run_filter=FlowRunFilter(
                            state=FlowRunFilterState(
                                type=FlowRunFilterStateType(
                                    any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
                                )
                            )
                        ),
                        limit=200,
                    )
                    scheduled = sum(
                        1 for r in runs if r.state and r.state.type is StateType.SCHEDULED
                    )
                    most_scheduled = max(most_scheduled, scheduled)
                    counts[pool] = sum(
                        1 for r in runs if r.state and r.state.type is StateType.RUNNING
                    )
                if all(counts[p] >= slots[p] for p in slots) and full_after == math.inf:
                    full_after = time.time() - started
                if full_after != math.inf and time.time() - started > full_after + 10:
                    break
                time.sleep(0.2)
        engine = make_engine(system.settings.store.database_url)
        with Session(engine) as session:
            pending = sum(entry.pending for entry in count_ledger(session).values())
        engine.dispose()
    return {
        "full_after": full_after,
        "most_scheduled": most_scheduled,
        "limit": sum(slots.values()) + 2 * system.settings.dispatch.lookahead,
        "still_pending": pending,
    }


def main() -> None:
    """Run the three orchestration benchmarks and print their figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.orchestration")
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--pace", type=float, default=4.0)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--c", type=int, default=8)
    parser.add_argument("--t", type=float, nargs="+", default=[20.0, 60.0])
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument(
        "--postgres-backlog",
        type=int,
        default=10_000,
        help="Dispatch this backlog with the items and the Prefect server on PostgreSQL (0: skip).",
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        o = overhead(root / "overhead", options.items, options.pace)
        print(f"orchestration overhead, {options.items} Gen-4 Turbo items, emulator latency 0")
        print(
            f"  item created -> provider called   p50 {o['p50']:.2f} s   p95 {o['p95']:.2f} s"
            "   (target p50 <= 5 s)"
        )
        print(
            f"  worker-side CPU per flow run      generate-video {o['runway_cpu']:.2f} s, "
            f"trivial flow {o['trivial_cpu']:.2f} s, ratio "
            f"{o['runway_cpu'] / o['trivial_cpu']:.2f}x   (target <= 1.2x)"
        )
        for latency in options.t:
            t = throughput(root / f"throughput-{latency:g}", options.n, options.c, latency)
            print(f"\nRunway throughput, N={options.n}, C={options.c}, T={latency:.0f} s")
            print(
                f"  all finished after {t['seconds']:.1f} s; ideal ceil(N/C)*T = "
                f"{t['ideal']:.0f} s; ratio {t['seconds'] / t['ideal']:.2f}x   (target <= 1.15x)"
            )
        runs = [(options.backlog, False)] if options.backlog else []
        if options.postgres_backlog:
            runs.append((options.postgres_backlog, True))
        for backlog, postgres in runs:
            d = dispatch(root / f"dispatch-{postgres}", backlog, postgres=postgres)
            where = "PostgreSQL (items and Prefect server)" if postgres else "SQLite"
            print(f"\ndispatch of {backlog:,} pending items on {where} (pools: gpu 1, cloud 5)")
            print(
                f"  every pool full after {d['full_after']:.1f} s; most Scheduled runs seen "
                f"{d['most_scheduled']} (pools can take {d['limit']:.0f} soon); "
                f"{d['still_pending']:,} items still waiting in the database"
            )


if __name__ == "__main__":
    main()
