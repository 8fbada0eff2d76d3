"""Is the free video good enough: the `review` status (a video held for a person), each item's
automatic checks (`video_items.quality`), why it was held (`review_reason`) and how often it was
made again (`redo_count`); the redone videos (`item_redos`); each group's choice of what a
failed check does, its own thresholds and the share of its videos reviewed anyway; the failure
code QUALITY_CHECK and class `output`; the events item.review_requested, item.accepted and
item.rejected.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from reelroute.models.store.migrations.helpers import allow_values, restore_sqlite_count_triggers

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# As they are at this revision (frozen here; the enums may grow in later revisions).
STATUSES = ("pending", "processing", "review", "completed", "failed", "cancelled")
FAILURE_CODES = (
    "RUN_NOT_STARTED", "RUN_CRASHED", "RUN_CANCELLED", "RUN_FAILED", "RUN_COMPLETED", "RUN_GONE",
    "LEASE_EXPIRED", "NO_PHOTO", "BAD_FRAME_COUNT", "BAD_INPUT", "NOT_A_VIDEO",
    "VIDEO_PROBE_TIMEOUT", "CUDA_OOM", "GPU_FAULT", "WAN_FAILED", "WAN_HOST_GONE",
    "WAN_UNAVAILABLE", "WAN_PROCESS_LOST", "WAN_WIRE", "WAN_CONFIG", "HTTP_400", "HTTP_401",
    "HTTP_403", "HTTP_429", "HTTP_4XX", "HTTP_5XX", "CONNECTION", "TIMEOUT", "TASK_GONE",
    "DOWNLOAD", "CANCELLED", "UNKNOWN_STATUS", "RUNWAY_CONFIG", "CREDITS", "SAFETY.INPUT",
    "SAFETY.OUTPUT", "INTERNAL", "ASSET.INVALID", "RUNWAY_FAILED", "QUALITY_CHECK", "OTHER",
)  # fmt: skip
EVENT_TYPES = (
    "item.created", "item.started", "item.progress", "item.rerouted", "item.completed",
    "item.failed", "item.cancelled", "item.review_requested", "item.accepted", "item.rejected",
    "provider.opened", "provider.closed",
)  # fmt: skip
FAILURE_CLASSES = (
    "input", "throttled", "provider_transient", "provider_exhausted", "provider_config",
    "gpu_host", "infra", "unknown", "output",
)  # fmt: skip
NEW_EVENTS = {"item.review_requested", "item.accepted", "item.rejected"}
OLD = {
    "statuses": tuple(s for s in STATUSES if s != "review"),
    "codes": tuple(c for c in FAILURE_CODES if c != "QUALITY_CHECK"),
    "events": tuple(e for e in EVENT_TYPES if e not in NEW_EVENTS),
    "classes": FAILURE_CLASSES[:-1],
}
ACTIONS = ("accept", "review", "escalate")


def _checks(statuses: tuple[str, ...], codes: tuple[str, ...], events: tuple[str, ...],
            classes: tuple[str, ...]) -> None:  # fmt: skip
    if op.get_bind().dialect.name != "postgresql":  # a native enum there (see upgrade)
        allow_values(
            "video_items", "status", "ck_video_items_processing_status", statuses, replaces=True
        )
        allow_values(
            "item_status_counts",
            "status",
            "ck_item_status_counts_processing_status",
            statuses,
            replaces=True,
        )
    allow_values("video_items", "failure_code", "ck_video_items_failure_code", codes, replaces=True)
    allow_values("item_events", "type", "ck_item_events_event_type", events, replaces=True)
    for table in ("breakers", "breaker_outcomes"):
        allow_values(table, "failure_class", f"ck_{table}_failure_class", classes, replaces=True)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # A new enum value cannot be used in the transaction that adds it: commit it first.
        with op.get_context().autocommit_block():
            op.execute(
                "ALTER TYPE processing_status ADD VALUE IF NOT EXISTS 'review' BEFORE 'completed'"
            )
    _checks(STATUSES, FAILURE_CODES, EVENT_TYPES, FAILURE_CLASSES)
    listed = ", ".join(f"'{action}'" for action in ACTIONS)
    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("quality_action", sa.String(12), nullable=True))
        batch.add_column(sa.Column("quality_thresholds", sa.JSON, nullable=True))
        batch.add_column(sa.Column("review_share", sa.Float, nullable=False, server_default="0"))
        batch.create_check_constraint(
            op.f("ck_groups_quality_action"), f"quality_action IN ({listed})"
        )
    with op.batch_alter_table("video_items") as batch:
        batch.add_column(sa.Column("quality", sa.JSON, nullable=True))
        batch.add_column(sa.Column("review_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("redo_count", sa.Integer, nullable=False, server_default="0"))
    restore_sqlite_count_triggers()  # SQLite rebuilt video_items (and dropped them) above
    provider = sa.String(40)  # an InferenceProvider's value (a plain string: a log of the past)
    op.create_table(
        "item_redos",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.Uuid, nullable=False),
        sa.Column("group_id", sa.Uuid, nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("provider", provider, nullable=False),
        sa.Column("wan_preset", sa.String(40), nullable=True),
        sa.Column("cost_credits", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by_check", sa.Boolean, nullable=False),
        sa.Column("redo_provider", provider, nullable=False),
        sa.Column("video_path", sa.String(500), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_redos")),
    )
    op.create_index("ix_item_redos_item_id", "item_redos", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_item_redos_item_id", table_name="item_redos")
    op.drop_table("item_redos")
    with op.batch_alter_table("video_items") as batch:
        batch.drop_column("redo_count")
        batch.drop_column("review_reason")
        batch.drop_column("quality")
    with op.batch_alter_table("groups") as batch:
        batch.drop_constraint(op.f("ck_groups_quality_action"), type_="check")
        batch.drop_column("review_share")
        batch.drop_column("quality_thresholds")
        batch.drop_column("quality_action")
    # Held videos are accepted; the new codes, events and classes go.
    op.execute("UPDATE video_items SET status = 'completed' WHERE status = 'review'")
    op.execute("UPDATE video_items SET failure_code = 'OTHER' WHERE failure_code = 'QUALITY_CHECK'")
    op.execute(
        "DELETE FROM item_events WHERE type IN "
        "('item.review_requested', 'item.accepted', 'item.rejected')"
    )
    op.execute("DELETE FROM breaker_outcomes WHERE failure_class = 'output'")
    op.execute("UPDATE breakers SET failure_class = 'unknown' WHERE failure_class = 'output'")
    # PostgreSQL cannot drop an enum value: 'review' stays in processing_status, unused.
    _checks(OLD["statuses"], OLD["codes"], OLD["events"], OLD["classes"])
    restore_sqlite_count_triggers()
