"""`make bench` (Wan): what the warm pipeline process removes, through the real system (Prefect
server, `reelroute worker --pool gpu`, dispatcher), with sandbox mode's tiny TI2V-5B-shaped
pipeline on this machine's CPU.

Both ways run in one go, side by side: before (REELROUTE_WAN_RESIDENT=false: every flow run
loads the pipeline in its own process) and after (one pipeline process keeps it). For each item:
claim → complete, less the bare pipeline call (the same video made in this process with the
pipeline already loaded); and how many times the pipeline was loaded for the items.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from prefect import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import Session

from bench.orchestration import add_items, wait_all
from bench.system import local_system
from reelroute.deployments.gpu_host import local_health
from reelroute.models.db import make_engine
from reelroute.models.enums import InferenceProvider
from reelroute.models.settings import load_settings
from reelroute.models.tables import VideoItem
from reelroute.providers.base import GenerationRequest

WAN = InferenceProvider.wan_local
LOAD_LINE = "Wan pipeline loads in this flow run's process: "


def bare_call(root: Path, runs: int = 5) -> float:
    """Median seconds of the pipeline call alone (loaded, in this process), for the video the
    system makes (the admin's default: 121 frames)."""
    from bench.orchestration import PHOTO_SIZE
    from reelroute.providers.wan import WanProvider

    settings = load_settings(_env_file=None, sandbox=True, storage_url=str(root / "storage"))
    provider = WanProvider(settings)
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", PHOTO_SIZE, (90, 140, 200)).save(buffer, format="PNG")
    request = GenerationRequest(
        item_id=uuid.uuid4(), provider=WAN, image=buffer.getvalue(), prompt="bare"
    )
    provider.generate(request, on_progress=lambda _: None, on_task=lambda _: None)  # load
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        provider.generate(request, on_progress=lambda _: None, on_task=lambda _: None)
        took.append(time.perf_counter() - started)
    return statistics.median(took)


def through_system(root: Path, items: int, resident: bool) -> tuple[list[float], int]:
    """Claim → complete of each item, and the pipeline loads the items cost."""
    env = {"REELROUTE_WAN_RESIDENT": str(resident).lower(), "REELROUTE_GPU_SLOTS": "1"}
    with local_system(root, cloud_slots=1, latency_s=1.0, extra_env=env) as system:
        system.start_dispatcher()
        if resident:  # the process loads once at start, before any item
            deadline = time.time() + 120
            while not [h for h in local_health() if h.loads]:
                assert time.time() < deadline, "the pipeline process did not come up"
                time.sleep(0.5)
        made = add_items(system, [WAN] * items, "wan bench")
        wait_all(system, [item.id for item in made], timeout=600)
        engine = make_engine(system.settings.database_url)
        with Session(engine) as session:
            done = [session.get(VideoItem, item.id) for item in made]
        engine.dispose()
        seconds = [
            (item.finished_at - item.started_at).total_seconds()
            for item in done
            if item is not None and item.finished_at and item.started_at
        ]
        if resident:
            loads = sum(health.loads for health in local_health())
        else:
            runs = [item.flow_run_id for item in done if item is not None and item.flow_run_id]
            time.sleep(3)  # the runs' last logs reach the server
            with (
                temporary_settings(updates={PREFECT_API_URL: system.api_url}),
                get_client(sync_client=True) as client,
            ):
                logs: list[Any] = []
                while True:  # pages of the server's limit
                    page = client.read_logs(
                        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=runs)),
                        offset=len(logs),
                    )
                    logs += page
                    if not page:
                        break
            loads = sum(
                int(log.message.removeprefix(LOAD_LINE).split()[0])
                for log in logs
                if log.message.startswith(LOAD_LINE)
            )
    return seconds, loads


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wan")
    parser.add_argument("--items", type=int, default=10)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reelroute-bench-wan-") as folder:
        root = Path(folder)
        bare = bare_call(root / "bare")
        before, before_loads = through_system(root / "before", options.items, resident=False)
        after, after_loads = through_system(root / "after", options.items, resident=True)
    over_before = statistics.median(before) - bare
    over_after = statistics.median(after) - bare
    print(f"\nWan through the system, {options.items} items of 121 frames, tiny TI2V-5B shape, CPU")
    print(f"  bare pipeline call (loaded, in-process)   {bare:8.2f} s")
    print(f"  claim -> complete, median   before {statistics.median(before):6.2f} s"
          f"   after {statistics.median(after):6.2f} s")  # fmt: skip
    ratio = over_before / over_after if over_after > 0 else float("inf")
    print(f"  minus the bare call         before {over_before:6.2f} s   after {over_after:6.2f} s"
          f"   ({ratio:.0f}x less)")  # fmt: skip
    print(f"  pipeline loads per {options.items} items  before {before_loads:6d}     "
          f"after {after_loads:6d}")  # fmt: skip
    met = after_loads == 1
    print(f"  target: 1 load per {options.items} items: {'met' if met else 'MISSED'}")
    print("result: " + ("all targets met" if met else "a target was missed"))


if __name__ == "__main__":
    main()
