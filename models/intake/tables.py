"""The intake room's table: Idempotency-Key bookkeeping.

Written by this room only (models/assembly/registry.py, checked by `make lint`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reelroute.models.core.columns import (
    timestamp,
    utcnow,
)


class IdempotencyKey(SQLModel, table=True):
    """The first answer to a request sent with an `Idempotency-Key`, to answer its repeats."""

    __tablename__ = "idempotency_keys"

    key: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    scope: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    """What the key was used for (`tasks/add`, `photos:<group>`, `cli add`)."""
    request_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    status_code: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    response: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))
    expires_at: datetime = Field(
        sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True)
    )
