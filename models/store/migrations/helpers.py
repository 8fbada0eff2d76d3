"""What several migrations do: let a column take the providers known at a revision; put back
the count ledger's triggers after SQLite rebuilt `video_items`."""

from __future__ import annotations

from alembic import op

# Every column of the inference_provider type, and the name of its CHECK constraint on SQLite.
PROVIDER_COLUMNS = (
    ("video_items", "inference_provider", "ck_video_items_inference_provider"),
    ("groups", "default_provider", "ck_groups_inference_provider"),
    ("item_status_counts", "inference_provider", "ck_item_status_counts_inference_provider"),
)


def allow_providers(providers: tuple[str, ...], added: tuple[str, ...]) -> None:
    """Let every provider column take `providers` (all values known at this revision), of which
    `added` are new: on PostgreSQL the values join the `inference_provider` type; on SQLite the
    CHECK constraints are rebuilt."""
    if op.get_bind().dialect.name == "postgresql":
        # A new enum value cannot be used in the transaction that adds it: commit it first.
        with op.get_context().autocommit_block():
            for value in added:
                op.execute(f"ALTER TYPE inference_provider ADD VALUE IF NOT EXISTS '{value}'")
        return
    import sqlalchemy as sa

    values = ", ".join(f"'{value}'" for value in providers)
    width = max(len(value) for value in providers)  # SQLite's VARCHAR as long as the longest
    for table, column, check in PROVIDER_COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(check), type_="check")
            batch.alter_column(column, existing_type=sa.String(), type_=sa.String(width))
            batch.create_check_constraint(op.f(check), f"{column} IN ({values})")


# The count ledger's triggers on SQLite, as revision 0003 made them. Alembic's batch mode rebuilds
# a SQLite table by copying it, which drops its triggers: put them back after it.
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


def restore_sqlite_count_triggers() -> None:
    """Recreate the count triggers of `video_items` on SQLite (a no-op on PostgreSQL, where
    ALTER TABLE keeps them)."""
    if op.get_bind().dialect.name == "postgresql":
        return
    for event in ("inserted", "updated", "deleted"):
        op.execute(f"DROP TRIGGER IF EXISTS video_items_count_{event}")
    for statement in SQLITE_COUNT_TRIGGERS:
        op.execute(statement)


def allow_values(
    table: str, column: str, check: str, values: tuple[str, ...], *, replaces: bool
) -> None:
    """Let `column` of `table` take only `values` (a CHECK constraint named `check`, which
    `replaces` an older one of that name). Rebuilds the table on SQLite."""
    listed = ", ".join(f"'{value}'" for value in values)
    with op.batch_alter_table(table) as batch:
        if replaces:
            batch.drop_constraint(op.f(check), type_="check")
        batch.create_check_constraint(op.f(check), f"{column} IN ({listed})")
