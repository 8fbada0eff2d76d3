"""Runway's own limits on our organisation, as `client.organization.retrieve()` tells them:
per model, how many generations may run at once and how many a day, what was used today, the
credit balance and the monthly credit limit.

The dispatcher reads them at start and every few minutes (`flows.planning`) and keeps the last
answer here; the routing policy and the dispatcher use it: the cloud pool's slots follow the
per-model concurrency, a model whose daily limit is used up is routed around, and the balance
and the monthly limit act as caps. When the call fails, the last answer stays.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models.core.catalogue import CATALOGUE
from reelroute.models.core.enums import InferenceProvider
from reelroute.models.core.tables import utcnow
from reelroute.models.money.tables import RunwayLimitsRow
from reelroute.models.store.ledger import count_ledger
from reelroute.models.store.queries.money import MONTH_SPEND, UNSETTLED
from reelroute.models.store.sql import sql


@dataclass(frozen=True)
class ModelLimits:
    """One Runway model's limits and today's use (None: no limit)."""

    max_concurrent: int | None
    max_daily: int | None
    used_today: int = 0

    @property
    def daily_left(self) -> int | None:
        """Generations still allowed in the rolling day (None: no limit)."""
        return None if self.max_daily is None else max(0, self.max_daily - self.used_today)


@dataclass(frozen=True)
class RunwayLimits:
    """What Runway said about our organisation, and when."""

    credit_balance: int
    max_monthly_credits: int
    models: dict[str, ModelLimits] = field(default_factory=dict)
    fetched_at: datetime = field(default_factory=utcnow)
    spent_this_month: int = 0
    """Our own books, when the answer came: credits our paid items cost this month (UTC)."""
    ledger_credits: int = 0
    """Our own books, when the answer came: the count ledger's credits of paid providers.
    What the ledger gained since was charged after the answer (`credits_left`)."""

    def credits_left(self, ledger_credits: int, reserved: int) -> int:
        """Credits Runway lets us still spend: the balance and the monthly limit, less what was
        charged since the answer and what our unsettled items reserved."""
        since = max(0, ledger_credits - self.ledger_credits)
        balance = self.credit_balance - since
        monthly = self.max_monthly_credits - self.spent_this_month - since
        return max(0, min(balance, monthly) - reserved)

    def model(self, name: str) -> ModelLimits:
        """The limits of model `name` (none known: unlimited)."""
        return self.models.get(name, ModelLimits(None, None))

    def to_json(self) -> str:
        """For storage."""
        data = asdict(self)
        data["fetched_at"] = self.fetched_at.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> RunwayLimits:
        """Back from storage."""
        data = json.loads(text)
        return cls(
            credit_balance=int(data["credit_balance"]),
            max_monthly_credits=int(data["max_monthly_credits"]),
            models={name: ModelLimits(**limits) for name, limits in data["models"].items()},
            fetched_at=datetime.fromisoformat(data["fetched_at"]),
            spent_this_month=int(data.get("spent_this_month", 0)),
            ledger_credits=int(data.get("ledger_credits", 0)),
        )


def paid_ledger_credits(session: Session) -> int:
    """Credits of every paid provider in the count ledger (a read of a few rows)."""
    return sum(
        counts.credits
        for provider, counts in count_ledger(session).items()
        if provider is not InferenceProvider.wan_local
    )


def unsettled_credits(session: Session) -> int:
    """What the paid items not yet ended should cost, at the catalogue's prices (Runway will
    charge them: they count against its balance and monthly limit before they are billed)."""
    total = 0
    for provider, duration_s, frame_num, count in session.execute(sql(UNSETTLED)).all():
        entry = CATALOGUE.get(InferenceProvider(provider))
        if entry is not None:
            total += entry.credits_for(duration_s, frame_num) * int(count)
    return total


def with_our_books(session: Session, limits: RunwayLimits) -> RunwayLimits:
    """Runway's answer with what our own books said at that moment (see `credits_left`)."""
    start = limits.fetched_at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    statement = sql(MONTH_SPEND).bindparams(sa.bindparam("month_start", type_=UTCDateTime()))
    month = int(session.execute(statement, {"month_start": start}).scalar_one())
    return replace(limits, spent_this_month=month, ledger_credits=paid_ledger_credits(session))


def store_limits(session: Session, limits: RunwayLimits) -> None:
    """Keep Runway's latest answer, with what our own books said at that moment."""
    limits = with_our_books(session, limits)
    row = session.get(RunwayLimitsRow, 1)
    if row is None:
        row = RunwayLimitsRow(id=1, payload=limits.to_json(), fetched_at=limits.fetched_at)
    else:
        row.payload, row.fetched_at = limits.to_json(), limits.fetched_at
    session.add(row)
    session.flush()


def last_limits(session: Session) -> RunwayLimits | None:
    """Runway's latest answer, if there ever was one."""
    row = session.get(RunwayLimitsRow, 1)
    return RunwayLimits.from_json(row.payload) if row is not None else None
