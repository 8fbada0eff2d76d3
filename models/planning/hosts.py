"""GPU hosts as they report themselves: each `reelroute worker --pool gpu` writes its GPUs, GPU
class and preset every HEALTH_EVERY seconds. The planner replays Wan's queue on the slots of the
hosts seen lately, each at its own speed; the admin and the metrics read them too."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from reelroute.models.core.tables import utcnow
from reelroute.models.planning.tables import GpuHost

ALIVE_WITHIN = timedelta(minutes=2)
"""A host not seen for this long is taken for gone (it reports every half minute)."""


def report_host(
    session: Session,
    *,
    name: str,
    gpu_class: str,
    preset: str,
    slots: int,
    full_quality: bool = True,
    loads: int = 0,
    videos: int = 0,
    now: datetime | None = None,
) -> GpuHost:
    """Record that the host `name` is up with these GPUs and preset (`full_quality`: the preset
    keeps the model card's quality); its first report sets its start."""
    now = now or utcnow()
    host = session.get(GpuHost, name, populate_existing=True)
    if host is None:
        host = GpuHost(name=name, gpu_class=gpu_class, preset=preset, slots=slots, started_at=now)
    host.gpu_class, host.preset, host.slots = gpu_class, preset, slots
    host.full_quality = full_quality
    host.loads, host.videos, host.seen_at = loads, videos, now
    session.add(host)
    session.flush()
    return host


def live_hosts(session: Session, *, now: datetime | None = None) -> list[GpuHost]:
    """The hosts seen within ALIVE_WITHIN, by name."""
    since = (now or utcnow()) - ALIVE_WITHIN
    query = select(GpuHost).where(col(GpuHost.seen_at) >= since).order_by(col(GpuHost.name))
    return list(session.exec(query).all())


def forget_host(session: Session, name: str) -> None:
    """A host that stopped on purpose says so (its slots leave Wan's lane at once)."""
    session.execute(sa.delete(GpuHost).where(col(GpuHost.name) == name))
