"""The store's ledgers: the tallies their writers keep and the trigger-kept status counts.

Written by this room only (models/assembly/registry.py, checked by `make lint`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reelroute.models.core.columns import (
    PROVIDER_TYPE,
    STATUS_TYPE,
)
from reelroute.models.core.enums import (
    InferenceProvider,
    ItemStatus,
)


class FailureTally(SQLModel, table=True):
    """Failed attempts per provider and failure class, counted by the writer in the failing
    transaction (models.store.tallies): the metrics' failures by class, at any size."""

    __tablename__ = "failure_tallies"

    provider: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    failure_class: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class VerdictTally(SQLModel, table=True):
    """Videos kept and videos made again per group, provider and Wan preset, counted by the
    writer in the transaction that decides (models.store.tallies): a completed item's video is
    `accepted`, a video rejected by a reviewer or escalated by a failed check is `rejected`.
    Routing learns each option's acceptance from these few rows (models.planning.acceptance)."""

    __tablename__ = "verdict_tallies"

    group_key: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    """The group's id as text ('' for items without a group)."""
    provider: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    wan_preset: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    """The Wan preset that made the videos ('' for Runway's, or Wan's of no known preset)."""
    accepted: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    rejected: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class GpuTally(SQLModel, table=True):
    """Wan videos made, GPU seconds and what they cost per GPU class, counted by the writer in
    the transaction that ends the attempt (models.store.tallies): the metrics' GPU spend, at
    any size."""

    __tablename__ = "gpu_tallies"

    gpu_class: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    videos: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    dollars: float = Field(sa_column=sa.Column(sa.Float, nullable=False))


class DeliveryTally(SQLModel, table=True):
    """Webhook delivery attempts by outcome (`delivered`, `failed`: to be tried again, `dead`:
    given up), counted by the sender in the transaction that records them
    (models.store.tallies): the metrics' delivery counter, at any size."""

    __tablename__ = "delivery_tallies"

    outcome: str = Field(sa_column=sa.Column(sa.String(20), primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class LatencyBucket(SQLModel, table=True):
    """Completed items per provider, measure (`created` or `claimed` to completed) and latency
    bucket (its upper bound in seconds, `inf` for the last), with the seconds they took: a
    histogram kept by the writer in the completing transaction (models.store.tallies)."""

    __tablename__ = "latency_buckets"

    provider: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    measure: str = Field(sa_column=sa.Column(sa.String(20), primary_key=True))
    le: str = Field(sa_column=sa.Column(sa.String(20), primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sum_seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))


class ItemStatusCount(SQLModel, table=True):
    """A ledger of changes to the number (and credits) of items per provider and status.

    Triggers on `video_items` append one row per (provider, status) a statement changed; the
    statistics are the sums, and `compact_counts` folds the ledger back to one row per pair. So
    statistics cost the same for a thousand items or ten million, and no writer waits on a shared
    counter row.
    """

    __tablename__ = "item_status_counts"

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    )
    inference_provider: InferenceProvider = Field(
        sa_column=sa.Column(PROVIDER_TYPE, nullable=False)
    )
    status: ItemStatus = Field(sa_column=sa.Column(STATUS_TYPE, nullable=False))
    items: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    credits: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class DeliveryStatusCount(SQLModel, table=True):
    """Webhook deliveries per status, kept by triggers on `webhook_deliveries` (inserts,
    status changes, deletes, the cascades of a deleted endpoint too): what `/metrics` and the
    admin's Webhooks page say of pending and dead deliveries, without counting them."""

    __tablename__ = "delivery_status_counts"

    status: str = Field(sa_column=sa.Column(sa.String(12), primary_key=True))
    deliveries: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class MoveTally(SQLModel, table=True):
    """Waiting items the planner moved, per (from, to) provider: counted as each move is made
    (`item_reroutes` keeps the recent moves themselves, pruned by age)."""

    __tablename__ = "move_tallies"

    from_provider: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    to_provider: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    moves: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
