"""reelroute's columns: routing, leases, fencing, outputs, costs; cancelled; indexes; counts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PROVIDERS = ("wan_local", "runway_gen4_turbo", "runway_veo3.1")
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
FINISHED = "status IN ('completed', 'failed', 'cancelled')"
PENDING_WAN = "status = 'pending' AND inference_provider = 'wan_local'"
PENDING_RUNWAY = (
    "status = 'pending' AND inference_provider IN ('runway_gen4_turbo', 'runway_veo3.1')"
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _ts(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


# The count ledger (see models.core.tables.ItemStatusCount). On PostgreSQL, inserts and deletes use
# statement-level triggers with transition tables: a bulk insert of a million items writes one
# ledger row per (provider, status). Updates, which come one item at a time (claims, completions),
# use a row-level trigger whose WHEN clause skips updates that change no count (lease renewals)
# without calling the function: about 10% more claims per second than a statement-level one
# (pgbench, 8 clients). SQLite has row-level triggers only.
PG_COUNT_FUNCTIONS = """
CREATE FUNCTION video_items_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO item_status_counts (inference_provider, status, items, credits)
    SELECT inference_provider, status, count(*), coalesce(sum(cost_credits), 0)
    FROM new_rows GROUP BY inference_provider, status;
    RETURN NULL;
END $$;

CREATE FUNCTION video_items_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO item_status_counts (inference_provider, status, items, credits)
    VALUES (OLD.inference_provider, OLD.status, -1, -coalesce(OLD.cost_credits, 0)),
           (NEW.inference_provider, NEW.status, 1, coalesce(NEW.cost_credits, 0));
    RETURN NULL;
END $$;

CREATE FUNCTION video_items_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO item_status_counts (inference_provider, status, items, credits)
    SELECT inference_provider, status, -count(*), -coalesce(sum(cost_credits), 0)
    FROM old_rows GROUP BY inference_provider, status;
    RETURN NULL;
END $$;

CREATE TRIGGER video_items_count_inserted AFTER INSERT ON video_items
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION video_items_count_inserted();
CREATE TRIGGER video_items_count_updated
    AFTER UPDATE OF status, inference_provider, cost_credits ON video_items
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.inference_provider IS DISTINCT FROM NEW.inference_provider
          OR OLD.cost_credits IS DISTINCT FROM NEW.cost_credits)
    EXECUTE FUNCTION video_items_count_updated();
