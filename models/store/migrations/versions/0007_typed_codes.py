"""Typed codes: failure codes, event types and webhook delivery states are checked by the
database (CHECK constraints), as the enums of models.core.enums say.

Failure codes stored before are mapped: `HTTP_5nn` to `HTTP_5XX`, `HTTP_422` to `HTTP_400`, other
`HTTP_4nn` to `HTTP_4XX`, Runway's task codes to their family (`SAFETY.INPUT.TEXT` to
`SAFETY.INPUT`), and any other code to `OTHER`, with the old code kept at the start of the error.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from alembic import op

from reelroute.models.store.migrations.helpers import allow_values, restore_sqlite_count_triggers

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# As they are at this revision (frozen here; the enums may grow in later revisions).
FAILURE_CODES = (
    "RUN_NOT_STARTED", "RUN_CRASHED", "RUN_CANCELLED", "RUN_FAILED", "RUN_COMPLETED", "RUN_GONE",
    "LEASE_EXPIRED", "NO_PHOTO", "BAD_FRAME_COUNT", "BAD_INPUT", "NOT_A_VIDEO",
    "VIDEO_PROBE_TIMEOUT", "CUDA_OOM", "GPU_FAULT", "WAN_FAILED", "WAN_HOST_GONE",
    "WAN_UNAVAILABLE", "WAN_PROCESS_LOST", "WAN_WIRE", "WAN_CONFIG", "HTTP_400", "HTTP_401",
    "HTTP_403", "HTTP_429", "HTTP_4XX", "HTTP_5XX", "CONNECTION", "TIMEOUT", "TASK_GONE",
    "DOWNLOAD", "CANCELLED", "UNKNOWN_STATUS", "RUNWAY_CONFIG", "SAFETY.INPUT", "SAFETY.OUTPUT",
    "INTERNAL", "ASSET.INVALID", "RUNWAY_FAILED", "OTHER",
)  # fmt: skip
EVENT_TYPES = (
    "item.created", "item.started", "item.progress", "item.rerouted", "item.completed",
    "item.failed", "item.cancelled",
)  # fmt: skip
DELIVERY_STATUSES = ("pending", "delivered", "dead")

# Old code (a LIKE pattern) -> its code now, in order.
MAPPED = (
    ("HTTP_5%", "HTTP_5XX"),
    ("HTTP_422", "HTTP_400"),
    ("SAFETY.INPUT%", "SAFETY.INPUT"),
    ("SAFETY.OUTPUT%", "SAFETY.OUTPUT"),
    ("INTERNAL%", "INTERNAL"),
    ("ASSET.INVALID%", "ASSET.INVALID"),
)


def upgrade() -> None:
    for pattern, code in MAPPED:
        op.execute(
            f"UPDATE video_items SET failure_code = '{code}' WHERE failure_code LIKE '{pattern}'"
        )
    op.execute(
        "UPDATE video_items SET failure_code = 'HTTP_4XX' WHERE failure_code LIKE 'HTTP_4%' "
        "AND failure_code NOT IN ('HTTP_400', 'HTTP_401', 'HTTP_403', 'HTTP_429', 'HTTP_4XX')"
    )
    known = ", ".join(f"'{code}'" for code in FAILURE_CODES)
    op.execute(
        "UPDATE video_items SET failure_code = 'OTHER', "
        "error = 'failure code ' || failure_code || ': ' || coalesce(error, '') "
        f"WHERE failure_code IS NOT NULL AND failure_code NOT IN ({known})"
    )
    allow_values(
        "video_items", "failure_code", "ck_video_items_failure_code", FAILURE_CODES, replaces=False
    )
    restore_sqlite_count_triggers()  # SQLite rebuilt video_items (and dropped them) above
    allow_values("item_events", "type", "ck_item_events_event_type", EVENT_TYPES, replaces=False)
    allow_values(
        "webhook_deliveries",
        "status",
        "ck_webhook_deliveries_delivery_status",
        DELIVERY_STATUSES,
        replaces=False,
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint(op.f("ck_webhook_deliveries_delivery_status"), type_="check")
    with op.batch_alter_table("item_events") as batch:
        batch.drop_constraint(op.f("ck_item_events_event_type"), type_="check")
    with op.batch_alter_table("video_items") as batch:
        batch.drop_constraint(op.f("ck_video_items_failure_code"), type_="check")
    restore_sqlite_count_triggers()
