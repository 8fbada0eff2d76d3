"""Videos kept and made again per group, provider and Wan preset (`verdict_tallies`,
models.store.tallies), from which routing learns each option's acceptance; filled here from the
completed items and the redone videos so far.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The key is the group's id as 32 hex digits (models.store.tallies spells it so): SQLite stores
# a Uuid column that way, PostgreSQL's uuid is spelled with dashes.
BACKFILL = """
INSERT INTO verdict_tallies (group_key, provider, wan_preset, accepted, rejected)
SELECT group_key, provider, wan_preset, SUM(accepted), SUM(rejected) FROM (
    SELECT COALESCE({group_id}, '') AS group_key, {provider} AS provider,
           COALESCE(wan_preset, '') AS wan_preset, 1 AS accepted, 0 AS rejected
    FROM video_items WHERE status = 'completed'
    UNION ALL
    SELECT COALESCE({group_id}, ''), provider, COALESCE(wan_preset, ''), 0, 1
    FROM item_redos
) AS verdicts
GROUP BY group_key, provider, wan_preset
"""


def upgrade() -> None:
    op.create_table(
        "verdict_tallies",
        sa.Column("group_key", sa.String(36), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("wan_preset", sa.String(40), nullable=False),
        sa.Column("accepted", sa.BigInteger, nullable=False),
        sa.Column("rejected", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "group_key", "provider", "wan_preset", name=op.f("pk_verdict_tallies")
        ),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(
        BACKFILL.format(
            group_id="replace(group_id::text, '-', '')" if postgres else "group_id",
            provider="inference_provider::text" if postgres else "inference_provider",
        )
    )


def downgrade() -> None:
    op.drop_table("verdict_tallies")
