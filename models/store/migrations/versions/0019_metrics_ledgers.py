"""/metrics from ledgers only: webhook deliveries per status kept by triggers
(`delivery_status_counts`), the planner's moves counted as they are made (`move_tallies`), its
count of waiting items predicted late per provider (`predicted_late`); each filled from the rows
already there.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# PostgreSQL: statement-level triggers over the transition tables (one upsert per status a
# statement touched); SQLite: row-level ones.
PG_DELIVERY_COUNTS = """
CREATE FUNCTION webhook_deliveries_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO delivery_status_counts (status, deliveries)
        SELECT status, -count(*) FROM old_rows GROUP BY status
        ON CONFLICT (status) DO UPDATE
        SET deliveries = delivery_status_counts.deliveries + EXCLUDED.deliveries;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO delivery_status_counts (status, deliveries)
        SELECT status, count(*) FROM new_rows GROUP BY status
        ON CONFLICT (status) DO UPDATE
        SET deliveries = delivery_status_counts.deliveries + EXCLUDED.deliveries;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER webhook_deliveries_count_inserted AFTER INSERT ON webhook_deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_deliveries_count();
CREATE TRIGGER webhook_deliveries_count_updated AFTER UPDATE ON webhook_deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_deliveries_count();
CREATE TRIGGER webhook_deliveries_count_deleted AFTER DELETE ON webhook_deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_deliveries_count();
"""

UPSERT = """
        INSERT INTO delivery_status_counts (status, deliveries) VALUES ({row}.status, {sign}1)
        ON CONFLICT (status) DO UPDATE
        SET deliveries = delivery_status_counts.deliveries + excluded.deliveries;"""

SQLITE_DELIVERY_COUNTS = (
    "CREATE TRIGGER webhook_deliveries_count_inserted AFTER INSERT ON webhook_deliveries BEGIN"
    + UPSERT.format(row="NEW", sign="")
    + "\nEND",
    "CREATE TRIGGER webhook_deliveries_count_updated AFTER UPDATE OF status ON webhook_deliveries"
    " WHEN OLD.status IS NOT NEW.status BEGIN"
    + UPSERT.format(row="OLD", sign="-")
    + UPSERT.format(row="NEW", sign="")
    + "\nEND",
    "CREATE TRIGGER webhook_deliveries_count_deleted AFTER DELETE ON webhook_deliveries BEGIN"
    + UPSERT.format(row="OLD", sign="-")
    + "\nEND",
)


def upgrade() -> None:
    op.create_table(
        "delivery_status_counts",
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("deliveries", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("status", name=op.f("pk_delivery_status_counts")),
    )
    op.create_table(
        "move_tallies",
        sa.Column("from_provider", sa.String(32), nullable=False),
        sa.Column("to_provider", sa.String(32), nullable=False),
        sa.Column("moves", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("from_provider", "to_provider", name=op.f("pk_move_tallies")),
    )
    op.create_table(
        "predicted_late",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_predicted_late")),
    )
    op.execute(
        "INSERT INTO delivery_status_counts (status, deliveries) "
        "SELECT status, count(*) FROM webhook_deliveries GROUP BY status"
    )
    op.execute(
        "INSERT INTO move_tallies (from_provider, to_provider, moves) "
        "SELECT CAST(from_provider AS VARCHAR(32)), CAST(to_provider AS VARCHAR(32)), count(*) "
        "FROM item_reroutes GROUP BY from_provider, to_provider"
    )
    op.execute(
        "INSERT INTO predicted_late (provider, items, updated_at) "
        "SELECT CAST(v.inference_provider AS VARCHAR(32)), count(*), CURRENT_TIMESTAMP "
        "FROM item_etas AS e JOIN video_items AS v ON v.id = e.item_id "
        "WHERE e.late_risk AND v.status = 'pending' GROUP BY v.inference_provider"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_DELIVERY_COUNTS)
    else:
        for statement in SQLITE_DELIVERY_COUNTS:
            op.execute(statement)
    op.create_index("ix_item_reroutes_moved_at", "item_reroutes", ["moved_at"])


def downgrade() -> None:
    op.drop_index("ix_item_reroutes_moved_at", table_name="item_reroutes")
    for event in ("inserted", "updated", "deleted"):
        op.execute(
            f"DROP TRIGGER IF EXISTS webhook_deliveries_count_{event} ON webhook_deliveries"
            if op.get_bind().dialect.name == "postgresql"
            else f"DROP TRIGGER IF EXISTS webhook_deliveries_count_{event}"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS webhook_deliveries_count()")
    op.drop_table("predicted_late")
    op.drop_table("move_tallies")
    op.drop_table("delivery_status_counts")
