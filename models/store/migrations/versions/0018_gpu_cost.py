"""What a video really costs: each Wan item's GPU seconds and what they cost
(`video_items.gpu_seconds`, `gpu_dollars`), the tallies the metrics read per GPU class
(`gpu_tallies`), the budget scope `gpu` that caps GPU spend, and the planner's latest count of
the GPU slots the waiting Wan work wants (`gpu_demand`, one row).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from reelroute.models.store.migrations.helpers import allow_values, restore_sqlite_count_triggers

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SCOPES = ("provider", "group", "total", "shadow", "gpu")


def upgrade() -> None:
    allow_values("budgets", "scope", "ck_budgets_budget_scope", SCOPES, replaces=True)
    with op.batch_alter_table("video_items") as batch:
        batch.add_column(sa.Column("gpu_seconds", sa.Float, nullable=True))
        batch.add_column(sa.Column("gpu_dollars", sa.Float, nullable=True))
    restore_sqlite_count_triggers()  # SQLite rebuilt video_items (and dropped them) above
    op.create_table(
        "gpu_tallies",
        sa.Column("gpu_class", sa.String(100), nullable=False),
        sa.Column("videos", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("dollars", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("gpu_class", name=op.f("pk_gpu_tallies")),
    )
    op.create_table(
        "gpu_demand",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("hosts", sa.Integer, nullable=False),
        sa.Column("waiting", sa.Integer, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_demand")),
    )


def downgrade() -> None:
    op.drop_table("gpu_demand")
    op.drop_table("gpu_tallies")
    with op.batch_alter_table("video_items") as batch:
        batch.drop_column("gpu_dollars")
        batch.drop_column("gpu_seconds")
    restore_sqlite_count_triggers()
    op.execute("DELETE FROM budgets WHERE scope = 'gpu'")
    allow_values("budgets", "scope", "ck_budgets_budget_scope", SCOPES[:-1], replaces=True)
