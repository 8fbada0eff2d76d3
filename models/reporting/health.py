"""Provider health as the admin reads it: every Runway model, every GPU host seen in the last
day and both pools, with the state of its breaker, why it opened, the next probe and its
failures by class (the Providers page and `GET /api/admin/providers`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from reelroute.models.core.enums import BreakerState, InferenceProvider, Pool
from reelroute.models.core.tables import utcnow
from reelroute.models.health.breakers import (
    failures_by_class,
    host_breaker,
    label,
    model_breaker,
    pool_breaker,
    read_breakers,
    waiting_reason,
)
from reelroute.models.planning.hosts import ALIVE_WITHIN
from reelroute.models.planning.tables import GpuHost


@dataclass(frozen=True)
class ProviderHealth:
    """One breaker as the admin sees it."""

    name: str
    """`model:runway_gen4_turbo`, `host:gpu-a`, `pool:gpu`."""
    label: str
    kind: str
    """model, host or pool."""
    state: BreakerState
    reason: str | None
    opened_at: datetime | None
    next_probe_at: datetime | None
    failures_hour: dict[str, int] = field(default_factory=dict)
    """Failures in the last hour, by class."""
    failures_day: dict[str, int] = field(default_factory=dict)
    detail: str | None = None
    """A GPU host's preset and GPU, and whether it is up."""
    waiting: str | None = None
    """What a waiting item of it is told (open or half-open)."""


def provider_health(session: Session, now: datetime | None = None) -> list[ProviderHealth]:
    """Every model, host (seen in the last day) and pool, models first."""
    now = now or utcnow()
    breakers = read_breakers(session)
    names = [model_breaker(p) for p in InferenceProvider if p is not InferenceProvider.wan_local]
    hosts = {
        host.name: host
        for host in session.exec(
            select(GpuHost).where(col(GpuHost.seen_at) >= now - timedelta(days=1))
        ).all()
    }
    names += sorted(
        {host_breaker(name) for name in hosts}
        | {name for name in breakers if name.startswith("host:")}
    )
    names += [pool_breaker(pool) for pool in Pool]
    found = []
    for name in names:
        breaker = breakers.get(name)
        kind, _, rest = name.partition(":")
        detail = None
        if kind == "host" and rest in hosts:
            host = hosts[rest]
            up = (
                "up"
                if now - host.seen_at <= ALIVE_WITHIN
                else "not seen since " + (f"{host.seen_at:%H:%M} UTC")
            )
            detail = f"{host.preset} on {host.slots} x {host.gpu_class}, {up}"
        state = breaker.state if breaker is not None else BreakerState.closed
        found.append(
            ProviderHealth(
                name=name,
                label=label(name),
                kind=kind,
                state=state,
                reason=breaker.reason if breaker is not None else None,
                opened_at=breaker.opened_at if breaker is not None else None,
                next_probe_at=breaker.next_probe_at if breaker is not None else None,
                failures_hour=failures_by_class(session, name, since=now - timedelta(hours=1)),
                failures_day=failures_by_class(session, name, since=now - timedelta(days=1)),
                detail=detail,
                waiting=(
                    waiting_reason(breaker)
                    if breaker is not None and state is not BreakerState.closed
                    else None
                ),
            )
        )
    return found
