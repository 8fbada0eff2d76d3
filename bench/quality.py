"""What the automatic checks of every video cost: a run of `reelroute up` (sandbox) with N
items (Wan's tiny pipeline and the Runway emulator) added through the REST API, then each item's
check time (decoding and every check, `video_items.quality.seconds`) against the time its
video took to make (its attempt's claim to its end), per provider.

    python -m bench.quality [--items 100] [--wan-share 0.2]
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa
from PIL import Image

from reelroute.deployments.launcher import free_port


def photo_png(seed: int = 1, width: int = 256, height: int = 192) -> bytes:
    """A photo-like picture (discs of colour over a gradient, with grain)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    picture = np.zeros((height, width, 3), dtype=np.float32)
    for _ in range(8):
        cx, cy, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(15, 60)
        picture[(x - cx) ** 2 + (y - cy) ** 2 < radius**2] = rng.uniform(30, 225, 3)
    picture += (x[..., None] / width) * 60 + rng.normal(0, 4, picture.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    """Run it and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.quality")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--wan-share", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=1800)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="reelroute-bench-quality-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REELROUTE_"))}
    env |= {
        "REELROUTE_PREFECT_PORT": str(free_port()),
        "REELROUTE_EMULATOR_PORT": str(free_port()),
    }
    log = folder / "up.log"
    with open(log, "ab") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "reelroute", "up", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.time() + 300
        while "reelroute is up" not in log.read_text(errors="replace"):
            if up.poll() is not None or time.time() > deadline:
                raise SystemExit(log.read_text(errors="replace")[-3000:])
            time.sleep(1)
        token = (folder / "data" / "admin-token").read_text().strip()
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        group = api.post("/api/admin/groups", json={"name": "bench quality"}).json()["data"]
        photo = api.post(
            f"/api/admin/groups/{group['id']}/photos",
            files=[("files", ("photo.png", photo_png(), "image/png"))],
        ).json()["data"][0]
        wan = round(options.items * options.wan_share)
        tasks = [
            {
                "photo_id": photo["id"],
                "prompt": f"the discs drift slowly, take {n}",
                "inference_provider": "wan_local" if n < wan else "runway_gen4_turbo",
            }
            for n in range(options.items)
        ]
        started = time.time()
        added = api.post("/api/admin/tasks/add", json={"group_id": group["id"], "tasks": tasks})
        added.raise_for_status()
        engine = sa.create_engine(f"sqlite:///{folder / 'data' / 'reelroute.db'}")
        while True:
            with engine.connect() as connection:
                left = connection.execute(
                    sa.text(
                        "SELECT count(*) FROM video_items WHERE status IN ('pending', 'processing')"
                    )
                ).scalar_one()
            if left == 0:
                break
            if time.time() - started > options.timeout:
                raise SystemExit(f"{left} items still unfinished after {options.timeout:.0f} s")
            time.sleep(5)
        took = time.time() - started
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT inference_provider, status, quality, started_at, finished_at "
                    "FROM video_items"
                )
            ).all()
        engine.dispose()
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
    report(rows, took, options.items)


def report(rows: Sequence[Sequence[Any]], took: float, items: int) -> None:
    """Per provider: check seconds against generation seconds."""
    import json
    from datetime import datetime

    print(f"{items} items through `reelroute up` (sandbox) in {took:.0f} s")
    print(f"{'provider':20} {'videos':>6} {'check s (median)':>17} {'made in s (median)':>19} "
          f"{'checks / making':>16} {'passed':>7}")  # fmt: skip
    by_provider: dict[str, list[tuple[float, float, bool]]] = {}
    for provider, status, quality, started, finished in rows:
        if status != "completed" or not quality or not started or not finished:
            continue
        data = json.loads(quality) if isinstance(quality, str) else quality
        made = datetime.fromisoformat(str(finished)) - datetime.fromisoformat(str(started))
        by_provider.setdefault(provider, []).append(
            (float(data["seconds"]), made.total_seconds(), bool(data["passed"]))
        )
    for provider, found in sorted(by_provider.items()):
        checks = [c for c, _, _ in found]
        making = [m for _, m, _ in found]
        share = sum(checks) / sum(making)
        passed = sum(1 for _, _, ok in found if ok)
        print(
            f"{provider:20} {len(found):6d} {statistics.median(checks):17.3f} "
            f"{statistics.median(making):19.1f} {share:16.1%} {passed:4d}/{len(found)}"
        )


if __name__ == "__main__":
    main()
