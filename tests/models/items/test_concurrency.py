"""Concurrent claimers never take the same item (PostgreSQL: SKIP LOCKED; SQLite: one writer)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from reelroute.models.core.enums import InferenceProvider, Pool
from reelroute.models.items import lifecycle as ops
from tests.models.helpers import add_group_with_photos, ledger_counts

ITEMS = 1_200
THREADS = 8


def seed_items(engine: sa.Engine, count: int) -> None:
    with Session(engine) as session:
        group_id, (photo_id,) = add_group_with_photos(session)
    # One INSERT … SELECT: the fixture is about claiming, not creating.
    with engine.begin() as connection:
        rows = [
            {
                "id": uuid.uuid4(),
                "group_id": group_id,
                "photo_id": photo_id,
                "n": n,
                "provider": "runway_gen4_turbo" if n % 2 else "runway_veo3.1",
            }
            for n in range(count)
        ]
        connection.execute(
            sa.text(
                "INSERT INTO video_items (id, group_id, photo_id, prompt, inference_provider, "
                "status, priority, retry_count, progress, created_at, updated_at, due_at) VALUES "
                "(:id, :group_id, :photo_id, 'p', :provider, 'pending', 1, 0, 0, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ).bindparams(
                sa.bindparam("id", type_=sa.Uuid()),
                sa.bindparam("group_id", type_=sa.Uuid()),
                sa.bindparam("photo_id", type_=sa.Uuid()),
            ),
            rows,
        )


@pytest.mark.timeout(240)
def test_eight_claimers_take_every_item_exactly_once(engine, settings):
    seed_items(engine, ITEMS)
    claimed: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def claimer(name: str) -> None:
        try:
            start.wait()
            while True:
                with Session(engine, expire_on_commit=False) as session:
                    item = ops.claim_next(
                        session, pool=Pool.cloud, worker_id=name, settings=settings
                    )
                    session.commit()
                if item is None:
                    return
                with lock:
                    claimed.append(str(item.item_id))
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    counts = Counter(claimed)
    assert len(counts) == ITEMS and set(counts.values()) == {1}
    with Session(engine) as session:
        stats = ledger_counts(session)
    runway = [stats[p.value] for p in InferenceProvider if p.value.startswith("runway")]
    assert sum(s["processing"] for s in runway) == ITEMS
    assert sum(s["pending"] for s in runway) == 0
