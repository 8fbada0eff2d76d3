"""What the metrics read besides the count ledger: the background loops' last passes
(`loop_beats`: the dispatcher, the reconciler, the webhook sender), failed attempts per provider
and failure class (`failure_tallies`) and a latency histogram per provider and measure
(`latency_buckets`), both kept by the writers.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_beats",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("took_seconds", sa.Float, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_loop_beats")),
    )
    op.create_table(
        "failure_tallies",
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("failure_class", sa.String(40), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("provider", "failure_class", name=op.f("pk_failure_tallies")),
    )
    op.create_table(
        "latency_buckets",
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("measure", sa.String(20), nullable=False),
        sa.Column("le", sa.String(20), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("sum_seconds", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("provider", "measure", "le", name=op.f("pk_latency_buckets")),
    )


def downgrade() -> None:
    op.drop_table("latency_buckets")
    op.drop_table("failure_tallies")
    op.drop_table("loop_beats")
