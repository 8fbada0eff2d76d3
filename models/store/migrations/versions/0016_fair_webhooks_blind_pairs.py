"""Each endpoint's due deliveries in order (`ix_webhook_deliveries_endpoint_due`: the sender takes
a few of each endpoint, so no backlog hides another's), and blind A/B pairs of their own
(`ab_pairs`: a random id that names no item, and a random draw of which video is A), filled for
the samples made so far.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import secrets
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_endpoint_due",
        "webhook_deliveries",
        ["endpoint_id", "next_attempt_at", "id"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    pairs = op.create_table(
        "ab_pairs",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("shadow_id", sa.Uuid, nullable=False),
        sa.Column("item_first", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ab_pairs")),
        sa.UniqueConstraint("shadow_id", name=op.f("uq_ab_pairs_shadow_id")),
    )
    samples = op.get_bind().execute(
        sa.text("SELECT id, created_at FROM video_items WHERE shadow_of IS NOT NULL")
    )
    rows = [
        {
            "id": uuid.uuid4(),
            "shadow_id": shadow_id if isinstance(shadow_id, uuid.UUID) else uuid.UUID(shadow_id),
            "item_first": secrets.randbelow(2) == 0,
            "created_at": created_at,
        }
        for shadow_id, created_at in samples
    ]
    if rows:
        op.bulk_insert(pairs, rows)


def downgrade() -> None:
    op.drop_table("ab_pairs")
    op.drop_index("ix_webhook_deliveries_endpoint_due", table_name="webhook_deliveries")
