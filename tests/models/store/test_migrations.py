"""Migrations: the seed's upgrade path with its back-fill, round trips, and model agreement."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, select

from reelroute.models.assembly import load_settings, metadata
from reelroute.models.core.enums import InferenceProvider, Pool
from reelroute.models.core.tables import Group, Photo, VideoItem, utcnow
from reelroute.models.items.lifecycle import MadeBy, complete_item
from reelroute.models.items.queue import list_queue
from reelroute.models.items.review import escalate_item
from reelroute.models.store.db import make_engine
from reelroute.models.store.migrate import current_revision, downgrade, head_revision, upgrade
from tests.conftest import drop_pg_database, new_pg_database
from tests.models.helpers import add_items, claim_next_item, ledger_counts


def run(url: str, sql: str, **params) -> list[sa.Row]:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(sql), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def insert_seed_rows(url: str, statuses: list[str]) -> list[str]:
    """Rows as the seed system wrote them at revision 1 (uuids as the dialect stores them)."""
    engine = make_engine(url)
    ids = [uuid.uuid4() for _ in statuses]
    with engine.begin() as connection:
        group = uuid.uuid4()
        connection.execute(
            sa.text(
                "INSERT INTO groups (id, name, created_at) VALUES (:id, 'old', :now)"
            ).bindparams(
                sa.bindparam("id", type_=sa.Uuid()),
                sa.bindparam("now", type_=sa.DateTime(timezone=True)),
            ),
            {"id": group, "now": utcnow()},
        )
        for item_id, status in zip(ids, statuses, strict=True):
            connection.execute(
                sa.text(
                    "INSERT INTO video_items (id, group_id, prompt, frame_num, status, "
                    "retry_count, leased_until, worker_id, created_at, updated_at) "
                    "VALUES (:id, :group, 'old prompt', 121, :status, 0, :now, 'seed-worker', "
                    ":now, :now)"
                ).bindparams(
                    sa.bindparam("id", type_=sa.Uuid()),
                    sa.bindparam("group", type_=sa.Uuid()),
                    sa.bindparam("now", type_=sa.DateTime(timezone=True)),
                ),
                {"id": item_id, "group": group, "status": status, "now": utcnow()},
            )
    engine.dispose()
    return [str(i) for i in ids]


def test_revision_2_is_the_seed_change_with_its_back_fill(empty_url):
    upgrade(empty_url, "0001")
    insert_seed_rows(empty_url, ["pending", "completed", "failed"])
    upgrade(empty_url, "0002")
    assert {row[0] for row in run(empty_url, "SELECT inference_provider FROM video_items")} == {
        "wan_local"
    }
    # After the change, a row inserted without a provider gets the seed's default.
    run(
        empty_url,
        "INSERT INTO video_items (id, prompt, status, retry_count, created_at, "
        "updated_at) VALUES ('00000000000000000000000000000001', 'new', 'pending', 0, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        if empty_url.startswith("sqlite")
        else "INSERT INTO video_items (id, prompt, status, retry_count, created_at, updated_at) "
        "VALUES ('00000000-0000-0000-0000-000000000001', 'new', 'pending', 0, now(), now())",
    )
    providers = [
        row[0]
        for row in run(empty_url, "SELECT inference_provider FROM video_items WHERE prompt = 'new'")
    ]
    assert providers == ["runway_gen4_turbo"]
    engine = make_engine(empty_url)
    indexes = sa.inspect(engine).get_indexes("video_items")
    engine.dispose()
    assert "idx_video_items_inference_provider" in {index["name"] for index in indexes}


def test_upgrading_a_seed_database_keeps_its_rows_and_counts_them(empty_url):
    upgrade(empty_url, "0001")
    insert_seed_rows(empty_url, ["pending", "pending", "processing", "completed", "failed"])
    upgrade(empty_url)
    assert current_revision(empty_url) == head_revision()
    engine = make_engine(empty_url)
    with Session(engine) as session:
        stats = ledger_counts(session)
        wan = stats["wan_local"]
        assert (
            wan["total"],
            wan["pending"],
            wan["processing"],
            wan["completed"],
            wan["failed"],
        ) == (5, 2, 1, 1, 1)
        old = list_queue(session).items
        assert {item.frame_num for item in old} == {121}
        # The seed never cleared leases; now only processing items hold one.
        assert {item.status.value for item in old if item.leased_until} == {"processing"}
        assert {item.routed_by for item in old} == {None}
    engine.dispose()


def test_downgrade_and_upgrade_again(empty_url):
    upgrade(empty_url)
    downgrade(empty_url, "base")
    assert current_revision(empty_url) is None
    upgrade(empty_url, "0001")
    insert_seed_rows(empty_url, ["completed", "pending"])
    upgrade(empty_url)
    run(empty_url, "UPDATE video_items SET status = 'cancelled' WHERE status = 'pending'")
    downgrade(empty_url, "0001")
    # The seed has no 'cancelled': it became 'failed'; the rows themselves survive.
    assert sorted(row[0] for row in run(empty_url, "SELECT status FROM video_items")) == [
        "completed",
        "failed",
    ]
    upgrade(empty_url)
    engine = make_engine(empty_url)
    with Session(engine) as session:
        assert ledger_counts(session)["wan_local"]["total"] == 2
    engine.dispose()
    assert_models_match(empty_url)


def assert_models_match(url: str) -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_models_and_migrated_schema_agree(empty_url):
    upgrade(empty_url)
    assert_models_match(empty_url)


def test_postgres_enum_types_are_the_seeds(pg_server):
    url = new_pg_database(pg_server, "reelroute_enum")
    try:
        upgrade(url)
        rows = run(
            url,
            "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e "
            "ON e.enumtypid = t.oid ORDER BY t.typname, e.enumsortorder",
        )
        types: dict[str, list[str]] = {}
        for name, label in rows:
            types.setdefault(name, []).append(label)
        assert types == {
            # The seed's three values first, in its order; then the two models added since.
            "inference_provider": [
                "wan_local",
                "runway_gen4_turbo",
                "runway_veo3.1",
                "runway_gen4.5",
                "runway_veo3.1_fast",
            ],
            # The seed's five, with `review` (revision 13) where it falls in an item's life.
            "processing_status": [
                "pending",
                "processing",
                "review",
                "completed",
                "failed",
                "cancelled",
            ],
        }
        engine = make_engine(url)
        columns = {c["name"]: c for c in sa.inspect(engine).get_columns("video_items")}
        engine.dispose()
        assert "runway_gen4_turbo" in columns["inference_provider"]["default"]
        assert str(columns["created_at"]["type"]) == "TIMESTAMP"
        assert getattr(columns["created_at"]["type"], "timezone", None) is True
    finally:
        drop_pg_database(pg_server, url)


def test_sqlite_check_constraints_refuse_unknown_values(tmp_path):
    url = f"sqlite:///{tmp_path / 'check.db'}"
    upgrade(url)
    for column, value in (("inference_provider", "runway_veo3"), ("status", "done")):
        with pytest.raises(sa.exc.IntegrityError, match="CHECK constraint failed"):
            run(
                url,
                f"INSERT INTO video_items (id, prompt, {column}, created_at, updated_at, due_at) "
                f"VALUES ('1', 'p', '{value}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP)",
            )


def test_revision_4_merges_groups_of_one_name_into_the_oldest(empty_url):
    upgrade(empty_url, "0003")
    ids = {name: uuid.uuid4() for name in ("keeper", "twin", "other-twin", "winter")}
    photo = {name: uuid.uuid4() for name in ("keep-x", "twin-x", "twin-y")}
    item = {name: uuid.uuid4() for name in ("on-keep-x", "on-twin-x", "on-twin-y")}
    typed: dict[str, sa.types.TypeEngine[Any]] = {
        "id": sa.Uuid(),
        "group": sa.Uuid(),
        "photo": sa.Uuid(),
        "at": sa.DateTime(True),
    }
    engine = make_engine(empty_url)
    now = utcnow()

    def insert(connection, statement, **params):
        binds = [sa.bindparam(k, type_=t) for k, t in typed.items() if f":{k}" in statement]
        connection.execute(sa.text(statement).bindparams(*binds), params)

    with engine.begin() as connection:
        for n, (key, name) in enumerate(
            [("keeper", "Summer"), ("twin", "summer "), ("other-twin", "SUMMER"), ("winter", "W")]
        ):
            insert(
                connection,
                "INSERT INTO groups (id, name, priority, created_at) "
                "VALUES (:id, :name, 'normal', :at)",
                id=ids[key],
                name=name,
                at=now + timedelta(seconds=n),
            )
        for key, group, sha in (
            ("keep-x", "keeper", "x"),
            ("twin-x", "twin", "x"),
            ("twin-y", "twin", "y"),
        ):
            insert(
                connection,
                "INSERT INTO photos (id, group_id, storage_path, sha256, created_at) "
                "VALUES (:id, :group, :path, :sha, :at)",
                id=photo[key],
                group=ids[group],
                path=f"photos/{sha}",
                sha=sha,
                at=now,
            )
        for key, group, on in (
            ("on-keep-x", "keeper", "keep-x"),
            ("on-twin-x", "twin", "twin-x"),
            ("on-twin-y", "other-twin", "twin-y"),
        ):
            insert(
                connection,
                "INSERT INTO video_items (id, group_id, photo_id, prompt, status, "
                "inference_provider, retry_count, created_at, updated_at) "
                "VALUES (:id, :group, :photo, 'p', 'pending', 'wan_local', 0, :at, :at)",
                id=item[key],
                group=ids[group],
                photo=photo[on],
                at=now,
            )
    upgrade(empty_url)
    with Session(engine) as session:
        groups = {g.id: g for g in session.exec(select(Group)).all()}
        photos = {p.id: p for p in session.exec(select(Photo)).all()}
        items = {i.id: i for i in session.exec(select(VideoItem)).all()}
    engine.dispose()
    assert {g.name for g in groups.values()} == {"Summer", "W"}
    assert groups[ids["keeper"]].name_key == "summer"
    assert set(photos) == {photo["keep-x"], photo["twin-y"]}
    assert {p.group_id for p in photos.values()} == {ids["keeper"]}
    assert {i.group_id for i in items.values()} == {ids["keeper"]}
    assert items[item["on-twin-x"]].photo_id == photo["keep-x"]
    assert items[item["on-twin-y"]].photo_id == photo["twin-y"]
    assert ledger_counts_at(empty_url)["wan_local"]["total"] == 3
    assert_models_match(empty_url)


def ledger_counts_at(url: str) -> dict[str, dict[str, int]]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return ledger_counts(session)
    finally:
        engine.dispose()


def test_revision_14_counts_the_verdicts_so_far_as_the_writers_do(empty_url, tmp_path):
    """Items completed and videos redone before revision 14 are counted as kept and made
    again, per group, provider and preset: the same rows the writers keep from then on."""
    upgrade(empty_url)
    settings = load_settings(
        _env_file=None, database_url=empty_url, storage_url=str(tmp_path / "storage")
    )
    engine = make_engine(empty_url)
    with Session(engine, expire_on_commit=False) as session:
        for provider, pool in ((InferenceProvider.runway_gen4_turbo, Pool.cloud),) * 2 + (
            (InferenceProvider.wan_local, Pool.gpu),
        ):
            add_items(session, settings, 1, provider)
            claim = claim_next_item(session, settings, pool)
            complete_item(
                session,
                item_id=claim.item_id,
                attempt=claim.attempt,
                worker_id=claim.worker_id,
                output_path="x.mp4",
                made_by=MadeBy("fast@1", "h", "h200") if pool is Pool.gpu else None,
            )
        (wan,) = add_items(session, settings, 1, InferenceProvider.wan_local)
        claim = claim_next_item(session, settings, Pool.gpu)
        escalate_item(
            session, item_id=wan.id, attempt=claim.attempt, worker_id=claim.worker_id,
            provider=InferenceProvider.runway_gen4_turbo, reason="checks failed",
            cost_credits=0, quality={}, wan_preset="fast@1",
        )  # fmt: skip
        session.commit()
        counted = sorted(tuple(row) for row in run(empty_url, "SELECT * FROM verdict_tallies"))
    engine.dispose()
    assert len(counted) == 4 and sum(row[3] for row in counted) == 3
    downgrade(empty_url, "0013")
    upgrade(empty_url)
    assert sorted(tuple(row) for row in run(empty_url, "SELECT * FROM verdict_tallies")) == counted
