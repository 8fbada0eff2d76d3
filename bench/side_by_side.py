"""Two trees measured in one run: this checkout against another (e.g. the commit before a
change, checked out with its own `.venv`), alternating, each from its own folder.

    python -m bench.side_by_side --baseline ../baseline [--items 1000000] [--no-orchestration]

It runs claim-next (`bench.claims`' functions, 8 processes, a 1M-item backlog and a drained
5,000-item one), the statistics call (`bench.stats.measure`) and `python -m bench.orchestration
--t 60` in each tree and prints the figures side by side. The functions it calls exist in the
trees of this round and the last, so the same code times both.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

DATABASE_CODE = """
import json, sys
from bench.claims import run_claimers, run_on_small_backlog
from bench.data import add_items, fresh_database
from bench.stats import measure
items, seconds, name = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
url = fresh_database(name)
add_items(url, items)
stats = measure(url, with_seed=False)
large = run_claimers(url, 8, seconds)
small = run_on_small_backlog(url, 8, backlog=5_000, rounds=5)
print(json.dumps({
    "stats_ledger_ms": stats["ledger"] * 1000,
    "stats_group_by_ms": stats["group_by"] * 1000,
    "claims_large_per_s": large.per_second,
    "claims_small_per_s": small.per_second,
    "double_claims": large.double_claims + small.double_claims,
}))
"""

ORCHESTRATION_FIGURES = {
    "created_to_runway_p50_s": r"provider called\s+p50 ([\d.]+) s",
    "created_to_runway_p95_s": r"provider called\s+p50 [\d.]+ s\s+p95 ([\d.]+) s",
    "cpu_per_runway_run_s": r"generate-video ([\d.]+) s",
    "cpu_per_trivial_run_s": r"trivial flow ([\d.]+) s",
    "throughput_t60_s": r"T=60 s\n\s+all finished after ([\d.]+) s",
    "dispatch_full_after_s": r"on SQLite .*\n\s+every pool full after ([\d.]+) s",
}


def python_of(tree: Path) -> str:
    """The interpreter of a tree's own virtual environment."""
    candidate = tree / ".venv" / "bin" / "python"
    if not candidate.exists():
        raise SystemExit(f"{tree} has no .venv: run `make install` there first")
    return str(candidate)


def database_figures(tree: Path, items: int, seconds: float, name: str) -> dict[str, float]:
    """claim-next and statistics in `tree`, on a fresh database `name`."""
    done = subprocess.run(
        [python_of(tree), "-c", DATABASE_CODE, str(items), str(seconds), name],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def orchestration_figures(tree: Path) -> dict[str, float]:
    """`python -m bench.orchestration --t 60` in `tree`, its figures read from what it prints."""
    done = subprocess.run(
        [python_of(tree), "-m", "bench.orchestration", "--t", "60"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"--- {tree}\n{done.stdout}", flush=True)
    figures = {}
    for name, pattern in ORCHESTRATION_FIGURES.items():
        found = re.search(pattern, done.stdout)
        if found:
            figures[name] = float(found.group(1))
    return figures


def main() -> None:
    """Measure both trees and print their figures side by side."""
    parser = argparse.ArgumentParser(prog="python -m bench.side_by_side")
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--claim-seconds", type=float, default=10.0)
    parser.add_argument("--no-orchestration", action="store_true")
    options = parser.parse_args()
    trees = {"before": options.baseline.resolve(), "after": HERE}
    results: dict[str, dict[str, float]] = {name: {} for name in trees}
    for name, tree in trees.items():
        print(f"database benchmarks: {name} ({tree})", file=sys.stderr, flush=True)
        results[name] |= database_figures(
            tree, options.items, options.claim_seconds, f"reelroute_bench_{name}"
        )
    if not options.no_orchestration:
        for name, tree in trees.items():
            print(f"orchestration: {name} ({tree})", file=sys.stderr, flush=True)
            results[name] |= orchestration_figures(tree)
    print(f"{'figure':<28}{'before':>12}{'after':>12}{'after/before':>14}")
    for figure in results["before"]:
        before, after = results["before"][figure], results["after"].get(figure)
        ratio = f"{after / before:.2f}x" if after is not None and before else "-"
        shown = f"{after:12.2f}" if after is not None else f"{'-':>12}"
        print(f"{figure:<28}{before:12.2f}{shown}{ratio:>14}")


if __name__ == "__main__":
    main()
