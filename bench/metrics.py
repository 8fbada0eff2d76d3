"""`GET /metrics` at scale: one scrape (every figure read from the database, rendered in the
Prometheus text format) at 1,000 items and at 1M (and 10M with `--sizes 1000,1000000,10000000`),
in one run on PostgreSQL. Targets: <= 50 ms at each size, and the largest within 2x of 1M.

Every table a scrape could read grows with the items, in proportion (`fill_around`): each
waiting item has its ETA (one in eight predicted late), one item in twenty was moved, every
item has its `item.created` event and one webhook delivery (one in a hundred dead, one in a
hundred pending). The planner's late counts and the move ledger are written as the planner
keeps them; the delivery ledger by its triggers.

    python -m bench.metrics [--sizes 1000,1000000] [--repeat 20]
"""

from __future__ import annotations

import argparse

from sqlmodel import Session

from bench.data import add_items, fresh_database, settle
from bench.stats import timed
from reelroute.models.reporting.metrics import read_metrics
from reelroute.models.store.db import make_engine
from reelroute.models.store.ledger import compact_counts
from reelroute.ui.api.metrics import render

TARGET_SECONDS = 0.050


FILL_AROUND = (
    # the ETAs of the waiting items just added (the planner's item_etas)
    """
    INSERT INTO item_etas (item_id, queue_position, start_at, eta, eta_p90, late_risk)
    SELECT v.id, row_number() OVER (ORDER BY v.due_at), now(), now() + interval '1 hour',
           now() + interval '2 hours', (hashtext(v.id::text) % 8) = 0
    FROM video_items AS v
    WHERE v.status = 'pending' AND NOT EXISTS (SELECT 1 FROM item_etas AS e WHERE e.item_id = v.id)
    """,
    # one item in twenty moved once
    """
    INSERT INTO item_reroutes (item_id, from_provider, to_provider, reason, moved_at)
    SELECT v.id, 'wan_local', CAST(v.inference_provider AS VARCHAR), 'bench', v.created_at
    FROM video_items AS v
    WHERE (hashtext(v.id::text) % 20) = 0 AND v.inference_provider <> 'wan_local'
      AND NOT EXISTS (SELECT 1 FROM item_reroutes AS r WHERE r.item_id = v.id)
    """,
    # every item's item.created event, and one delivery of it (1 % dead, 1 % pending)
    """
    INSERT INTO item_events (item_id, group_id, type, status, provider, attempt, created_at,
                             fanned_out)
    SELECT v.id, v.group_id, 'item.created', 'pending', CAST(v.inference_provider AS VARCHAR),
           0, v.created_at, true
    FROM video_items AS v
    WHERE NOT EXISTS (SELECT 1 FROM item_events AS e WHERE e.item_id = v.id)
    """,
    """
    INSERT INTO webhook_deliveries (event_id, endpoint_id, item_id, status, attempts,
                                    next_attempt_at)
    SELECT e.id, :endpoint, e.item_id,
           CASE WHEN e.id % 100 = 0 THEN 'dead' WHEN e.id % 100 = 1 THEN 'pending'
                ELSE 'delivered' END, 1, e.created_at
    FROM item_events AS e
    WHERE e.id > coalesce((SELECT max(event_id) FROM webhook_deliveries), 0)
    """,
    # the ledgers as their writers keep them: the planner's late counts, the moves
    "DELETE FROM predicted_late",
    """
    INSERT INTO predicted_late (provider, items, updated_at)
    SELECT CAST(v.inference_provider AS VARCHAR), count(*), now()
    FROM item_etas AS e JOIN video_items AS v ON v.id = e.item_id
    WHERE e.late_risk GROUP BY v.inference_provider
    """,
    "DELETE FROM move_tallies",
    """
    INSERT INTO move_tallies (from_provider, to_provider, moves)
    SELECT CAST(from_provider AS VARCHAR), CAST(to_provider AS VARCHAR), count(*)
    FROM item_reroutes GROUP BY from_provider, to_provider
    """,
)


def fill_around(url: str) -> float:
    """Fill the tables beside video_items in proportion to it (see the module's docstring);
    returns the seconds it took."""
    import time
    import uuid

    import sqlalchemy as sa

    started = time.perf_counter()
    engine = make_engine(url)
    with engine.begin() as connection:
        endpoint = connection.execute(
            sa.text("SELECT id FROM webhook_endpoints WHERE url = 'https://bench.example.com/'")
        ).scalar_one_or_none()
        if endpoint is None:
            endpoint = uuid.uuid4()
            connection.execute(
                sa.text(
                    "INSERT INTO webhook_endpoints (id, url, is_default, enabled, created_at) "
                    "VALUES (:id, 'https://bench.example.com/', false, true, now())"
                ),
                {"id": endpoint},
            )
        for statement in FILL_AROUND:
            connection.execute(sa.text(statement), {"endpoint": endpoint})
    engine.dispose()
    settle(url)
    return time.perf_counter() - started


def table_rows(url: str) -> dict[str, int]:
    """Rows of the tables a scrape used to count."""
    import sqlalchemy as sa

    engine = make_engine(url)
    with engine.connect() as connection:
        found = {
            table: int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("video_items", "item_etas", "item_reroutes", "webhook_deliveries")
        }
    engine.dispose()
    return found


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
        fill_around(url)
        have = size
        figures[size] = scrape(url, options.repeat)
        ratio = figures[size] / figures[sizes[0]]
        rows = ", ".join(f"{table} {n:,}" for table, n in table_rows(url).items())
        print(f"  {size:>12,} items  {figures[size] * 1000:7.1f} ms  ({ratio:.2f}x {sizes[0]:,})")
        print(f"  {'':>12}        ({rows})")
    met = all(seconds <= TARGET_SECONDS for seconds in figures.values())
    print(f"  target <= {TARGET_SECONDS * 1000:.0f} ms at every size: {'met' if met else 'MISSED'}")
    if 1_000_000 in figures and sizes[-1] > 1_000_000:
        within = figures[sizes[-1]] <= 2 * figures[1_000_000]
        print(f"  {sizes[-1]:,} within 2x of 1M: {'met' if within else 'MISSED'}")


if __name__ == "__main__":
    main()
