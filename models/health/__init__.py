"""Provider health: a circuit breaker per Runway model, per GPU host and per pool, shared by every
process through the database; fed by each attempt's outcome (models.core.failures classifies
the failures), read by routing, the dispatcher, the GPU hosts and the admin."""

from __future__ import annotations

from reelroute.models.health import breakers, tables
from reelroute.models.health.breakers import (
    begin_probe,
    failures_by_class,
    gate,
    host_breaker,
    label,
    model_breaker,
    needs_success,
    pool_breaker,
    probe_stale_after,
    read_breakers,
    record_outcome,
    record_success,
    unavailable,
    waiting_reason,
)
from reelroute.models.health.leadership import Leadership, RoleView, read_roles
from reelroute.models.health.loops import BEAT_EVERY, beat, read_beats
from reelroute.models.health.tables import Breaker, LoopBeat

__all__ = [
    "BEAT_EVERY",
    "Breaker",
    "Leadership",
    "LoopBeat",
    "RoleView",
    "beat",
    "begin_probe",
    "breakers",
    "failures_by_class",
    "gate",
    "host_breaker",
    "label",
    "model_breaker",
    "needs_success",
    "pool_breaker",
    "probe_stale_after",
    "read_beats",
    "read_breakers",
    "read_roles",
    "record_outcome",
    "record_success",
    "tables",
    "unavailable",
    "waiting_reason",
]
