"""Circuit breakers: closed (items go), open (nothing goes until the next probe), half-open (one
probe item is under way).

- A **Runway model**'s (`model:runway_gen4_turbo`) and a **GPU host**'s (`host:gpu-a`) breaker
  opens when, over the last REELROUTE_BREAKER_WINDOW_SECONDS, at least
  REELROUTE_BREAKER_MIN_FAILURES of its attempts failed and they are at least
  REELROUTE_BREAKER_FAILURE_RATE of them; or at once on a daily cap, the balance, or a setting
  to fix (`provider_exhausted`, `provider_config`), until the reset Runway reports.
- A **pool**'s (`pool:gpu`) opens when REELROUTE_BREAKER_RUNS_NOT_STARTED flow runs in a row
  ended before they claimed their item (a broken deployment or worker), instead of failing
  items one after another.
- After its cooldown one item probes it (the dispatcher sends it, `gate`); its success closes
  the breaker, its failure opens it again with twice the cooldown (up to
  REELROUTE_BREAKER_MAX_COOLDOWN_SECONDS).

Every transition is logged with its reason and written as a `provider.opened` or
`provider.closed` event (the SSE stream, webhooks). The row is locked while it changes
(PostgreSQL), so processes on several hosts agree.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.core.catalogue import CATALOGUE
from reelroute.models.core.enums import (
    BreakerState,
    EventType,
    FailureClass,
    InferenceProvider,
    Pool,
)
from reelroute.models.core.failures import RULES
from reelroute.models.core.tables import utcnow
from reelroute.models.health.settings import HealthConfig
from reelroute.models.health.tables import Breaker, BreakerOutcome
from reelroute.models.outbox.events import record_subject

log = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("6f1d8a2e-5c1b-4f7e-9d3a-2b8e7c4a1f00")
KEEP_OUTCOMES = timedelta(days=1)
"""Outcomes older than this are deleted (the admin page counts the last day)."""


def model_breaker(provider: InferenceProvider) -> str:
    """The breaker of a Runway model (by provider)."""
    return f"model:{provider.value}"


def host_breaker(host: str) -> str:
    """The breaker of a GPU host."""
    return f"host:{host}"


def pool_breaker(pool: Pool) -> str:
    """The breaker of a pool (runs that never start)."""
    return f"pool:{pool.value}"


def breaker_id(name: str) -> uuid.UUID:
    """A breaker's fixed id (its events' `item_id`)."""
    return uuid.uuid5(NAMESPACE, name)


def label(name: str) -> str:
    """What the admin reads: `Gen-4 Turbo`, `GPU host gpu-a`, `pool gpu`."""
    kind, _, rest = name.partition(":")
    if kind == "model":
        try:
            full = CATALOGUE[InferenceProvider(rest)].label  # "Runway Gen-4 Turbo (fast)"
        except ValueError:
            return rest
        return full.removeprefix("Runway ").split(" (")[0]
    return f"GPU host {rest}" if kind == "host" else f"pool {rest}"


@dataclass(frozen=True)
class Transition:
    """A breaker changed state."""

    name: str
    before: BreakerState
    after: BreakerState
    reason: str


def _locked(session: Session, name: str, now: datetime) -> Breaker:
    """The breaker's row, locked for this transaction (made, closed, when new)."""
    statement = select(Breaker).where(col(Breaker.name) == name)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    found = session.exec(statement.execution_options(populate_existing=True)).first()
    if found is not None:
        return found
    inserted = sa.insert(Breaker).values(name=name, state=BreakerState.closed, updated_at=now)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        inserted = insert(Breaker).values(name=name, state="closed", updated_at=now)
        inserted = inserted.on_conflict_do_nothing(index_elements=["name"])
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        inserted = sqlite_insert(Breaker).values(name=name, state="closed", updated_at=now)
        inserted = inserted.on_conflict_do_nothing(index_elements=["name"])
    session.execute(inserted)
    found = session.exec(statement.execution_options(populate_existing=True)).first()
    assert found is not None
    return found


def _when(moment: datetime) -> str:
    return f"{moment:%H:%M:%S} UTC"


def _transition(
    session: Session,
    breaker: Breaker,
    state: BreakerState,
    reason: str,
    now: datetime,
    *,
    failure_class: FailureClass | None = None,
    cooldown: float | None = None,
) -> Transition:
    before = breaker.state
    breaker.state = state
    breaker.reason = reason
    breaker.updated_at = now
    if state is BreakerState.open:
        assert cooldown is not None
        if before is BreakerState.closed:
            breaker.opened_at = now
        breaker.failure_class = failure_class
        breaker.cooldown_seconds = cooldown
        breaker.next_probe_at = now + timedelta(seconds=cooldown)
        breaker.probe_item_id = breaker.probe_started_at = None
    elif state is BreakerState.closed:
        breaker.opened_at = breaker.next_probe_at = None
        breaker.probe_item_id = breaker.probe_started_at = None
        breaker.cooldown_seconds = 0.0
        breaker.failure_class = None
    session.add(breaker)
    change = Transition(breaker.name, before, state, reason)
    log.warning("breaker %s: %s -> %s: %s", breaker.name, before.value, state.value, reason)
    # half-open -> open after a failed probe is no news: it was not open to anyone
    news = not (before is BreakerState.half_open and state is BreakerState.open)
    if before is not state and state in (BreakerState.open, BreakerState.closed) and news:
        _event(session, breaker, state, reason, now)
    return change


