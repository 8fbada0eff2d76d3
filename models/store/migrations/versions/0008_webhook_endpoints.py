"""Webhook endpoints that can be managed: a random secret per endpoint (stored encrypted), its
rotation's overlap, disable and enable, and the receiver's latest answers.

Endpoints registered before keep their derived secret (secret_encrypted NULL) until rotated.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("secret_encrypted", sa.Text, nullable=True))
        batch.add_column(sa.Column("previous_secret_encrypted", sa.Text, nullable=True))
        batch.add_column(
            sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("last_answers", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        for column in (
            "last_answers",
            "previous_secret_until",
            "previous_secret_encrypted",
            "secret_encrypted",
            "enabled",
        ):
            batch.drop_column(column)
