"""Provider health: a circuit breaker per Runway model, per GPU host and per pool, shared by every
process through the database; fed by each attempt's outcome (models.core.failures classifies
the failures), read by routing, the dispatcher, the GPU hosts and the admin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelroute.models.core.lazy import load

if TYPE_CHECKING:
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

_WHERE = {
    "BEAT_EVERY": "reelroute.models.health.loops",
    "Breaker": "reelroute.models.health.tables",
    "Leadership": "reelroute.models.health.leadership",
    "LoopBeat": "reelroute.models.health.tables",
    "RoleView": "reelroute.models.health.leadership",
    "beat": "reelroute.models.health.loops",
    "begin_probe": "reelroute.models.health.breakers",
    "breakers": "reelroute.models.health.breakers",
    "failures_by_class": "reelroute.models.health.breakers",
    "gate": "reelroute.models.health.breakers",
    "host_breaker": "reelroute.models.health.breakers",
    "label": "reelroute.models.health.breakers",
    "model_breaker": "reelroute.models.health.breakers",
    "needs_success": "reelroute.models.health.breakers",
    "pool_breaker": "reelroute.models.health.breakers",
    "probe_stale_after": "reelroute.models.health.breakers",
    "read_beats": "reelroute.models.health.loops",
    "read_breakers": "reelroute.models.health.breakers",
    "read_roles": "reelroute.models.health.leadership",
    "record_outcome": "reelroute.models.health.breakers",
    "record_success": "reelroute.models.health.breakers",
    "tables": "reelroute.models.health.tables",
    "unavailable": "reelroute.models.health.breakers",
    "waiting_reason": "reelroute.models.health.breakers",
}
"""Each public name's module, imported when the name is first used."""


def __getattr__(name: str) -> object:
    """A public name, loaded on first use (models.core.lazy)."""
    return load(__name__, _WHERE, name)