CREATE TRIGGER video_items_count_deleted AFTER DELETE ON video_items
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION video_items_count_deleted();
"""

SQLITE_COUNT_TRIGGERS = (
    """
    CREATE TRIGGER video_items_count_inserted AFTER INSERT ON video_items BEGIN
        INSERT INTO item_status_counts (inference_provider, status, items, credits)
        VALUES (NEW.inference_provider, NEW.status, 1, coalesce(NEW.cost_credits, 0));
    END
    """,
    """
    CREATE TRIGGER video_items_count_updated
    AFTER UPDATE OF status, inference_provider, cost_credits ON video_items
    WHEN OLD.status IS NOT NEW.status
        OR OLD.inference_provider IS NOT NEW.inference_provider
        OR OLD.cost_credits IS NOT NEW.cost_credits
    BEGIN
        INSERT INTO item_status_counts (inference_provider, status, items, credits)
        VALUES (OLD.inference_provider, OLD.status, -1, -coalesce(OLD.cost_credits, 0)),
               (NEW.inference_provider, NEW.status, 1, coalesce(NEW.cost_credits, 0));
    END
    """,
    """
    CREATE TRIGGER video_items_count_deleted AFTER DELETE ON video_items BEGIN
        INSERT INTO item_status_counts (inference_provider, status, items, credits)
        VALUES (OLD.inference_provider, OLD.status, -1, -coalesce(OLD.cost_credits, 0));
    END
    """,
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        provider_type: sa.types.TypeEngine[Any] = postgresql.ENUM(
            *PROVIDERS, name="inference_provider", create_type=False
        )
        status_type: sa.types.TypeEngine[Any] = postgresql.ENUM(
            *STATUSES, name="processing_status", create_type=False
        )
        # A new enum value cannot be used in the transaction that adds it: commit it first.
        with op.get_context().autocommit_block():
            op.execute("ALTER TYPE processing_status ADD VALUE IF NOT EXISTS 'cancelled'")
    else:
        provider_type = sa.String(17)
        status_type = sa.String(10)

    with op.batch_alter_table("groups") as batch:
        batch.add_column(
            sa.Column("priority", sa.String(20), nullable=False, server_default="normal")
        )
        batch.add_column(sa.Column("default_provider", provider_type, nullable=True))
        batch.create_check_constraint(
            op.f("ck_groups_group_priority"), "priority IN ('normal', 'urgent', 'high_quality')"
        )
        if not postgres:
            batch.create_check_constraint(
                op.f("ck_groups_inference_provider"), _in("default_provider", PROVIDERS)
            )

    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("original_filename", sa.String(255)))
        batch.add_column(sa.Column("content_type", sa.String(50)))
        batch.add_column(sa.Column("width", sa.Integer))
        batch.add_column(sa.Column("height", sa.Integer))
        batch.add_column(sa.Column("bytes", sa.BigInteger))
        batch.add_column(sa.Column("sha256", sa.String(64)))
        batch.create_unique_constraint(op.f("uq_photos_group_id_sha256"), ["group_id", "sha256"])

    op.execute(
        "UPDATE video_items SET inference_provider = 'runway_gen4_turbo' "
        "WHERE inference_provider IS NULL"
    )
    # The seed left leases on finished items; a lease now means "being processed".
    op.execute("UPDATE video_items SET leased_until = NULL WHERE status <> 'processing'")
    op.drop_index("idx_video_items_inference_provider", table_name="video_items")
    with op.batch_alter_table("video_items") as batch:
        batch.alter_column("inference_provider", existing_type=provider_type, nullable=False)
        if not postgres:
            batch.drop_constraint(op.f("ck_video_items_processing_status"), type_="check")
            batch.create_check_constraint(
                op.f("ck_video_items_processing_status"), _in("status", STATUSES)
            )
        batch.add_column(sa.Column("duration_s", sa.Integer))
        batch.add_column(sa.Column("ratio", sa.String(20)))
        batch.add_column(sa.Column("seed", sa.BigInteger))
        batch.add_column(sa.Column("priority", sa.SmallInteger, nullable=False, server_default="1"))
        batch.add_column(sa.Column("flow_run_id", sa.Uuid))
        batch.add_column(sa.Column("provider_task_id", sa.String(100)))
        batch.add_column(sa.Column("progress", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("output_path", sa.String(500)))
        batch.add_column(sa.Column("error", sa.Text))
        batch.add_column(sa.Column("failure_code", sa.String(100)))
        batch.add_column(sa.Column("cost_credits", sa.Integer))
        batch.add_column(sa.Column("routed_by", sa.String(20)))
        batch.add_column(sa.Column("route_reason", sa.Text))
        batch.add_column(_ts("started_at"))
        batch.add_column(_ts("finished_at"))
        batch.add_column(_ts("next_attempt_at"))
        batch.create_check_constraint(
            op.f("ck_video_items_routed_by"),
            "routed_by IN ('explicit', 'group_priority', 'default', 'fallback')",
        )
        batch.create_check_constraint(
            op.f("ck_video_items_progress"), "progress >= 0 AND progress <= 1"
        )
        batch.create_check_constraint(op.f("ck_video_items_retry_count"), "retry_count >= 0")
        batch.create_check_constraint(
            op.f("ck_video_items_lease"), "leased_until IS NULL OR status = 'processing'"
        )

    op.create_index(
        "ix_video_items_claim_wan",
        "video_items",
        ["priority", "created_at"],
        postgresql_where=sa.text(PENDING_WAN),
        sqlite_where=sa.text(PENDING_WAN),
    )
    op.create_index(
        "ix_video_items_claim_runway",
        "video_items",
        ["priority", "created_at"],
        postgresql_where=sa.text(PENDING_RUNWAY),
        sqlite_where=sa.text(PENDING_RUNWAY),
    )
    op.create_index(
        "ix_video_items_leases",
        "video_items",
        ["leased_until"],
        postgresql_where=sa.text("leased_until IS NOT NULL"),
        sqlite_where=sa.text("leased_until IS NOT NULL"),
    )
    op.create_index("ix_video_items_created", "video_items", ["created_at", "id"])
    op.create_index(
        "ix_video_items_finished_created",
        "video_items",
        ["status", "created_at", "id"],
        postgresql_where=sa.text(FINISHED),
        sqlite_where=sa.text(FINISHED),
    )
    op.create_index("ix_video_items_group_created", "video_items", ["group_id", "created_at", "id"])

    op.create_table(
        "item_status_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True),
        sa.Column("inference_provider", provider_type, nullable=False),
        sa.Column("status", status_type, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_item_status_counts"),
        *(
            []
            if postgres
            else [
                sa.CheckConstraint(
                    _in("inference_provider", PROVIDERS),
                    name=op.f("ck_item_status_counts_inference_provider"),
                ),
                sa.CheckConstraint(
                    _in("status", STATUSES), name=op.f("ck_item_status_counts_processing_status")
                ),
            ]
        ),
    )
    op.execute(
        "INSERT INTO item_status_counts (inference_provider, status, items, credits) "
        "SELECT inference_provider, status, count(*), 0 FROM video_items "
        "GROUP BY inference_provider, status"
    )
    if postgres:
        op.execute(PG_COUNT_FUNCTIONS)
    else:
        for statement in SQLITE_COUNT_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for event in ("inserted", "updated", "deleted"):
        op.execute(
            f"DROP TRIGGER video_items_count_{event}" + (" ON video_items" if postgres else "")
        )
        if postgres:
            op.execute(f"DROP FUNCTION video_items_count_{event}()")
    op.drop_table("item_status_counts")
    for name in (
        "ix_video_items_group_created",
        "ix_video_items_finished_created",
        "ix_video_items_created",
        "ix_video_items_leases",
        "ix_video_items_claim_runway",
        "ix_video_items_claim_wan",
    ):
        op.drop_index(name, table_name="video_items")

    # The seed knows no 'cancelled': a cancelled item becomes a failed one.
    op.execute("UPDATE video_items SET status = 'failed' WHERE status = 'cancelled'")
    provider_type = (
        postgresql.ENUM(*PROVIDERS, name="inference_provider", create_type=False)
        if postgres
        else sa.String(17)
    )
    with op.batch_alter_table("video_items") as batch:
        for check in ("routed_by", "progress", "retry_count", "lease"):
            batch.drop_constraint(op.f(f"ck_video_items_{check}"), type_="check")
        if not postgres:
            batch.drop_constraint(op.f("ck_video_items_processing_status"), type_="check")
            batch.create_check_constraint(
                op.f("ck_video_items_processing_status"),
                "status IN ('pending', 'processing', 'completed', 'failed')",
            )
        for column in (
            "next_attempt_at",
            "finished_at",
            "started_at",
            "route_reason",
            "routed_by",
            "cost_credits",
            "failure_code",
            "error",
            "output_path",
            "progress",
            "provider_task_id",
            "flow_run_id",
            "priority",
            "seed",
            "ratio",
            "duration_s",
        ):
            batch.drop_column(column)
        batch.alter_column("inference_provider", existing_type=provider_type, nullable=True)
    if postgres:
        # PostgreSQL cannot drop an enum value: rebuild the type without 'cancelled'.
        op.execute("ALTER TYPE processing_status RENAME TO processing_status_old")
        op.execute(
            "CREATE TYPE processing_status AS ENUM ('pending', 'processing', 'completed', 'failed')"
        )
        op.execute("ALTER TABLE video_items ALTER COLUMN status DROP DEFAULT")
        op.execute(
            "ALTER TABLE video_items ALTER COLUMN status TYPE processing_status "
            "USING status::text::processing_status"
        )
        op.execute("ALTER TABLE video_items ALTER COLUMN status SET DEFAULT 'pending'")
        op.execute("DROP TYPE processing_status_old")
    op.execute(
        "CREATE INDEX idx_video_items_inference_provider ON video_items(inference_provider) "
        "WHERE status = 'pending'"
    )

    with op.batch_alter_table("photos") as batch:
        batch.drop_constraint(op.f("uq_photos_group_id_sha256"), type_="unique")
        for column in ("sha256", "bytes", "height", "width", "content_type", "original_filename"):
            batch.drop_column(column)
    with op.batch_alter_table("groups") as batch:
        batch.drop_constraint(op.f("ck_groups_group_priority"), type_="check")
        if not postgres:
            batch.drop_constraint(op.f("ck_groups_inference_provider"), type_="check")
        batch.drop_column("default_provider")
        batch.drop_column("priority")
