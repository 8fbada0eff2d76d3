"""The health room's tables: the breakers and their outcomes, the loops' beats and leaders.

Written by this room only (models/assembly/registry.py, checked by `make lint`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reelroute.models.core.columns import (
    BIGINT_ID,
    BREAKER_STATE_TYPE,
    FAILURE_CLASS_TYPE,
    timestamp,
    utcnow,
)
from reelroute.models.core.enums import (
    BreakerState,
    FailureClass,
)


class Breaker(SQLModel, table=True):
    """A circuit breaker: one per Runway model (`model:runway_gen4_turbo`), per GPU host
    (`host:gpu-a`) and per pool (`pool:gpu`, for runs that never start). Shared by every process
    through the database (models.health.breakers)."""

    __tablename__ = "breakers"

    name: str = Field(sa_column=sa.Column(sa.String(120), primary_key=True))
    state: BreakerState = Field(
        default=BreakerState.closed,
        sa_column=sa.Column(BREAKER_STATE_TYPE, nullable=False, server_default="closed"),
    )
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    """Why it opened (the last failure, the rate), or how it closed."""
    failure_class: FailureClass | None = Field(
        default=None, sa_column=sa.Column(FAILURE_CLASS_TYPE)
    )
    opened_at: datetime | None = Field(default=None, sa_column=timestamp())
    next_probe_at: datetime | None = Field(default=None, sa_column=timestamp())
    """When one item may try it again (half-open)."""
    cooldown_seconds: float = Field(
        default=0.0, sa_column=sa.Column(sa.Float, nullable=False, server_default="0")
    )
    """The wait before the next probe; doubles while probes fail."""
    probe_item_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    probe_started_at: datetime | None = Field(default=None, sa_column=timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))


class BreakerOutcome(SQLModel, table=True):
    """One attempt's outcome for a breaker: what its sliding window counts."""

    __tablename__ = "breaker_outcomes"
    __table_args__ = (sa.Index("ix_breaker_outcomes_window", "breaker", "at"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    breaker: str = Field(sa_column=sa.Column(sa.String(120), nullable=False))
    at: datetime = Field(sa_column=timestamp(nullable=False))
    ok: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    failure_class: FailureClass | None = Field(
        default=None, sa_column=sa.Column(FAILURE_CLASS_TYPE)
    )


class LoopBeat(SQLModel, table=True):
    """The last pass of one of the background loops (the dispatcher, the reconciler, the webhook
    sender): who ran it, when, how long it took and whether it went through. The metrics and
    the admin read it; an alert fires when it goes silent."""

    __tablename__ = "loop_beats"

    name: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    host: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    beat_at: datetime = Field(sa_column=timestamp(nullable=False))
    took_seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    ok: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))


class LoopMember(SQLModel, table=True):
    """A process that runs, or stands by to run, one of the led roles ("dispatcher": the
    dispatcher with its reconciler; "webhooks": the sender): whether it leads, since when (its
    term, or when it joined as a standby), and when it last checked in. Written by
    models.health.leadership; the metrics and the Providers page read it."""

    __tablename__ = "loop_members"

    role: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    holder: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    leading: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    since: datetime = Field(sa_column=timestamp(nullable=False))
    seen_at: datetime = Field(sa_column=timestamp(nullable=False))
