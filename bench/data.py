"""A PostgreSQL database filled with many items, made with set-based SQL in seconds."""

from __future__ import annotations

import time
import uuid

import psycopg
import sqlalchemy as sa

from reelroute.models.store.db import make_engine
from reelroute.models.store.migrate import upgrade

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# The mix of a service that has run for a while: most items done, a quarter still to do.
FILL_ITEMS = """
INSERT INTO video_items (id, group_id, photo_id, prompt, inference_provider, status, priority,
                         retry_count, progress, cost_credits, created_at, updated_at, due_at)
SELECT gen_random_uuid(), :group_id, :photo_id, 'benchmark item ' || n,
       (ARRAY['wan_local', 'runway_gen4_turbo', 'runway_veo3.1'])[1 + n % 3]::inference_provider,
       (CASE WHEN n % 20 < 12 THEN 'completed' WHEN n % 20 < 14 THEN 'failed'
             WHEN n % 20 < 15 THEN 'cancelled' ELSE 'pending' END)::processing_status,
       1, 0, 0, CASE WHEN n % 20 < 12 THEN 25 END,
       now() - make_interval(secs => :count - n), now(),
       now() - make_interval(secs => :count - n) + interval '4 hours'
FROM generate_series(1, :count) AS n
"""


def fresh_database(name: str, *, migrate: bool = True) -> str:
    """Drop and create database `name`, migrate it (unless told not to), and return its
    SQLAlchemy URL."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    if migrate:
        upgrade(url)
    return url


def add_items(url: str, count: int, chunk: int = 1_000_000) -> float:
    """Append `count` items (25% pending) in chunks; returns the seconds it took."""
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        group_id, photo_id = uuid.uuid4(), uuid.uuid4()
        connection.execute(
            sa.text(
                "INSERT INTO groups (id, name, name_key, priority, created_at) "
                "VALUES (:id, :name, :name, 'normal', now())"
            ),
            {"id": group_id, "name": f"bench {group_id}"},
        )
        connection.execute(
            sa.text(
                "INSERT INTO photos (id, group_id, storage_path, created_at) "
                "VALUES (:id, :group_id, 'photos/bench', now())"
            ),
            {"id": photo_id, "group_id": group_id},
        )
    done = 0
    while done < count:  # chunks keep one transaction's memory and WAL bounded
        size = min(chunk, count - done)
        with engine.begin() as connection:
            connection.execute(
                sa.text(FILL_ITEMS),
                {"group_id": group_id, "photo_id": photo_id, "count": size},
            )
        done += size
    engine.dispose()
    settle(url)
    return time.perf_counter() - started


def settle(url: str) -> None:
    """VACUUM, ANALYZE and CHECKPOINT: a timed run must not pay for the set-up's dead rows
    and dirty pages (a checkpoint during a run halves the claim rate on this machine)."""
    engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
        connection.execute(sa.text("CHECKPOINT"))
    engine.dispose()