def _event(
    session: Session, breaker: Breaker, state: BreakerState, reason: str, now: datetime
) -> None:
    kind = EventType.provider_opened if state is BreakerState.open else EventType.provider_closed
    if state is BreakerState.open and breaker.next_probe_at is not None:
        reason = f"{reason}; next probe {_when(breaker.next_probe_at)}"
    kind_of, _, rest = breaker.name.partition(":")
    if kind_of == "model":
        provider = rest
    else:  # a GPU host's breaker, or a pool's: the gpu pool is Wan's
        provider = (
            Pool.cloud.value if rest == Pool.cloud.value else InferenceProvider.wan_local.value
        )
    record_subject(
        session,
        subject=breaker.name,
        subject_id=breaker_id(breaker.name),
        kind=kind,
        status=state.value,
        provider=provider,
        detail=f"{label(breaker.name)}: {reason}",
        now=now,
    )


def _window(session: Session, name: str, since: datetime) -> tuple[int, int, dict[str, int]]:
    """(failures, outcomes, failures by class) of `name` since `since`."""
    rows = session.execute(
        sa.select(col(BreakerOutcome.ok), col(BreakerOutcome.failure_class), sa.func.count())
        .where(col(BreakerOutcome.breaker) == name, col(BreakerOutcome.at) >= since)
        .group_by(col(BreakerOutcome.ok), col(BreakerOutcome.failure_class))
    ).all()
    failures = total = 0
    by_class: dict[str, int] = {}
    for ok, failure_class, count in rows:
        total += count
        if not ok:
            failures += count
            key = failure_class.value if failure_class is not None else "unknown"
            by_class[key] = by_class.get(key, 0) + count
    return failures, total, by_class


def _streak(session: Session, name: str, limit: int) -> int:
    """Failures in a row at the end of `name`'s outcomes (at most `limit` looked at)."""
    rows = session.execute(
        sa.select(col(BreakerOutcome.ok))
        .where(col(BreakerOutcome.breaker) == name)
        .order_by(col(BreakerOutcome.id).desc())
        .limit(limit)
    ).all()
    streak = 0
    for (ok,) in rows:
        if ok:
            break
        streak += 1
    return streak


def record_success(
    session: Session, *, name: str, item_id: uuid.UUID | None = None, now: datetime | None = None
) -> Transition | None:
    """An attempt of what `name` guards succeeded (it closes an open breaker: a probe, or an
    item that was under way when it opened)."""
    now = now or utcnow()
    breaker = _locked(session, name, now)
    session.add(BreakerOutcome(breaker=name, at=now, ok=True))
    if breaker.state is BreakerState.closed:
        return None
    why = "a probe succeeded" if item_id == breaker.probe_item_id else "an attempt succeeded"
    return _transition(session, breaker, BreakerState.closed, why, now)


def needs_success(session: Session, name: str) -> bool:
    """Whether a success of `name` would change anything: its breaker is not closed, or its
    last outcome was a failure (a streak to end)."""
    breaker = session.get(Breaker, name)
    if breaker is None:
        return False
    if breaker.state is not BreakerState.closed:
        return True
    last = session.execute(
        sa.select(col(BreakerOutcome.ok))
        .where(col(BreakerOutcome.breaker) == name)
        .order_by(col(BreakerOutcome.id).desc())
        .limit(1)
    ).first()
    return last is not None and not last[0]


