"""The seed system's schema before provider selection: groups, photos, video_items.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEED_STATUSES = ("pending", "processing", "completed", "failed")


def _timestamp(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # PostgreSQL: a native enum type; SQLite: a VARCHAR with a named CHECK constraint.
    status = (
        sa.String(10)
        if sqlite
        else postgresql.ENUM(*SEED_STATUSES, name="processing_status", create_type=False)
    )
    status_check = [
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')",
            name=op.f("ck_video_items_processing_status"),
        )
    ]
    if not sqlite:
        postgresql.ENUM(*SEED_STATUSES, name="processing_status").create(op.get_bind())
    op.create_table(
        "groups",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_groups"),
    )
    op.create_table(
        "photos",
        sa.Column("id", sa.Uuid),
        sa.Column("group_id", sa.Uuid, nullable=True),
        sa.Column("storage_path", sa.String(500), nullable=False),
        sa.Column("generated_prompt", sa.Text),
        _timestamp("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_photos"),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], name="fk_photos_group_id_groups"),
    )
    op.create_table(
        "video_items",
        sa.Column("id", sa.Uuid),
        sa.Column("group_id", sa.Uuid, nullable=True),
        sa.Column("photo_id", sa.Uuid, nullable=True),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("frame_num", sa.Integer),
        sa.Column("status", status, nullable=False, server_default="pending"),
        sa.Column("retry_count", sa.Integer, nullable=False, server_default="0"),
        _timestamp("leased_until"),
        sa.Column("worker_id", sa.String(200)),
        _timestamp("created_at", nullable=False),
        _timestamp("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_video_items"),
        sa.ForeignKeyConstraint(["group_id"], ["groups.id"], name="fk_video_items_group_id_groups"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], name="fk_video_items_photo_id_photos"),
        *(status_check if sqlite else []),
    )


def downgrade() -> None:
    op.drop_table("video_items")
    op.drop_table("photos")
    op.drop_table("groups")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE processing_status")
