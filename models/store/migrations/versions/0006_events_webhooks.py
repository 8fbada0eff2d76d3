"""Programs that call us: idempotency keys, the item-event outbox, webhook endpoints and
deliveries.

- groups and video_items: `webhook_endpoint_id` (a registered endpoint of theirs);
  video_items: `progress_event_at`.
- New tables: idempotency_keys, webhook_endpoints, item_events, webhook_deliveries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from reelroute.models.store.migrations.helpers import restore_sqlite_count_triggers

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("groups", sa.Column("webhook_endpoint_id", sa.Uuid, nullable=True))
    op.add_column("video_items", sa.Column("webhook_endpoint_id", sa.Uuid, nullable=True))
    op.add_column("video_items", _ts("progress_event_at"))
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response", sa.Text, nullable=True),
        _ts("created_at", nullable=False),
        _ts("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.JSON, nullable=True),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("url", name=op.f("uq_webhook_endpoints_url")),
    )
    op.create_table(
        "item_events",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("item_id", sa.Uuid, nullable=False),
        sa.Column("group_id", sa.Uuid, nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("progress", sa.Float, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("cost_credits", sa.Integer, nullable=True),
        _ts("created_at", nullable=False),
        sa.Column("fanned_out", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_events")),
    )
    op.create_index(
        "ix_item_events_not_fanned_out",
        "item_events",
        ["id"],
        postgresql_where=sa.text("NOT fanned_out"),
        sqlite_where=sa.text("NOT fanned_out"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("event_id", BIGINT_ID, nullable=False),
        sa.Column("endpoint_id", sa.Uuid, nullable=False),
        sa.Column("item_id", sa.Uuid, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ts("first_attempt_at"),
        _ts("next_attempt_at", nullable=False),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        _ts("delivered_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["item_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_item_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_order",
        "webhook_deliveries",
        ["endpoint_id", "item_id", "event_id"],
    )
    op.create_index("ix_webhook_deliveries_status", "webhook_deliveries", ["status", "id"])


def downgrade() -> None:
    for table in ("webhook_deliveries", "item_events", "webhook_endpoints", "idempotency_keys"):
        op.drop_table(table)
    with op.batch_alter_table("video_items") as batch:
        batch.drop_column("progress_event_at")
        batch.drop_column("webhook_endpoint_id")
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("webhook_endpoint_id")
    restore_sqlite_count_triggers()
