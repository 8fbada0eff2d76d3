"""`make bench`: statistics and claim-next on PostgreSQL with 1M items, then statistics at 10M.

Every figure is printed next to the baseline it is compared with, measured in the same run.
Options: --items N (default 1,000,000), --big N (default 10,000,000; 0 skips it).
"""

from __future__ import annotations

import argparse

from bench.claims import run_claimers, run_on_small_backlog
from bench.data import add_items, fresh_database
from bench.stats import measure

CLAIMERS = 8
SMALL_BACKLOG = 5_000  # drained to zero, five times


def main() -> None:
    """Run the database benchmarks and print their figures."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--claim-seconds", type=float, default=10.0)
    options = parser.parse_args()

    url = fresh_database("reelroute_bench")
    took = add_items(url, options.items)
    print(f"filled {options.items:,} items in {took:.0f} s")

    small = measure(url, with_seed=True)
    print("\nstatistics, PostgreSQL, median seconds per call")
    print(f"  seed's method (every row to Python)  {small['seed'] * 1000:10.1f} ms")
    print(f"  SQL GROUP BY over the table           {small['group_by'] * 1000:10.1f} ms")
    print(f"  reelroute (count ledger)              {small['ledger'] * 1000:10.3f} ms")
    print(f"  ratio seed / reelroute                {small['seed'] / small['ledger']:10.0f}x")

    print(f"\nclaim-next, {CLAIMERS} concurrent claimer processes")
    large = run_claimers(url, CLAIMERS, options.claim_seconds)
    empty = run_on_small_backlog(url, CLAIMERS, backlog=SMALL_BACKLOG, rounds=5)
    for label, run in (("large backlog", large), ("small backlog, drained", empty)):
        print(
            f"  {label:<22} {run.backlog:>10,} pending  {run.per_second:8.0f} claims/s"
            f"  double claims: {run.double_claims}"
        )
    print(f"  claim cost, large / small backlog     {empty.per_second / large.per_second:10.2f}x")

    big_ratio = None
    if options.big > options.items:
        add_items(url, options.big - options.items)
        big = measure(url, with_seed=False)
        big_ratio = big["ledger"] / small["ledger"]
        print(f"\nstatistics at {options.big:,} items")
        print(f"  SQL GROUP BY over the table           {big['group_by'] * 1000:10.1f} ms")
        print(f"  reelroute (count ledger)              {big['ledger'] * 1000:10.3f} ms")
        print(f"  ratio {options.big:,} / {options.items:,} items      {big_ratio:10.2f}x")

    print("\ntargets: seed/reelroute >= 50x; 10M/1M <= 2x; >= 2,000 claims/s;")
    print("         claim cost large/small backlog within 1.5x; zero double claims")
    failed = (
        small["seed"] / small["ledger"] < 50
        or (big_ratio is not None and big_ratio > 2)
        or min(large.per_second, empty.per_second) < 2_000
        or empty.per_second / large.per_second > 1.5  # a claim costs more with a big backlog
        or large.double_claims + empty.double_claims > 0
    )
    print("result: " + ("a target was missed" if failed else "all targets met"))


if __name__ == "__main__":
    main()
