"""Group names unique per installation, ignoring case and spacing (`groups.name_key`).

Existing duplicates are merged: the oldest group of a name keeps it, and its twins' photos and
items move to it. A twin's photo whose image the keeper already has (same sha256) is dropped, and
its items point at the keeper's photo. Downgrading keeps the merge (it cannot be undone).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The same rule as models.items.groups.name_key, frozen here as it was when this revision was
# written.


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


ID = sa.Uuid()


def _merge(connection: sa.Connection, keeper: Any, twin: Any) -> None:
    photos = connection.execute(
        sa.text("SELECT id, sha256 FROM photos WHERE group_id = :group")
        .bindparams(sa.bindparam("group", type_=ID))
        .columns(sa.column("id", ID), sa.column("sha256", sa.String())),
        {"group": twin},
    ).all()
    for photo_id, sha256 in photos:
        same = None
        if sha256 is not None:
            same = connection.execute(
                sa.text("SELECT id FROM photos WHERE group_id = :group AND sha256 = :sha")
                .bindparams(sa.bindparam("group", type_=ID))
                .columns(sa.column("id", ID)),
                {"group": keeper, "sha": sha256},
            ).scalar()
        if same is not None:
            connection.execute(
                sa.text(
                    "UPDATE video_items SET photo_id = :keep WHERE photo_id = :drop"
                ).bindparams(sa.bindparam("keep", type_=ID), sa.bindparam("drop", type_=ID)),
                {"keep": same, "drop": photo_id},
            )
            connection.execute(
                sa.text("DELETE FROM photos WHERE id = :drop").bindparams(
                    sa.bindparam("drop", type_=ID)
                ),
                {"drop": photo_id},
            )
        else:
            connection.execute(
                sa.text("UPDATE photos SET group_id = :keep WHERE id = :photo").bindparams(
                    sa.bindparam("keep", type_=ID), sa.bindparam("photo", type_=ID)
                ),
                {"keep": keeper, "photo": photo_id},
            )
    for statement in (
        "UPDATE video_items SET group_id = :keep WHERE group_id = :drop",
        "DELETE FROM groups WHERE id = :drop",
    ):
        connection.execute(
            sa.text(statement).bindparams(
                *[sa.bindparam(n, type_=ID) for n in ("keep", "drop") if f":{n}" in statement]
            ),
            {"keep": keeper, "drop": twin} if ":keep" in statement else {"drop": twin},
        )


def upgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("name_key", sa.String(200), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, name FROM groups ORDER BY created_at, id").columns(
            sa.column("id", ID), sa.column("name", sa.String())
        )
    ).all()
    by_key: dict[str, list[Any]] = defaultdict(list)
    for group_id, name in rows:
        by_key[_key(name)].append(group_id)
    for key, ids in by_key.items():
        keeper, *twins = ids
        for twin in twins:
            _merge(connection, keeper, twin)
        connection.execute(
            sa.text("UPDATE groups SET name_key = :key WHERE id = :id").bindparams(
                sa.bindparam("id", type_=ID)
            ),
            {"key": key, "id": keeper},
        )
    with op.batch_alter_table("groups") as batch:
        batch.alter_column("name_key", existing_type=sa.String(200), nullable=False)
        batch.create_unique_constraint(op.f("uq_groups_name_key"), ["name_key"])


def downgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.drop_constraint(op.f("uq_groups_name_key"), type_="unique")
        batch.drop_column("name_key")
