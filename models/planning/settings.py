"""The planning room's settings group (routing), and what planning reads of the settings.

The composed `Settings` is `reelroute.models.assembly.settings`; this room reads only the groups of
its config Protocol below (or what it is handed).
"""

from __future__ import annotations

from typing import Protocol

from pydantic import field_validator

from reelroute.models.core.enums import GroupPriority, InferenceProvider
from reelroute.models.core.settings import (
    Group,
    setting,
)
from reelroute.models.items.settings import ItemsConfig


class RoutingSettings(Group):
    """Who makes an auto-routed item, and by when it is due."""

    default_provider: InferenceProvider = setting(
        InferenceProvider.runway_gen4_turbo,
        env="DEFAULT_PROVIDER",
        description="Provider of items with no explicit choice and no group rule.",
    )
    policy: str = setting(
        "deadline",
        env="ROUTING_POLICY",
        description="deadline (cheapest provider predicted on time) or threshold (the seed's "
        "rules: group priority, default provider, Wan fallback on a queue length).",
    )
    deadline_urgent_seconds: int = setting(
        20 * 60, env="DEADLINE_URGENT_SECONDS", ge=60, description="Target of urgent groups."
    )
    deadline_normal_seconds: int = setting(
        4 * 3600, env="DEADLINE_NORMAL_SECONDS", ge=60, description="Target of normal groups."
    )
    deadline_high_quality_seconds: int = setting(
        3 * 3600,
        env="DEADLINE_HIGH_QUALITY_SECONDS",
        ge=60,
        description="Time-to-video target of high-quality groups.",
    )
    eta_refresh_seconds: float = setting(
        10.0,
        env="ETA_REFRESH_SECONDS",
        gt=0,
        description="How often the dispatcher replays the queues for ETAs.",
    )
    wan_fallback_threshold: int = setting(
        50,
        env="WAN_FALLBACK_THRESHOLD",
        ge=0,
        description="Default-routed Wan items go to Gen-4 Turbo while more than this wait.",
    )
    count_redos: bool = setting(
        True,
        env="ROUTING_COUNT_REDOS",
        description="The deadline policy weighs each option by its expected cost and finish, "
        "counting the chance that its video is made again (docs/routing.md).",
    )

    @field_validator("policy")
    @classmethod
    def _routing_policy(cls, value: str) -> str:
        if value not in {"deadline", "threshold"}:
            raise ValueError("use deadline or threshold")
        return value

    def deadline_seconds(self, priority: GroupPriority) -> int:
        """The default time-to-video target of a group of `priority`."""
        return {
            GroupPriority.urgent: self.deadline_urgent_seconds,
            GroupPriority.normal: self.deadline_normal_seconds,
            GroupPriority.high_quality: self.deadline_high_quality_seconds,
        }[priority]


class PlanningConfig(ItemsConfig, Protocol):
    """What `planning` reads of the settings, and what it hands to the rooms below."""

    @property
    def routing(self) -> RoutingSettings: ...
