"""Statistics: reelroute's ledger query against the seed's method, at 1M and 10M items."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import Session

from reelroute.models.store.db import make_engine
from reelroute.models.store.ledger import compact_counts, count_ledger


def timed(function: Callable[[], object], repeat: int) -> float:
    """Median seconds of `repeat` calls."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def seed_method(engine: sa.Engine) -> dict[str, Counter[str]]:
    """SEED.md §7: select the provider and status of every item, count in application code."""
    counts: dict[str, Counter[str]] = {}
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=10_000).execute(
            sa.text("SELECT inference_provider, status FROM video_items")
        )
        for provider, status in result:
            counts.setdefault(provider, Counter())[status] += 1
    return counts


def group_by_count(engine: sa.Engine) -> object:
    """A plain SQL count over the table: correct, but it reads every row."""
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT inference_provider, status, count(*) FROM video_items GROUP BY 1, 2")
        ).all()


def ledger(engine: sa.Engine) -> dict[str, dict[str, int]]:
    """reelroute: the sums of the count ledger."""
    with Session(engine) as session:
        result = {p.value: c.model_dump() for p, c in count_ledger(session).items()}
        session.commit()
    return result


def measure(url: str, *, with_seed: bool) -> dict[str, float]:
    """Seconds per statistics call by each method on the database at `url`."""
    engine = make_engine(url)
    with Session(engine) as session:
        compact_counts(session)
        session.commit()
    figures = {"ledger": timed(lambda: ledger(engine), 50)}
    figures["group_by"] = timed(lambda: group_by_count(engine), 3)
    if with_seed:
        seed = seed_method(engine)
        mine = ledger(engine)
        for provider, counts in seed.items():
            assert all(mine[provider][status] == n for status, n in counts.items())
        figures["seed"] = timed(lambda: seed_method(engine), 3)
    engine.dispose()
    return figures


def main() -> None:
    """`python -m bench.stats`: the statistics call on PostgreSQL, ledger against GROUP BY."""
    import argparse

    from bench.data import add_items, fresh_database

    parser = argparse.ArgumentParser(prog="python -m bench.stats")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--database", default="reelroute_bench_stats")
    options = parser.parse_args()
    url = fresh_database(options.database)
    add_items(url, options.items)
    figures = measure(url, with_seed=False)
    print(f"statistics at {options.items:,} items, PostgreSQL, median seconds per call")
    print(f"  SQL GROUP BY over the table  {figures['group_by'] * 1000:10.1f} ms")
    print(f"  reelroute (count ledger)     {figures['ledger'] * 1000:10.3f} ms")


if __name__ == "__main__":
    main()
