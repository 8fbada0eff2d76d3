"""Wan presets: each item records the preset, the GPU host and the GPU class that made its video;
GPU hosts report themselves (their GPUs, class and preset) in `gpu_hosts`; a group (and so its
items) may require a preset that keeps the model card's quality.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from reelroute.models.store.migrations.helpers import restore_sqlite_count_triggers

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("video_items", sa.Column("wan_preset", sa.String(40), nullable=True))
    op.add_column("video_items", sa.Column("gpu_host", sa.String(100), nullable=True))
    op.add_column("video_items", sa.Column("gpu_class", sa.String(100), nullable=True))
    for table in ("groups", "video_items"):  # a constant default: no rewrite of the table
        op.add_column(
            table,
            sa.Column("wan_full_quality", sa.Boolean, nullable=False, server_default=sa.false()),
        )
    op.create_table(
        "gpu_hosts",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("gpu_class", sa.String(100), nullable=False),
        sa.Column("preset", sa.String(40), nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("full_quality", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("loads", sa.Integer, nullable=False),
        sa.Column("videos", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_gpu_hosts")),
    )


def downgrade() -> None:
    op.drop_table("gpu_hosts")
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("wan_full_quality")
    with op.batch_alter_table("video_items") as batch:
        batch.drop_column("wan_full_quality")
        batch.drop_column("gpu_class")
        batch.drop_column("gpu_host")
        batch.drop_column("wan_preset")
    restore_sqlite_count_triggers()