def record_outcome(
    session: Session,
    settings: HealthConfig,
    *,
    name: str,
    ok: bool,
    failure_class: FailureClass | None = None,
    reason: str | None = None,
    retry_after: float | None = None,
    item_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Transition | None:
    """One attempt's outcome for the breaker `name` (in the caller's transaction); returns the
    transition it caused, if any."""
    now = now or utcnow()
    health = settings.health
    rule = RULES[failure_class] if failure_class is not None else None
    provider_blameless = rule is not None and not rule.trips and not rule.opens_at_once
    if not ok and provider_blameless and not name.startswith("pool:"):
        return None  # not the provider's doing (input, infra on a model or host)
    breaker = _locked(session, name, now)
    session.add(BreakerOutcome(breaker=name, at=now, ok=ok, failure_class=failure_class))
    session.flush()
    what = reason or (failure_class.value if failure_class else "a failure")
    if ok:
        if breaker.state is BreakerState.closed:
            return None
        return _transition(
            session,
            breaker,
            BreakerState.closed,
            "a probe succeeded" if item_id else "a success",
            now,
        )
    if rule is not None and rule.opens_at_once:
        cooldown = retry_after or (
            health.exhausted_seconds
            if failure_class is FailureClass.provider_exhausted
            else health.cooldown_seconds
        )
        return _transition(
            session,
            breaker,
            BreakerState.open,
            what,
            now,
            failure_class=failure_class,
            cooldown=min(max(cooldown, 1.0), max(health.max_cooldown_seconds, cooldown)),
        )
    if breaker.state is BreakerState.half_open:
        if breaker.probe_item_id is not None and item_id != breaker.probe_item_id:
            return None  # another item's failure: the probe's outcome decides
        doubled = breaker.cooldown_seconds * 2 or health.cooldown_seconds
        cooldown = min(doubled, health.max_cooldown_seconds)
        return _transition(
            session,
            breaker,
            BreakerState.open,
            f"the probe failed: {what}",
            now,
            failure_class=failure_class,
            cooldown=cooldown,
        )
    if breaker.state is BreakerState.open:
        return None
    if name.startswith("pool:"):
        streak = _streak(session, name, health.runs_not_started)
        if streak < health.runs_not_started:
            return None
        why = f"{streak} flow runs in a row ended before they started: {what}"
    else:
        failures, total, _ = _window(session, name, now - timedelta(seconds=health.window_seconds))
        if failures < health.min_failures or failures < health.failure_rate * total:
            return None
        minutes = health.window_seconds / 60
        why = f"{failures} of its last {total} attempts failed in {minutes:g} min: {what}"
    return _transition(
        session,
        breaker,
        BreakerState.open,
        why,
        now,
        failure_class=failure_class,
        cooldown=health.cooldown_seconds,
    )


def probe_stale_after(settings: HealthConfig) -> timedelta:
    """A probe not heard of this long is given up (its run never came, or died unseen)."""
    return timedelta(
        seconds=settings.items.lease_seconds + settings.items.run_start_timeout_seconds
    )


def gate(breaker: Breaker | None, now: datetime, stale_after: timedelta) -> int | None:
    """How many items may go to what `breaker` guards now: None (no limit), 0, or 1 (a probe)."""
    if breaker is None or breaker.state is BreakerState.closed:
        return None
    if breaker.state is BreakerState.open:
        due = breaker.next_probe_at is None or now >= breaker.next_probe_at
        return 1 if due else 0
    started = breaker.probe_started_at
    return 1 if started is None or now - started > stale_after else 0


def begin_probe(session: Session, name: str, item_id: uuid.UUID | None, now: datetime) -> None:
    """`item_id` is the probe of the breaker `name` (half-open); None: the next outcome is the
    probe's (a GPU host taking items again)."""
    breaker = _locked(session, name, now)
    if breaker.state is BreakerState.closed:
        return
    before = breaker.state
    breaker.state = BreakerState.half_open
    breaker.probe_item_id, breaker.probe_started_at, breaker.updated_at = item_id, now, now
    session.add(breaker)
    log.warning("breaker %s: %s -> half_open: item %s probes it", name, before.value, item_id)


def read_breakers(session: Session) -> dict[str, Breaker]:
    """Every breaker, by name."""
    return {b.name: b for b in session.exec(select(Breaker)).all()}


def unavailable(session: Session, now: datetime | None = None) -> dict[InferenceProvider, str]:
    """The Runway models whose breaker is not closed, with why they wait (for routing, the
    queue page and the items' API): `Gen-4 Turbo unavailable since 12:03:10 UTC (…), next probe
    12:08:10 UTC`.

    An open breaker whose probe is due counts as available: with every item routed elsewhere,
    nothing would be left to probe it, and the model would stay shut for the day. Routing may
    send items to it again; the dispatcher lets one of them go as the probe, and if it fails
    the breaker opens again and the rest move off."""
    now = now or utcnow()
    found: dict[InferenceProvider, str] = {}
    query = select(Breaker).where(
        col(Breaker.name).startswith("model:"), col(Breaker.state) != BreakerState.closed
    )
    for breaker in session.exec(query).all():
        due = breaker.next_probe_at is not None and breaker.next_probe_at <= now
        if breaker.state is BreakerState.open and due:
            continue
        try:
            provider = InferenceProvider(breaker.name.removeprefix("model:"))
        except ValueError:
            continue
        found[provider] = waiting_reason(breaker)
    return found


def waiting_reason(breaker: Breaker) -> str:
    """Why items of `breaker` wait."""
    since = f" since {_when(breaker.opened_at)}" if breaker.opened_at else ""
    if breaker.state is BreakerState.half_open:
        nxt = "a probe is under way"
    elif breaker.next_probe_at is not None:
        nxt = f"next probe {_when(breaker.next_probe_at)}"
    else:
        nxt = "probing"
    return f"{label(breaker.name)} unavailable{since} ({breaker.reason}), {nxt}"


def failures_by_class(session: Session, name: str, *, since: datetime) -> dict[str, int]:
    """`name`'s failures since `since`, by class (the admin page)."""
    return _window(session, name, since)[2]


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Delete outcomes older than KEEP_OUTCOMES; returns how many."""
    before = (now or utcnow()) - KEEP_OUTCOMES
    done = session.execute(sa.delete(BreakerOutcome).where(col(BreakerOutcome.at) < before))
    return int(getattr(done, "rowcount", 0) or 0)
