"""claim-next: 8 concurrent claimers (processes, as real workers are) on a big and an almost
empty backlog; claims per second and a check that no item was claimed twice."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from bench.data import settle
from reelroute.models.assembly import load_settings
from reelroute.models.core.enums import Pool
from reelroute.models.core.tables import POOL_PREDICATE
from reelroute.models.items.lifecycle import claim_next
from reelroute.models.store.db import make_engine

RUNWAY = POOL_PREDICATE[Pool.cloud]


@dataclass(frozen=True)
class ClaimRun:
    """What timed runs of concurrent claimers did."""

    backlog: int
    claims: int
    seconds: float
    double_claims: int

    @property
    def per_second(self) -> float:
        """Claims per second over the measured time."""
        return self.claims / self.seconds


@dataclass(frozen=True)
class _Claimed:
    ids: list[str]
    measured: int
    last_claim_at: float


def _claimer(
    url: str, name: str, warmup: float, seconds: float, start_at: float, events: bool = True
) -> _Claimed:
    """Claim from `start_at` until the window closes or nothing is left; claims in the first
    `warmup` seconds are checked for doubles but not counted in the rate. `events=False`: no
    `item.started` events (the outbox benchmark's baseline)."""
    settings = load_settings(_env_file=None, database_url=url)
    # The claim is a single statement: in autocommit mode it is one round trip.
    engine = make_engine(url, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    ids: list[str] = []
    measured, last_claim_at = 0, start_at + warmup
    while time.time() < start_at:
        time.sleep(0.001)
    measured_from, deadline = start_at + warmup, start_at + warmup + seconds
    with Session(engine, expire_on_commit=False) as session:
        session.info["events"] = events
        while (now := time.time()) < deadline:
            claim = claim_next(session, pool=Pool.cloud, worker_id=name, settings=settings)
            if claim is None:
                break
            ids.append(str(claim.item_id))
            if now >= measured_from:
                measured += 1
                last_claim_at = time.time()
    engine.dispose()
    return _Claimed(ids, measured, last_claim_at)


def pending_runway(url: str) -> int:
    """Pending items of the Runway pool (the claimers' backlog)."""
    engine = make_engine(url)
    with engine.connect() as connection:
        count = connection.execute(
            sa.text(f"SELECT count(*) FROM video_items WHERE status = 'pending' AND {RUNWAY}")
        ).scalar_one()
    engine.dispose()
    return int(count)


def run_claimers(
    url: str, claimers: int, seconds: float, warmup: float = 2.0, *, events: bool = True
) -> ClaimRun:
    """`claimers` processes claim for `warmup` + `seconds`, or until the backlog is empty;
    the rate counts the claims after the warm-up over the time until the last of them."""
    settle(url)
    backlog = pending_runway(url)
    start_at = time.time() + 3.0  # every process started and connected before the clock starts
    context = multiprocessing.get_context("spawn")
    with context.Pool(claimers) as pool:
        results = pool.starmap(
            _claimer,
            [(url, f"bench-{n}", warmup, seconds, start_at, events) for n in range(claimers)],
        )
    ids = Counter(item for result in results for item in result.ids)
    elapsed = min(seconds, max(result.last_claim_at for result in results) - start_at - warmup)
    return ClaimRun(
        backlog=backlog,
        claims=sum(result.measured for result in results),
        seconds=elapsed,
        double_claims=sum(n - 1 for n in ids.values() if n > 1),
    )


def run_on_small_backlog(url: str, claimers: int, backlog: int, rounds: int) -> ClaimRun:
    """Rounds of: exactly `backlog` Runway items pending, claimers drain them; summed."""
    engine = make_engine(url)
    with engine.begin() as connection:  # nothing else pending in the pool
        connection.execute(
            sa.text(
                f"UPDATE video_items SET status = 'completed' WHERE status = 'pending' AND {RUNWAY}"
            )
        )
    runs = []
    for _ in range(rounds):
        with engine.begin() as connection:  # put back `backlog` claimed items
            connection.execute(
                sa.text(
                    "UPDATE video_items SET status = 'pending', retry_count = 0, "
                    "leased_until = NULL, worker_id = NULL WHERE id IN ("
                    f"SELECT id FROM video_items WHERE status = 'processing' AND {RUNWAY} "
                    "LIMIT :backlog)"
                ),
                {"backlog": backlog},
            )
        runs.append(run_claimers(url, claimers, seconds=60.0, warmup=0.0))
    engine.dispose()
    return ClaimRun(
        backlog=backlog,
        claims=sum(run.claims for run in runs),
        seconds=sum(run.seconds for run in runs),
        double_claims=sum(run.double_claims for run in runs),
    )


def main() -> None:
    """`python -m bench.claims`: claim-next on PostgreSQL with a big backlog and a small one."""
    import argparse

    from bench.data import add_items, fresh_database

    parser = argparse.ArgumentParser(prog="python -m bench.claims")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--claimers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database", default="reelroute_bench_claims")
    options = parser.parse_args()
    url = fresh_database(options.database)
    add_items(url, options.items)
    large = run_claimers(url, options.claimers, options.seconds)
    small = run_on_small_backlog(url, options.claimers, backlog=5_000, rounds=5)
    print(f"claim-next, {options.claimers} concurrent claimer processes, PostgreSQL")
    for label, run in (("large backlog", large), ("small backlog, drained", small)):
        print(
            f"  {label:<22} {run.backlog:>10,} pending  {run.per_second:8.0f} claims/s"
            f"  double claims: {run.double_claims}"
        )


if __name__ == "__main__":
    main()
