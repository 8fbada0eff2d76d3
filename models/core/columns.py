"""Column types and conventions every room's tables share (no tables here): enums stored by
value, UTC timestamps, 64-bit ids, stable constraint names, `utcnow`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models.core.enums import (
    BreakerState,
    BudgetPeriod,
    BudgetScope,
    DeliveryStatus,
    EventType,
    FailureClass,
    FailureCode,
    GroupPriority,
    InferenceProvider,
    ItemStatus,
    QualityAction,
    RoutedBy,
)

# Constraint names that are stable across dialects, so migrations can refer to them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def enum_type(enum: type[StrEnum], name: str, *, native: bool, length: int = 20) -> sa.Enum:
    """Values, not member names, are stored (`runway_veo3.1` is not a Python identifier);
    native types on PostgreSQL where `native`, else VARCHAR(`length`) with a CHECK constraint."""
    sizing = {} if native else {"length": length}  # native: as long as the longest value
    return sa.Enum(
        enum,
        name=name,
        native_enum=native,
        values_callable=lambda members: [member.value for member in members],
        create_constraint=True,
        validate_strings=True,
        **sizing,
    )


# The seed's two PostgreSQL enum types; SQLite gets CHECK constraints for all four.
PROVIDER_TYPE = enum_type(InferenceProvider, "inference_provider", native=True)


STATUS_TYPE = enum_type(ItemStatus, "processing_status", native=True)


GROUP_PRIORITY_TYPE = enum_type(GroupPriority, "group_priority", native=False)


ROUTED_BY_TYPE = enum_type(RoutedBy, "routed_by", native=False)


FAILURE_CODE_TYPE = enum_type(FailureCode, "failure_code", native=False, length=100)


BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""An auto-incremented 64-bit id (SQLite's rowid alias must be INTEGER)."""


EVENT_TYPE_TYPE = enum_type(EventType, "event_type", native=False, length=32)


DELIVERY_STATUS_TYPE = enum_type(DeliveryStatus, "delivery_status", native=False, length=12)


QUALITY_ACTION_TYPE = enum_type(QualityAction, "quality_action", native=False, length=12)


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def timestamp(*, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(UTCDateTime(), nullable=nullable)


BREAKER_STATE_TYPE = enum_type(BreakerState, "breaker_state", native=False)


FAILURE_CLASS_TYPE = enum_type(FailureClass, "failure_class", native=False, length=30)


BUDGET_SCOPE_TYPE = enum_type(BudgetScope, "budget_scope", native=False)


BUDGET_PERIOD_TYPE = enum_type(BudgetPeriod, "budget_period", native=False)
