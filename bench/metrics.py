"""`GET /metrics` at scale: one scrape (every figure read from the database, rendered in the
Prometheus text format) at 1,000 items and at 1M (and 10M with `--sizes 1000,1000000,10000000`),
in one run on PostgreSQL. Targets: <= 50 ms at each size, and the largest within 2x of 1M.

    python -m bench.metrics [--sizes 1000,1000000] [--repeat 20]
"""

from __future__ import annotations

import argparse

from sqlmodel import Session

from bench.data import add_items, fresh_database
from bench.stats import timed
from reelroute.models.reporting.metrics import read_metrics
from reelroute.models.store.db import make_engine
from reelroute.models.store.ledger import compact_counts
from reelroute.ui.api.metrics import render

TARGET_SECONDS = 0.050


def scrape(url: str, repeat: int) -> float:
    """Median seconds of one scrape's reads and rendering."""
    engine = make_engine(url)
    with Session(engine) as session:
        compact_counts(session)
        session.commit()

    def once() -> bytes:
        with Session(engine) as session:
            return render(read_metrics(session))

    once()  # warm
    seconds = timed(once, repeat)
    engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics")
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    url = fresh_database("reelroute_bench_metrics")
    print("GET /metrics: one scrape's reads and rendering, PostgreSQL, median of", options.repeat)
    have, figures = 0, {}
    for size in sizes:
        add_items(url, size - have)
        have = size
        figures[size] = scrape(url, options.repeat)
        ratio = figures[size] / figures[sizes[0]]
        print(f"  {size:>12,} items  {figures[size] * 1000:7.1f} ms  ({ratio:.2f}x {sizes[0]:,})")
    met = all(seconds <= TARGET_SECONDS for seconds in figures.values())
    print(f"  target <= {TARGET_SECONDS * 1000:.0f} ms at every size: {'met' if met else 'MISSED'}")
    if 1_000_000 in figures and sizes[-1] > 1_000_000:
        within = figures[sizes[-1]] <= 2 * figures[1_000_000]
        print(f"  {sizes[-1]:,} within 2x of 1M: {'met' if within else 'MISSED'}")


if __name__ == "__main__":
    main()
