"""The items room's own tables (beside `video_items` in core): the A/B pairs and comparisons.

Written by this room only (models/assembly/registry.py, checked by `make lint`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reelroute.models.core.columns import (
    BIGINT_ID,
    timestamp,
    utcnow,
)


class AbComparison(SQLModel, table=True):
    """A reviewer's blind pick between an item's video and its A/B sample's (models.items.
    review): which was better, or both fine; with who made each, for the A/B table."""

    __tablename__ = "ab_comparisons"

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    item_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    shadow_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, unique=True))
    group_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    item_provider: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    item_preset: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    shadow_provider: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    shadow_preset: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    winner: str = Field(sa_column=sa.Column(sa.String(10), nullable=False))
    """`item`, `shadow` or `tie` (both fine)."""
    at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))


class AbPair(SQLModel, table=True):
    """A blind A/B pair as reviewers see it: an id of its own (random, naming neither item) and
    which video is A (a random draw, stored so that a reload shows the same)."""

    __tablename__ = "ab_pairs"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    shadow_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, unique=True))
    item_first: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    """Whether the item's own video is A (else its sample's)."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))
