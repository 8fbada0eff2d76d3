"""The money room's tables: budgets, their usage and reservations, Runway's limits.

Written by this room only (models/assembly/registry.py, checked by `make lint`).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reelroute.models.core.columns import (
    BUDGET_PERIOD_TYPE,
    BUDGET_SCOPE_TYPE,
    PROVIDER_TYPE,
    timestamp,
    utcnow,
)
from reelroute.models.core.enums import (
    BudgetPeriod,
    BudgetScope,
    InferenceProvider,
)


class Budget(SQLModel, table=True):
    """A spending cap in credits: for one paid provider, one group, or all paid providers,
    per UTC day or calendar month (models.money.budgets)."""

    __tablename__ = "budgets"
    __table_args__ = (sa.UniqueConstraint("scope", "period", "provider", "group_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    scope: BudgetScope = Field(sa_column=sa.Column(BUDGET_SCOPE_TYPE, nullable=False))
    period: BudgetPeriod = Field(sa_column=sa.Column(BUDGET_PERIOD_TYPE, nullable=False))
    provider: InferenceProvider | None = Field(
        default=None, sa_column=sa.Column(PROVIDER_TYPE, nullable=True)
    )
    group_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(sa.Uuid, sa.ForeignKey("groups.id", ondelete="CASCADE")),
    )
    cap_credits: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))


class BudgetUsage(SQLModel, table=True):
    """What one budget has reserved and spent in one period."""

    __tablename__ = "budget_usage"

    budget_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
        )
    )
    period_start: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    reserved: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    spent: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))


class BudgetReservation(SQLModel, table=True):
    """Credits an unfinished item holds on one budget until it is settled."""

    __tablename__ = "budget_reservations"

    item_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("video_items.id", ondelete="CASCADE"), primary_key=True
        )
    )
    budget_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
        )
    )
    period_start: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    credits: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class RunwayLimitsRow(SQLModel, table=True):
    """Runway's latest answer about our organisation (models.money.limits), one row."""

    __tablename__ = "runway_limits"

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    fetched_at: datetime = Field(sa_column=timestamp(nullable=False))
