"""The planning room's tables: the GPU hosts, the planner's GPU demand, the moves it made.

Written by this room only (models/assembly/registry.py, checked by `make lint`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reelroute.models.core.columns import (
    enum_type,
    timestamp,
    utcnow,
)
from reelroute.models.core.enums import (
    InferenceProvider,
)


class GpuHost(SQLModel, table=True):
    """A GPU host (`reelroute worker --pool gpu`) as it last reported itself: its GPUs, the
    class of GPU, the preset its pipeline processes run, and when it was last seen."""

    __tablename__ = "gpu_hosts"

    name: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    gpu_class: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    preset: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    slots: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    """Its pipeline processes (one per GPU): the items it makes at once."""
    full_quality: bool = Field(
        default=True, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.true())
    )
    """Its preset keeps the model card's quality: it also takes items that require it."""
    loads: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    videos: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    started_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))
    seen_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))


class GpuDemand(SQLModel, table=True):
    """The GPU slots and hosts the waiting Wan work wants to meet its due times, as the
    dispatcher's planner last computed them (one row; `reelroute_gpu_hosts_wanted`)."""

    __tablename__ = "gpu_demand"

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    slots: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    hosts: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    waiting: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    """Wan items waiting or at work when it was computed."""
    computed_at: datetime = Field(sa_column=timestamp(nullable=False))


class Reroute(SQLModel, table=True):
    """One move of a waiting item to another provider, and why: kept MOVES_KEPT (30 days) for
    the item's history (`moves_of`); the counts are in `move_tallies`."""

    __tablename__ = "item_reroutes"
    __table_args__ = (sa.Index("ix_item_reroutes_moved_at", "moved_at"),)

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    )
    item_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("video_items.id", ondelete="CASCADE"), nullable=False
        )
    )
    from_provider: InferenceProvider = Field(
        sa_column=sa.Column(
            enum_type(InferenceProvider, "from_provider", native=False), nullable=False
        )
    )
    to_provider: InferenceProvider = Field(
        sa_column=sa.Column(
            enum_type(InferenceProvider, "to_provider", native=False), nullable=False
        )
    )
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    moved_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))


class PredictedLate(SQLModel, table=True):
    """Per provider, the waiting items whose p90 finish is past their due time, as the planner
    last replayed the queues (written with the ETAs): what `/metrics` and the statistics say,
    without joining `item_etas` to `video_items`."""

    __tablename__ = "predicted_late"

    provider: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    items: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    updated_at: datetime = Field(sa_column=timestamp(nullable=False))
