"""A group may keep its photos as uploaded (`groups.keep_original_photos`), beside the normalised
copy every provider receives; the original's path on the photo (`photos.original_path`).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.add_column(
            sa.Column("keep_original_photos", sa.Boolean, nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("original_path", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("original_path")
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("keep_original_photos")
