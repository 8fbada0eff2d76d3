"""Spending caps: per provider and per group, per day and per month, in dollars (credits
underneath, 1 credit = $0.01).

A paid item reserves its estimated cost when it is routed; completion settles what it really
cost; a failure that Runway did not charge, or a cancel, releases it. The reservation is one
`UPDATE … WHERE reserved + spent + :credits <= cap` per applicable budget, so the row's lock
serialises concurrent batches and no interleaving can take a total past its cap.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.core.enums import BudgetPeriod, BudgetScope, InferenceProvider
from reelroute.models.core.errors import Conflict, InvalidInput
from reelroute.models.core.tables import ItemRedo, VideoItem, utcnow
from reelroute.models.money.tables import Budget, BudgetReservation, BudgetUsage
from reelroute.models.store.queries.money import ENSURE_USAGE, LOCK_USAGE, RESERVE, UNRESERVE
from reelroute.models.store.sql import rowcount, sql


class BudgetExceeded(Conflict):
    """A cap would be passed; nothing was reserved. The message says what is left."""

    def __init__(
        self,
        message: str,
        *,
        budget: Budget | None = None,
        left: int = 0,
        problems: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.left = left
        self.problems = problems or [message]


def period_start(period: BudgetPeriod, now: datetime) -> date:
    """The first day of the period `now` falls in (UTC)."""
    day = now.date()
    return day if period is BudgetPeriod.day else day.replace(day=1)


def dollars(credits: int) -> str:
    """`$12.34`."""
    return f"${credits / 100:,.2f}"


def describe(budget: Budget) -> str:
    """`runway_veo3.1 per day`, `group Summer per month`, `all paid providers per day`."""
    if budget.scope is BudgetScope.provider:
        what = str(budget.provider.value if budget.provider else "?")
    elif budget.scope is BudgetScope.group:
        what = f"group {budget.group_id}"
    elif budget.scope is BudgetScope.shadow:
        what = "the A/B samples"
    elif budget.scope is BudgetScope.gpu:
        what = "GPU time"
    else:
        what = "all paid providers"
    return f"{what} per {budget.period.value}"


def set_budget(
    session: Session,
    *,
    scope: BudgetScope,
    period: BudgetPeriod,
    cap_dollars: float,
    provider: InferenceProvider | None = None,
    group_id: uuid.UUID | None = None,
) -> Budget:
    """Create or change the cap of one budget (a cap of 0 stops all spending there)."""
    problems = []
    if cap_dollars < 0:
        problems.append(f"cap: {cap_dollars} is negative; give dollars, 0 or more")
    if scope is BudgetScope.provider and provider is None:
        problems.append("provider: a provider budget needs the provider")
    if scope is BudgetScope.provider and provider is InferenceProvider.wan_local:
        problems.append(
            "provider: wan_local costs no credits; give a paid provider, or cap what its GPU "
            "time costs with the scope gpu"
        )
    if scope is BudgetScope.group and group_id is None:
        problems.append("group_id: a group budget needs the group")
    if problems:
        raise InvalidInput(problems)
    provider = provider if scope is BudgetScope.provider else None
    group_id = group_id if scope is BudgetScope.group else None
    budget = session.exec(
        select(Budget).where(
            col(Budget.scope) == scope,
            col(Budget.period) == period,
            col(Budget.provider).is_(None) if provider is None else Budget.provider == provider,
            col(Budget.group_id).is_(None) if group_id is None else Budget.group_id == group_id,
        )
    ).first()
    if budget is None:
        budget = Budget(
            scope=scope, period=period, provider=provider, group_id=group_id, cap_credits=0
        )
    budget.cap_credits = round(cap_dollars * 100)
    budget.updated_at = utcnow()
    session.add(budget)
    session.flush()
    return budget


def applicable(
    session: Session,
    *,
    provider: InferenceProvider,
    group_id: uuid.UUID | None,
    shadow: bool = False,
) -> list[Budget]:
    """The budgets an item of `provider` in group `group_id` spends against: an A/B sample's
    second video (`shadow`) the shadow budgets and the cap on all paid spending (what the
    samples cost is spent all the same), any other item every budget but the shadow ones."""
    if provider is InferenceProvider.wan_local:
        return []
    if shadow:
        scopes = (BudgetScope.shadow, BudgetScope.total)
        return list(session.exec(select(Budget).where(col(Budget.scope).in_(scopes))))
    query = select(Budget).where(
        sa.or_(
            col(Budget.scope) == BudgetScope.total,
            sa.and_(col(Budget.scope) == BudgetScope.provider, col(Budget.provider) == provider),
            sa.and_(col(Budget.scope) == BudgetScope.group, col(Budget.group_id) == group_id),
        )
    )
    return list(session.exec(query).all())


@dataclass(frozen=True)
class Spend:
    """A budget in its current period."""

    budget: Budget
    period_start: date
    reserved: int
    spent: int

    @property
    def left(self) -> int:
        """Credits that may still be reserved this period."""
        return max(0, self.budget.cap_credits - self.reserved - self.spent)


def spend(session: Session, *, now: datetime | None = None) -> list[Spend]:
    """Every budget with what is reserved and spent in its current period."""
    now = now or utcnow()
    result = []
    for budget in session.exec(select(Budget).order_by(col(Budget.created_at))).all():
        start = period_start(budget.period, now)
        usage = session.get(BudgetUsage, (budget.id, start))
        result.append(
            Spend(budget, start, usage.reserved if usage else 0, usage.spent if usage else 0)
        )
    return result


SPEND_GPU = """
UPDATE budget_usage SET spent = spent + :credits
WHERE budget_id = :budget_id AND period_start = :period_start
"""


def spend_gpu(session: Session, *, credits: int, now: datetime | None = None) -> None:
    """A Wan attempt used `credits` of GPU time (1 credit = $0.01): spent on every `gpu` budget
    (nothing is reserved for GPU time: routing checks what is left before it sends an item to
    Wan, and the videos in flight may pass the cap by what they cost)."""
    if credits <= 0:
        return
    now = now or utcnow()
    query = select(Budget).where(col(Budget.scope) == BudgetScope.gpu)
    for budget in sorted(session.exec(query).all(), key=_key(now)):
        params = {"budget_id": budget.id, "period_start": period_start(budget.period, now)}
        session.execute(_binds(ENSURE_USAGE), params)
        session.execute(_binds(SPEND_GPU), {**params, "credits": credits})


def _binds(statement: str) -> sa.TextClause:
    return sql(statement).bindparams(
        *[
            sa.bindparam(name, type_=kind)
            for name, kind in (("budget_id", sa.Uuid()), ("period_start", sa.Date()))
            if f":{name}" in statement
        ]
    )


def lock_budgets(
    session: Session, *, group_id: uuid.UUID | None, now: datetime | None = None
) -> None:
    """Lock, in one order for everyone, the current-period rows of every budget an item of the
    group could spend against (any paid provider): a batch, a move or a completion that takes
    several budget rows then never waits on another that holds them in the opposite order (a
    deadlock on PostgreSQL). SQLite serialises writers anyway. Costs nothing without budgets."""
    now = now or utcnow()
    query = select(Budget).where(
        sa.or_(col(Budget.scope) != BudgetScope.group, col(Budget.group_id) == group_id)
    )
    keys = sorted(
        (budget.id, period_start(budget.period, now)) for budget in session.exec(query).all()
    )
    for budget_id, start in keys:
        session.execute(_binds(ENSURE_USAGE), {"budget_id": budget_id, "period_start": start})
    if keys and session.get_bind().dialect.name == "postgresql":
        for budget_id, start in keys:
            session.execute(_binds(LOCK_USAGE), {"budget_id": budget_id, "period_start": start})


def reserve(
    session: Session,
    *,
    item_id: uuid.UUID,
    provider: InferenceProvider,
    group_id: uuid.UUID | None,
    credits: int,
    now: datetime | None = None,
    shadow: bool = False,
) -> None:
    """Reserve `credits` for the item on every budget it spends against (`shadow`: an A/B
    sample's, the shadow budgets), or on none: raises BudgetExceeded (naming the cap and what
    is left) when one would be passed."""
    if credits <= 0:
        return
    now = now or utcnow()
    found = applicable(session, provider=provider, group_id=group_id, shadow=shadow)
    budgets = sorted(found, key=_key(now))
    if not budgets:
        return
    with session.begin_nested():  # all of them or none
        for budget in budgets:
            start = period_start(budget.period, now)
            params = {"budget_id": budget.id, "period_start": start}
            session.execute(_binds(ENSURE_USAGE), params)
            reserved = session.execute(
                _binds(RESERVE), {**params, "credits": credits, "cap": budget.cap_credits}
            )
            if rowcount(reserved) == 0:
                usage = session.get(BudgetUsage, (budget.id, start), populate_existing=True)
                left = budget.cap_credits - (usage.reserved + usage.spent if usage else 0)
                raise BudgetExceeded(
                    f"the budget {describe(budget)} ({dollars(budget.cap_credits)}) has "
                    f"{dollars(max(left, 0))} left; this video needs about {dollars(credits)}",
                    budget=budget,
                    left=max(left, 0),
                )
            session.add(
                BudgetReservation(
                    item_id=item_id, budget_id=budget.id, period_start=start, credits=credits
                )
            )
        session.flush()


def _key(now: datetime) -> Callable[[Budget], tuple[uuid.UUID, date]]:
    """Budgets in lock order (lock_budgets' order)."""
    return lambda budget: (budget.id, period_start(budget.period, now))


def settle(session: Session, *, item_id: uuid.UUID, spent_credits: int) -> None:
    """The item ended: its reservations become what it really cost (0 releases them)."""
    reservations = session.exec(
        select(BudgetReservation)
        .where(BudgetReservation.item_id == item_id)
        .order_by(col(BudgetReservation.budget_id), col(BudgetReservation.period_start))
    ).all()
    for reservation in reservations:
        session.execute(
            _binds(UNRESERVE),
            {
                "budget_id": reservation.budget_id,
                "period_start": reservation.period_start,
                "reserved": reservation.credits,
                "spent": max(spent_credits, 0),
            },
        )
        session.delete(reservation)
    session.flush()


def settle_item(session: Session, item: VideoItem) -> None:
    """`settle` the item with what it spent since its last redo: its cost, less what its
    earlier videos cost (`item_redos`: settled when each was made)."""
    redone = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(ItemRedo.cost_credits), 0)).where(
            col(ItemRedo.item_id) == item.id
        )
    ).scalar_one()
    settle(session, item_id=item.id, spent_credits=max(0, (item.cost_credits or 0) - int(redone)))


def release(session: Session, *, item_id: uuid.UUID) -> None:
    """Give back what the item reserved (it was cancelled, failed uncharged, or re-routed)."""
    settle(session, item_id=item_id, spent_credits=0)


def check_budgets(
    session: Session,
    *,
    provider: InferenceProvider,
    group_id: uuid.UUID | None,
    credits: int,
    now: datetime | None = None,
) -> BudgetExceeded | None:
    """Whether reserving `credits` now would pass a cap (without reserving anything)."""
    now = now or utcnow()
    for budget in applicable(session, provider=provider, group_id=group_id):
        usage = session.get(BudgetUsage, (budget.id, period_start(budget.period, now)))
        used = usage.reserved + usage.spent if usage else 0
        if used + credits > budget.cap_credits:
            left = max(0, budget.cap_credits - used)
            return BudgetExceeded(
                f"the budget {describe(budget)} has {dollars(left)} left",
                budget=budget,
                left=left,
            )
    return None
