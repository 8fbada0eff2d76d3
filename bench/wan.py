"""`make bench` (Wan): what the warm pipeline process removes, through the real system (Prefect
server, `reelroute worker --pool gpu`, dispatcher), with sandbox mode's tiny TI2V-5B-shaped
pipeline on this machine's CPU.

Both ways run in one go, side by side: before (REELROUTE_WAN_RESIDENT=false: every flow run
loads the pipeline in its own process) and after (one pipeline process keeps it). For each item:
claim → complete, less the bare pipeline call (the same video made in this process with the
pipeline already loaded); and how many times the pipeline was loaded for the items.

`python -m bench.wan presets`: every Wan preset on the same tiny pipeline, in one run: the
transformer's forwards per video (counted by hooks) and the seconds per video against `full`,
each at its own steps and guidance (full: the shape's 50 steps with guidance, two forwards a
step; fast: 4 at guidance 1.0, one). On a CPU and a tiny model, compile and fp8 buy nothing:
those figures show that each preset runs and what it costs in forwards; the GPU's seconds are
`bench.wan_gpu --presets` (docs/performance.md).
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
from reelroute.models.assembly import load_settings
from reelroute.models.core.enums import InferenceProvider
from reelroute.models.core.tables import VideoItem
from reelroute.models.store.db import make_engine
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
        engine = make_engine(system.settings.store.database_url)
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


def presets(root: Path, videos: int = 2) -> None:
    """Every preset on the tiny TI2V-5B: forwards per video and seconds per video (the median
    of `videos` after a first one that pays loading and compiling) against `full`."""
    from reelroute.providers.tiny_wan import ensure_tiny_wan, make_lora
    from reelroute.providers.wan import WanProvider, load_pipeline
    from reelroute.providers.wan_options import count_blocks
    from reelroute.providers.wan_presets import PRESETS

    model = ensure_tiny_wan(root / "tiny-wan")
    lora = make_lora(model, root / "lora")
    rows = {}
    for name in PRESETS:
        settings = load_settings(
            _env_file=None,
            wan_model=str(model),
            wan_device="cpu",
            wan_max_area=96 * 64,
            wan_preset=name,
            wan_lora=str(lora),
        )
        provider = WanProvider(settings)
        request = GenerationRequest(
            item_id=uuid.uuid4(), provider=WAN, image=_photo(), prompt="waves", frame_num=9
        )
        first = time.perf_counter()
        provider.generate(request, on_progress=lambda _: None, on_task=lambda _: None)
        first = time.perf_counter() - first
        counter = count_blocks(load_pipeline(provider.config).pipeline)
        took = []
        for _ in range(videos):
            counter.reset()
            started = time.perf_counter()
            provider.generate(request, on_progress=lambda _: None, on_task=lambda _: None)
            took.append(time.perf_counter() - started)
        for handle in counter.handles:
            handle.remove()
        rows[name] = (counter.forwards, statistics.median(took), first)
    full_forwards, full_seconds, _ = rows["full"]
    print("\nWan presets, tiny TI2V-5B shape, 9 frames, CPU (median of 2 videos after the first)")
    print("  preset          forwards  vs full   s/video  vs full   first video (load, compile)")
    for name, (forwards, seconds, first) in rows.items():
        print(
            f"  {name:15} {forwards:8d} {forwards / full_forwards:8.2f} {seconds:9.2f}"
            f" {seconds / full_seconds:8.2f}   {first:6.1f} s"
        )


def _photo() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 140, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wan")
    parser.add_argument("parts", nargs="*", default=["presets", "system"])
    parser.add_argument("--items", type=int, default=10)
    options = parser.parse_args()
    if "presets" in options.parts:
        with tempfile.TemporaryDirectory(prefix="reelroute-bench-wan-") as folder:
            presets(Path(folder))
    if "system" not in options.parts:
        return
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
