"""The items room's settings groups (dispatch, quality), and what items reads of the settings.

The composed `Settings` is `reelroute.models.assembly.settings`; this room reads only the groups of
its config Protocol below (or what it is handed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, Self

from pydantic import model_validator

from reelroute.models.core.enums import Pool, QualityAction
from reelroute.models.core.settings import (
    Group,
    setting,
)
from reelroute.models.money.settings import MoneyConfig


class DispatchSettings(Group):
    """The dispatcher and the reconciler: pools' slots and their loops' pace."""

    gpu_slots: int = setting(
        1, env="GPU_SLOTS", ge=1, description="Concurrency of the gpu pool: its GPUs."
    )
    cloud_slots: int = setting(
        5,
        env="CLOUD_SLOTS",
        ge=1,
        description="Concurrency of the cloud pool: your Runway tier's limit.",
    )
    lookahead: int = setting(
        1,
        env="DISPATCH_LOOKAHEAD",
        ge=0,
        description="Flow runs made per pool beyond its free slots, so a worker never waits.",
    )
    interval_seconds: float = setting(
        2.0, env="DISPATCH_INTERVAL_SECONDS", gt=0, description="How often Prefect is fed."
    )
    reconcile_interval_seconds: float = setting(
        15.0,
        env="RECONCILE_INTERVAL_SECONDS",
        gt=0,
        description="How often leases, crashed runs and cancels are checked.",
    )
    leader_poll_seconds: float = setting(
        2.0,
        env="LEADER_POLL_SECONDS",
        gt=0,
        le=10,
        description="PostgreSQL: how often the leader of the dispatcher (or of the webhook "
        "sender) checks its lock connection, and a standby tries to take over.",
    )
    leader_lease_seconds: float = setting(
        15.0,
        env="LEADER_LEASE_SECONDS",
        ge=5,
        le=300,
        description="PostgreSQL: a leader not heard of this long (its host gone, its network "
        "down) loses its lock to a standby; at least three polls.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_polls(self) -> Self:
        if self.leader_lease_seconds < 3 * self.leader_poll_seconds:
            raise ValueError(
                "REELROUTE_LEADER_LEASE_SECONDS must be at least three "
                "REELROUTE_LEADER_POLL_SECONDS (a live leader pings at every poll)"
            )
        return self

    def pool_slots(self, pool: Pool) -> int:
        """How many flow runs the pool runs at once (its Prefect concurrency limit)."""
        return self.gpu_slots if pool is Pool.gpu else self.cloud_slots


class QualitySettings(Group):
    """The automatic checks of every produced video (providers.quality), and what a failed one
    does; a group may choose its own action and thresholds (docs/quality.md)."""

    checks: bool = setting(
        True,
        env="QUALITY_CHECKS",
        description="Check every produced video before it counts as completed.",
    )
    action: QualityAction = setting(
        QualityAction.accept,
        env="QUALITY_ACTION",
        description="What a failed check does when the group chooses nothing: accept (record "
        "the scores only), review (hold the video for a person) or escalate (make it again on "
        "the group's next option; a paid video is held for review instead).",
    )
    min_luma_range: float = setting(
        24.0,
        env="QUALITY_MIN_LUMA_RANGE",
        ge=0,
        le=255,
        description="blank: the spread of brightness over the clip (1st to 99th percentile, "
        "0-255) at least this.",
    )
    min_motion: float = setting(
        0.3,
        env="QUALITY_MIN_MOTION",
        ge=0,
        le=255,
        description="frozen: the mean change between consecutive frames (0-255) at least this.",
    )
    max_flicker: float = setting(
        40.0,
        env="QUALITY_MAX_FLICKER",
        ge=0,
        le=255,
        description="flicker: no jump of mean brightness between frames (0-255) above this.",
    )
    min_first_frame_ssim: float = setting(
        0.5,
        env="QUALITY_MIN_FIRST_FRAME_SSIM",
        ge=-1,
        le=1,
        description="first_frame: the structural similarity of the first frame and the photo "
        "at least this (the image-to-video contract).",
    )

    prior_acceptance: float = setting(
        0.9,
        env="QUALITY_PRIOR_ACCEPTANCE",
        ge=0,
        le=1,
        description="Routing: the share of an option's videos taken to be kept before any is "
        "judged (each group's own count weighs in over it, models.planning.acceptance).",
    )
    prior_weight: float = setting(
        10.0,
        env="QUALITY_PRIOR_WEIGHT",
        ge=0,
        description="Routing: how many judged videos the prior acceptance is worth.",
    )
    max_wan_rejection: float = setting(
        0.5,
        env="QUALITY_MAX_WAN_REJECTION",
        ge=0,
        le=1,
        description="Routing: a group whose Wan videos are made again more often than this "
        "share goes to a paid option (once it has QUALITY_MIN_VERDICTS judged Wan videos).",
    )
    min_verdicts: int = setting(
        10,
        env="QUALITY_MIN_VERDICTS",
        ge=1,
        description="Routing: judged Wan videos of a group before QUALITY_MAX_WAN_REJECTION "
        "applies to it.",
    )

    def thresholds(self, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
        """The thresholds by name, a group's `overrides` over these settings."""
        found = {name: float(getattr(self, name)) for name in THRESHOLDS}
        for name, value in (overrides or {}).items():
            if name not in THRESHOLDS:
                raise ValueError(f"no threshold {name!r}; one of {', '.join(THRESHOLDS)}")
            found[name] = float(value)
        return found


THRESHOLDS = ("min_luma_range", "min_motion", "max_flicker", "min_first_frame_ssim")
"""The checks' thresholds a group may override (QualitySettings' fields of those names)."""


class ItemsConfig(MoneyConfig, Protocol):
    """What `items` reads of the settings, and what it hands to the rooms below."""

    @property
    def dispatch(self) -> DispatchSettings: ...

    @property
    def quality(self) -> QualitySettings: ...
