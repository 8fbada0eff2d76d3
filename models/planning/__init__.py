"""Deciding who makes a video and when it will be ready: service-time estimates, ETA lanes
replayed on each provider's slots, the routing snapshot and policies, and the replanning that
moves waiting items. Pure functions of a snapshot where possible, so `reelroute replay` runs the
same code on a simulated clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelroute.models.core.lazy import load

if TYPE_CHECKING:
    from reelroute.models.planning import tables
    from reelroute.models.planning.acceptance import Acceptance, Verdicts, preset_name, wilson
    from reelroute.models.planning.demand import demand_of, store_demand
    from reelroute.models.planning.estimates import Estimates, quantiles
    from reelroute.models.planning.eta import Waiting
    from reelroute.models.planning.hosts import ALIVE_WITHIN, forget_host, report_host
    from reelroute.models.planning.redo import escalate_to_next_option, reject_and_redo
    from reelroute.models.planning.replanning import (
        Move,
        StoredEtas,
        eta_of,
        moves_of,
        prune_moves,
        reroute_waiting,
        store_etas,
    )
    from reelroute.models.planning.routing import (
        Policy,
        RouteRequest,
        RoutingDecision,
        RoutingOptions,
        allowed_for,
        default_allowed,
        route,
    )
    from reelroute.models.planning.settings import PlanningConfig, RoutingSettings
    from reelroute.models.planning.snapshot import Snapshot, build_snapshot, read_service_times
    from reelroute.models.planning.tables import GpuDemand, GpuHost

__all__ = [
    "ALIVE_WITHIN",
    "Acceptance",
    "Estimates",
    "GpuDemand",
    "GpuHost",
    "Move",
    "PlanningConfig",
    "Policy",
    "RouteRequest",
    "RoutingDecision",
    "RoutingOptions",
    "RoutingSettings",
    "Snapshot",
    "StoredEtas",
    "Verdicts",
    "Waiting",
    "allowed_for",
    "build_snapshot",
    "default_allowed",
    "demand_of",
    "escalate_to_next_option",
    "eta_of",
    "forget_host",
    "moves_of",
    "preset_name",
    "prune_moves",
    "quantiles",
    "read_service_times",
    "reject_and_redo",
    "report_host",
    "reroute_waiting",
    "route",
    "store_demand",
    "store_etas",
    "tables",
    "wilson",
]

_WHERE = {
    "ALIVE_WITHIN": "reelroute.models.planning.hosts",
    "Acceptance": "reelroute.models.planning.acceptance",
    "Estimates": "reelroute.models.planning.estimates",
    "GpuDemand": "reelroute.models.planning.tables",
    "GpuHost": "reelroute.models.planning.tables",
    "Move": "reelroute.models.planning.replanning",
    "PlanningConfig": "reelroute.models.planning.settings",
    "Policy": "reelroute.models.planning.routing",
    "RouteRequest": "reelroute.models.planning.routing",
    "RoutingDecision": "reelroute.models.planning.routing",
    "RoutingOptions": "reelroute.models.planning.routing",
    "RoutingSettings": "reelroute.models.planning.settings",
    "Snapshot": "reelroute.models.planning.snapshot",
    "StoredEtas": "reelroute.models.planning.replanning",
    "Verdicts": "reelroute.models.planning.acceptance",
    "Waiting": "reelroute.models.planning.eta",
    "allowed_for": "reelroute.models.planning.routing",
    "build_snapshot": "reelroute.models.planning.snapshot",
    "default_allowed": "reelroute.models.planning.routing",
    "demand_of": "reelroute.models.planning.demand",
    "escalate_to_next_option": "reelroute.models.planning.redo",
    "eta_of": "reelroute.models.planning.replanning",
    "forget_host": "reelroute.models.planning.hosts",
    "moves_of": "reelroute.models.planning.replanning",
    "preset_name": "reelroute.models.planning.acceptance",
    "prune_moves": "reelroute.models.planning.replanning",
    "quantiles": "reelroute.models.planning.estimates",
    "read_service_times": "reelroute.models.planning.snapshot",
    "reject_and_redo": "reelroute.models.planning.redo",
    "report_host": "reelroute.models.planning.hosts",
    "reroute_waiting": "reelroute.models.planning.replanning",
    "route": "reelroute.models.planning.routing",
    "store_demand": "reelroute.models.planning.demand",
    "store_etas": "reelroute.models.planning.replanning",
    "tables": "reelroute.models.planning.tables",
    "wilson": "reelroute.models.planning.acceptance",
}
"""Each public name's module, imported when the name is first used."""


def __getattr__(name: str) -> object:
    """A public name, loaded on first use (models.core.lazy)."""
    return load(__name__, _WHERE, name)
