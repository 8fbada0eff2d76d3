"""The led roles' members (`loop_members`): which process leads the dispatcher and the webhook
sender, and which stand by (models.health.leadership); webhook delivery attempts by outcome
(`delivery_tallies`, models.store.tallies), counted from here on.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_members",
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("leading", sa.Boolean, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("role", "holder", name=op.f("pk_loop_members")),
    )
    op.create_table(
        "delivery_tallies",
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("outcome", name=op.f("pk_delivery_tallies")),
    )


def downgrade() -> None:
    op.drop_table("delivery_tallies")
    op.drop_table("loop_members")
