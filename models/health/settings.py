"""The health room's settings group (circuit breakers), and what health reads of the settings.

The composed `Settings` is `reelroute.models.assembly.settings`; this room reads only the groups of
its config Protocol below (or what it is handed).
"""

from __future__ import annotations

from typing import Protocol

from reelroute.models.core.settings import (
    Group,
    SharedConfig,
    setting,
)


class HealthSettings(Group):
    """Circuit breakers per Runway model, GPU host and pool (docs/reliability.md)."""

    window_seconds: float = setting(
        300.0,
        env="BREAKER_WINDOW_SECONDS",
        gt=0,
        description="The sliding window whose failure rate opens a breaker.",
    )
    min_failures: int = setting(
        3,
        env="BREAKER_MIN_FAILURES",
        ge=1,
        description="Failures in the window before the rate can open a breaker.",
    )
    failure_rate: float = setting(
        0.5,
        env="BREAKER_FAILURE_RATE",
        gt=0,
        le=1,
        description="The share of failed attempts in the window that opens a breaker.",
    )
    cooldown_seconds: float = setting(
        60.0,
        env="BREAKER_COOLDOWN_SECONDS",
        gt=0,
        description="Wait before the first probe of an open breaker; doubles while probes fail.",
    )
    max_cooldown_seconds: float = setting(
        1800.0,
        env="BREAKER_MAX_COOLDOWN_SECONDS",
        gt=0,
        description="The longest wait between probes.",
    )
    exhausted_seconds: float = setting(
        3600.0,
        env="BREAKER_EXHAUSTED_SECONDS",
        gt=0,
        description="A model closed by a daily cap or the balance waits this long for its "
        "probe when Runway gives no Retry-After.",
    )
    runs_not_started: int = setting(
        5,
        env="BREAKER_RUNS_NOT_STARTED",
        ge=1,
        description="Flow runs of a pool in a row that never start before its breaker opens.",
    )


class HealthConfig(SharedConfig, Protocol):
    """What `health` reads of the settings (a function of it is typed with this)."""

    @property
    def health(self) -> HealthSettings: ...
