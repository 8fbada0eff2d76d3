"""Deciding who makes a video and when it will be ready: service-time estimates, ETA lanes
replayed on each provider's slots, the routing snapshot and policies, and the replanning that
moves waiting items. Pure functions of a snapshot where possible, so `reelroute replay` runs the
same code on a simulated clock."""

from __future__ import annotations

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
