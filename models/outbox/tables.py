"""The outbox's tables: the webhook endpoints, the item events, the deliveries.

Written by this room only (models/assembly/registry.py, checked by `make lint`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reelroute.models.core.columns import (
    BIGINT_ID,
    DELIVERY_STATUS_TYPE,
    EVENT_TYPE_TYPE,
    timestamp,
    utcnow,
)
from reelroute.models.core.enums import (
    DeliveryStatus,
    EventType,
)


class WebhookEndpoint(SQLModel, table=True):
    """A receiver of item events (models.outbox.endpoints): its URL, the events it wants, its
    signing secret (random, encrypted with REELROUTE_WEBHOOK_SIGNING_KEY; NULL for an endpoint
    of before, whose secret is derived from the key and its URL), whether it is enabled, and
    its receiver's latest answers."""

    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, sa_column=sa.Column(sa.Uuid, primary_key=True)
    )
    url: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    events: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    """The event types it wants; None: all but `item.progress`."""
    is_default: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    """Every item's events go to it (REELROUTE_WEBHOOK_URL)."""
    enabled: bool = Field(
        default=True, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.true())
    )
    """A disabled endpoint gets no new deliveries; its pending ones wait."""
    secret_encrypted: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    previous_secret_encrypted: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    """The secret a rotation replaced, still signing until `previous_secret_until`."""
    previous_secret_until: datetime | None = Field(default=None, sa_column=timestamp())
    last_answers: list[dict[str, Any]] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    """The receiver's latest answers, newest first: at, status, error, ms."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))


class ItemEvent(SQLModel, table=True):
    """The outbox: one row per change of an item that callers hear about, written in the same
    transaction as the change. Webhooks and the SSE stream are fed from it."""

    __tablename__ = "item_events"
    __table_args__ = (
        sa.Index(
            "ix_item_events_not_fanned_out",
            "id",
            postgresql_where=sa.text("NOT fanned_out"),
            sqlite_where=sa.text("NOT fanned_out"),
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    item_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    group_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    type: EventType = Field(sa_column=sa.Column(EVENT_TYPE_TYPE, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    provider: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    attempt: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    progress: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    """Why: the routing reason, the move's reason, the failure."""
    subject: str | None = Field(default=None, sa_column=sa.Column(sa.String(120)))
    """provider.* events: the breaker's name (`model:runway_gen4_turbo`); `item_id` is then
    that breaker's fixed id (models.health.breakers.breaker_id)."""
    cost_credits: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))
    fanned_out: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    """Its webhook deliveries were made (by the sender)."""


class WebhookDelivery(SQLModel, table=True):
    """One event on its way to one endpoint: pending, delivered, or dead (given up after
    REELROUTE_WEBHOOK_RETRY_HOURS; resend from the admin)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_webhook_deliveries_endpoint_due",
            "endpoint_id",
            "next_attempt_at",
            "id",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_webhook_deliveries_order", "endpoint_id", "item_id", "event_id"),
        sa.Index("ix_webhook_deliveries_status", "status", "id"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    event_id: int = Field(
        sa_column=sa.Column(
            BIGINT_ID, sa.ForeignKey("item_events.id", ondelete="CASCADE"), nullable=False
        )
    )
    endpoint_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
        )
    )
    item_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    status: DeliveryStatus = Field(
        default=DeliveryStatus.pending,
        sa_column=sa.Column(DELIVERY_STATUS_TYPE, nullable=False),
    )
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    first_attempt_at: datetime | None = Field(default=None, sa_column=timestamp())
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))
    last_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    delivered_at: datetime | None = Field(default=None, sa_column=timestamp())
