"""The seed's change (SEED.md §1): the inference_provider column, back-fill, worker index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PROVIDERS = "('wan_local', 'runway_gen4_turbo', 'runway_veo3.1')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TYPE inference_provider AS ENUM {PROVIDERS}")
        op.execute(
            "ALTER TABLE video_items ADD COLUMN inference_provider inference_provider "
            "DEFAULT 'runway_gen4_turbo'"
        )
    else:
        op.execute(
            "ALTER TABLE video_items ADD COLUMN inference_provider VARCHAR(17) "
            "DEFAULT 'runway_gen4_turbo' CONSTRAINT ck_video_items_inference_provider "
            f"CHECK (inference_provider IN {PROVIDERS})"
        )
    # Every row that exists before this revision was made by the Wan worker. The seed wrote
    # `WHERE created_at < '2025-01-06'` (its deployment date); at this point of the migration the
    # rows present are exactly the rows from before the feature, whatever the date.
    op.execute("UPDATE video_items SET inference_provider = 'wan_local'")
    op.execute(
        "CREATE INDEX idx_video_items_inference_provider ON video_items(inference_provider) "
        "WHERE status = 'pending'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX idx_video_items_inference_provider")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE video_items DROP COLUMN inference_provider")
        op.execute("DROP TYPE inference_provider")
    else:
        with op.batch_alter_table("video_items") as batch:
            batch.drop_constraint(op.f("ck_video_items_inference_provider"), type_="check")
            batch.drop_column("inference_provider")
