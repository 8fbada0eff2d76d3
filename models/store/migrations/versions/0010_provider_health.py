"""Provider health: circuit breakers (`breakers`, and the outcomes their sliding windows count in
`breaker_outcomes`), the attempts an outage spared (`video_items.spared_attempts`), the
`provider.opened` and `provider.closed` events (with the breaker's name in `subject`), and the
failure code CREDITS.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from reelroute.models.store.migrations.helpers import allow_values, restore_sqlite_count_triggers

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# As they are at this revision (frozen here; the enums may grow in later revisions).
FAILURE_CODES = (
    "RUN_NOT_STARTED", "RUN_CRASHED", "RUN_CANCELLED", "RUN_FAILED", "RUN_COMPLETED", "RUN_GONE",
    "LEASE_EXPIRED", "NO_PHOTO", "BAD_FRAME_COUNT", "BAD_INPUT", "NOT_A_VIDEO",
    "VIDEO_PROBE_TIMEOUT", "CUDA_OOM", "GPU_FAULT", "WAN_FAILED", "WAN_HOST_GONE",
    "WAN_UNAVAILABLE", "WAN_PROCESS_LOST", "WAN_WIRE", "WAN_CONFIG", "HTTP_400", "HTTP_401",
    "HTTP_403", "HTTP_429", "HTTP_4XX", "HTTP_5XX", "CONNECTION", "TIMEOUT", "TASK_GONE",
    "DOWNLOAD", "CANCELLED", "UNKNOWN_STATUS", "RUNWAY_CONFIG", "CREDITS", "SAFETY.INPUT",
    "SAFETY.OUTPUT", "INTERNAL", "ASSET.INVALID", "RUNWAY_FAILED", "OTHER",
)  # fmt: skip
OLD_FAILURE_CODES = tuple(code for code in FAILURE_CODES if code != "CREDITS")
EVENT_TYPES = (
    "item.created", "item.started", "item.progress", "item.rerouted", "item.completed",
    "item.failed", "item.cancelled", "provider.opened", "provider.closed",
)  # fmt: skip
BREAKER_STATES = ("closed", "open", "half_open")
FAILURE_CLASSES = (
    "input", "throttled", "provider_transient", "provider_exhausted", "provider_config",
    "gpu_host", "infra", "unknown",
)  # fmt: skip


def _check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(name))


def upgrade() -> None:
    op.add_column(
        "video_items",
        sa.Column("spared_attempts", sa.Integer, nullable=False, server_default="0"),
    )
    allow_values(
        "video_items", "failure_code", "ck_video_items_failure_code", FAILURE_CODES, replaces=True
    )
    restore_sqlite_count_triggers()  # SQLite rebuilt video_items (and dropped them) above
    op.add_column("item_events", sa.Column("subject", sa.String(120), nullable=True))
    allow_values("item_events", "type", "ck_item_events_event_type", EVENT_TYPES, replaces=True)
    op.create_table(
        "breakers",
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, server_default="closed"),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("failure_class", sa.String(30), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_probe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cooldown_seconds", sa.Float, nullable=False, server_default="0"),
        sa.Column("probe_item_id", sa.Uuid, nullable=True),
        sa.Column("probe_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_breakers")),
        _check("state", BREAKER_STATES, "ck_breakers_breaker_state"),
        _check("failure_class", FAILURE_CLASSES, "ck_breakers_failure_class"),
    )
    op.create_table(
        "breaker_outcomes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("breaker", sa.String(120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("failure_class", sa.String(30), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breaker_outcomes")),
        _check("failure_class", FAILURE_CLASSES, "ck_breaker_outcomes_failure_class"),
    )
    op.create_index("ix_breaker_outcomes_window", "breaker_outcomes", ["breaker", "at"])


def downgrade() -> None:
    op.drop_index("ix_breaker_outcomes_window", table_name="breaker_outcomes")
    op.drop_table("breaker_outcomes")
    op.drop_table("breakers")
    op.execute("DELETE FROM item_events WHERE type IN ('provider.opened', 'provider.closed')")
    allow_values(
        "item_events", "type", "ck_item_events_event_type", EVENT_TYPES[:-2], replaces=True
    )
    with op.batch_alter_table("item_events") as batch:
        batch.drop_column("subject")
    op.execute("UPDATE video_items SET failure_code = 'OTHER' WHERE failure_code = 'CREDITS'")
    allow_values(
        "video_items",
        "failure_code",
        "ck_video_items_failure_code",
        OLD_FAILURE_CODES,
        replaces=True,
    )
    with op.batch_alter_table("video_items") as batch:
        batch.drop_column("spared_attempts")
    restore_sqlite_count_triggers()
