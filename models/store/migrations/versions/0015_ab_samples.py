"""Blind A/B samples: each group's shadow rate and shadow provider, an item's A/B sample
(`video_items.shadow_of`: the item it is compared with), the budget scope `shadow` that pays
for them, and the reviewers' picks (`ab_comparisons`).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from reelroute.models.store.migrations.helpers import allow_values, restore_sqlite_count_triggers

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SCOPES = ("provider", "group", "total", "shadow")


def upgrade() -> None:
    allow_values("budgets", "scope", "ck_budgets_budget_scope", SCOPES, replaces=True)
    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("shadow_rate", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("shadow_provider", sa.String(40), nullable=True))
    with op.batch_alter_table("video_items") as batch:
        batch.add_column(sa.Column("shadow_of", sa.Uuid, nullable=True))
    restore_sqlite_count_triggers()  # SQLite rebuilt video_items (and dropped them) above
    op.create_index(op.f("ix_video_items_shadow_of"), "video_items", ["shadow_of"])
    provider = sa.String(40)
    op.create_table(
        "ab_comparisons",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.Uuid, nullable=False),
        sa.Column("shadow_id", sa.Uuid, nullable=False),
        sa.Column("group_id", sa.Uuid, nullable=True),
        sa.Column("item_provider", provider, nullable=False),
        sa.Column("item_preset", sa.String(40), nullable=True),
        sa.Column("shadow_provider", provider, nullable=False),
        sa.Column("shadow_preset", sa.String(40), nullable=True),
        sa.Column("winner", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_comparisons")),
        sa.UniqueConstraint("shadow_id", name=op.f("uq_ab_comparisons_shadow_id")),
    )


def downgrade() -> None:
    op.drop_table("ab_comparisons")
    op.drop_index(op.f("ix_video_items_shadow_of"), table_name="video_items")
    with op.batch_alter_table("video_items") as batch:
        batch.drop_column("shadow_of")
    restore_sqlite_count_triggers()
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("shadow_provider")
        batch.drop_column("shadow_rate")
    op.execute("DELETE FROM budgets WHERE scope = 'shadow'")
    allow_values("budgets", "scope", "ck_budgets_budget_scope", SCOPES[:-1], replaces=True)
