"""Deadline routing: due dates, two more Runway models, budgets, Runway's limits, ETAs, moves.

- `inference_provider` gains `runway_gen4.5` and `runway_veo3.1_fast`.
- groups: `deadline_seconds`, `allowed_providers`.
- video_items: `due_at` (back-filled: created_at plus the default deadline of the group's
  priority, 4 h without a group), `rerouted_at`; `routed_by` may be `deadline` or `rerouted`.
- The claim indexes order by `due_at` (urgent work is due sooner) and name Runway's pool as
  "not Wan", so a new Runway model needs no new index; completions get an index per provider.
- New tables: budgets, budget_usage, budget_reservations, runway_limits, item_etas,
  item_reroutes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from reelroute.models.store.migrations.helpers import allow_providers, restore_sqlite_count_triggers

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PROVIDERS = (
    "wan_local",
    "runway_gen4_turbo",
    "runway_veo3.1",
    "runway_gen4.5",
    "runway_veo3.1_fast",
)
ADDED = ("runway_gen4.5", "runway_veo3.1_fast")
OLD_PROVIDERS = PROVIDERS[:3]
ROUTED_BY = ("explicit", "group_priority", "default", "fallback", "deadline", "rerouted")
DEADLINES = {"urgent": 20 * 60, "normal": 4 * 3600, "high_quality": 3 * 3600}
PENDING_GPU = "status = 'pending' AND inference_provider = 'wan_local'"
PENDING_CLOUD = "status = 'pending' AND inference_provider <> 'wan_local'"
PENDING_WAN_OLD = "status = 'pending' AND inference_provider = 'wan_local'"
PENDING_RUNWAY_OLD = (
    "status = 'pending' AND inference_provider IN ('runway_gen4_turbo', 'runway_veo3.1')"
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _provider_type(postgres: bool) -> sa.types.TypeEngine[Any]:
    if postgres:
        return postgresql.ENUM(*PROVIDERS, name="inference_provider", create_type=False)
    return sa.String(18)


def _ts(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _backfill_due_at(postgres: bool) -> None:
    if postgres:
        op.execute(
            "UPDATE video_items AS v SET due_at = v.created_at + make_interval(secs => "
            "CASE g.priority WHEN 'urgent' THEN 1200 WHEN 'high_quality' THEN 10800 "
            "ELSE 14400 END) FROM groups AS g WHERE g.id = v.group_id"
        )
        op.execute(
            "UPDATE video_items SET due_at = created_at + interval '4 hours' WHERE due_at IS NULL"
        )
        return
    # SQLite keeps timestamps as text: compute them in Python, in the format SQLAlchemy wrote.
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT v.id, v.created_at, g.priority FROM video_items AS v "
            "LEFT JOIN groups AS g ON g.id = v.group_id"
        ).columns(
            sa.column("id", sa.String()),
            sa.column("created_at", sa.DateTime(timezone=True)),
            sa.column("priority", sa.String()),
        )
    ).all()
    from datetime import timedelta

    update = sa.text("UPDATE video_items SET due_at = :due WHERE id = :id").bindparams(
        sa.bindparam("due", type_=sa.DateTime(timezone=True))
    )
    for item_id, created, priority in rows:
        seconds = DEADLINES.get(priority or "normal", DEADLINES["normal"])
        connection.execute(update, {"id": item_id, "due": created + timedelta(seconds=seconds)})


def _enum_check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(_in(column, values), name=op.f(name))


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    allow_providers(PROVIDERS, ADDED)
    provider_type = _provider_type(postgres)

    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("deadline_seconds", sa.Integer))
        batch.add_column(sa.Column("allowed_providers", sa.JSON))

    with op.batch_alter_table("video_items") as batch:
        batch.add_column(_ts("due_at"))
        batch.add_column(_ts("rerouted_at"))
        batch.drop_constraint(op.f("ck_video_items_routed_by"), type_="check")
        batch.create_check_constraint(op.f("ck_video_items_routed_by"), _in("routed_by", ROUTED_BY))
    _backfill_due_at(postgres)
    with op.batch_alter_table("video_items") as batch:
        batch.alter_column("due_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    restore_sqlite_count_triggers()  # SQLite rebuilt video_items (and dropped them) above

    op.drop_index("ix_video_items_claim_wan", table_name="video_items")
    op.drop_index("ix_video_items_claim_runway", table_name="video_items")
    for name, predicate in (
        ("ix_video_items_claim_gpu", PENDING_GPU),
        ("ix_video_items_claim_cloud", PENDING_CLOUD),
    ):
        op.create_index(
            name,
            "video_items",
            ["due_at", "created_at"],
            postgresql_where=sa.text(predicate),
            sqlite_where=sa.text(predicate),
        )
    op.create_index(
        "ix_video_items_completed_provider",
        "video_items",
        ["inference_provider", "finished_at"],
        postgresql_where=sa.text("status = 'completed'"),
        sqlite_where=sa.text("status = 'completed'"),
    )

    provider_checks = (
        [] if postgres else [_enum_check("provider", PROVIDERS, "ck_budgets_inference_provider")]
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("period", sa.String(20), nullable=False),
        sa.Column("provider", provider_type, nullable=True),
        sa.Column("group_id", sa.Uuid, nullable=True),
        sa.Column("cap_credits", sa.BigInteger, nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        sa.UniqueConstraint(
            "scope",
            "period",
            "provider",
            "group_id",
            name=op.f("uq_budgets_scope_period_provider_group_id"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_budgets_group_id_groups"), ondelete="CASCADE"
        ),
        _enum_check("scope", ("provider", "group", "total"), "ck_budgets_budget_scope"),
        _enum_check("period", ("day", "month"), "ck_budgets_budget_period"),
        *provider_checks,
    )
    op.create_table(
        "budget_usage",
        sa.Column("budget_id", sa.Uuid, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False),
        sa.Column("spent", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("budget_id", "period_start", name=op.f("pk_budget_usage")),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name=op.f("fk_budget_usage_budget_id_budgets"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("item_id", sa.Uuid, nullable=False),
        sa.Column("budget_id", sa.Uuid, nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("item_id", "budget_id", name=op.f("pk_budget_reservations")),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["video_items.id"],
            name=op.f("fk_budget_reservations_item_id_video_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name=op.f("fk_budget_reservations_budget_id_budgets"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "runway_limits",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("payload", sa.Text, nullable=False),
        _ts("fetched_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runway_limits")),
    )
    op.create_table(
        "item_etas",
        sa.Column("item_id", sa.Uuid, nullable=False),
        sa.Column("queue_position", sa.Integer, nullable=False),
        _ts("start_at", nullable=False),
        _ts("eta", nullable=False),
        _ts("eta_p90", nullable=False),
        sa.Column("late_risk", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_etas")),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["video_items.id"],
            name=op.f("fk_item_etas_item_id_video_items"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "item_reroutes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.Uuid, nullable=False),
        sa.Column("from_provider", sa.String(20), nullable=False),
        sa.Column("to_provider", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _ts("moved_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_reroutes")),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["video_items.id"],
            name=op.f("fk_item_reroutes_item_id_video_items"),
            ondelete="CASCADE",
        ),
        _enum_check("from_provider", PROVIDERS, "ck_item_reroutes_from_provider"),
        _enum_check("to_provider", PROVIDERS, "ck_item_reroutes_to_provider"),
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in (
        "item_reroutes",
        "item_etas",
        "runway_limits",
        "budget_reservations",
        "budget_usage",
        "budgets",
    ):
        op.drop_table(table)
    op.drop_index("ix_video_items_completed_provider", table_name="video_items")
    op.drop_index("ix_video_items_claim_cloud", table_name="video_items")
    op.drop_index("ix_video_items_claim_gpu", table_name="video_items")
    op.create_index(
        "ix_video_items_claim_wan",
        "video_items",
        ["priority", "created_at"],
        postgresql_where=sa.text(PENDING_WAN_OLD),
        sqlite_where=sa.text(PENDING_WAN_OLD),
    )
    op.create_index(
        "ix_video_items_claim_runway",
        "video_items",
        ["priority", "created_at"],
        postgresql_where=sa.text(PENDING_RUNWAY_OLD),
        sqlite_where=sa.text(PENDING_RUNWAY_OLD),
    )
    # Items of the new models have nowhere to go in the older schema: they become Gen-4 Turbo.
    for table, column in (
        ("video_items", "inference_provider"),
        ("item_status_counts", "inference_provider"),
        ("groups", "default_provider"),
    ):
        op.execute(
            f"UPDATE {table} SET {column} = 'runway_gen4_turbo' "
            f"WHERE {column} IN ('runway_gen4.5', 'runway_veo3.1_fast')"
        )
    op.execute(
        "UPDATE video_items SET routed_by = 'default' WHERE routed_by IN ('deadline', 'rerouted')"
    )
    with op.batch_alter_table("video_items") as batch:
        batch.drop_constraint(op.f("ck_video_items_routed_by"), type_="check")
        batch.create_check_constraint(
            op.f("ck_video_items_routed_by"), _in("routed_by", ROUTED_BY[:4])
        )
        batch.drop_column("rerouted_at")
        batch.drop_column("due_at")
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("allowed_providers")
        batch.drop_column("deadline_seconds")
    if not postgres:  # PostgreSQL cannot drop enum values; the extra ones stay unused
        allow_providers(OLD_PROVIDERS, ())
    restore_sqlite_count_triggers()
