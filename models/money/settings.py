"""The money room's settings group (GPU-hour prices), and what money reads of the settings.

The composed `Settings` is `reelroute.models.assembly.settings`; this room reads only the groups of
its config Protocol below (or what it is handed).
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import field_validator

from reelroute.models.core.settings import (
    Group,
    setting,
)
from reelroute.models.health.settings import HealthConfig

GPU_BILLING = ("always-on", "per-second")


def parse_gpu_prices(text: str) -> dict[str, float]:
    """`REELROUTE_GPU_HOUR_COST` as {GPU class key: dollars per hour}: `2.5` (every class),
    `h100=2.10,h200=3.20`, or both (`h100=2.10,*=1.80`: `*` is every class not named).
    ValueError says how to write it."""
    prices: dict[str, float] = {}
    how = "write dollars per GPU-hour: 2.5, or per GPU class: h100=2.10,h200=3.20 (* = the rest)"
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, equals, value = part.rpartition("=")
        key = key.strip().lower() if equals else "*"
        try:
            price = float(value)
        except ValueError:
            raise ValueError(f"{part!r} is not a price; {how}") from None
        if not key or price < 0 or price != price or price == float("inf"):
            raise ValueError(f"{part!r}: a class and a price of 0 or more; {how}")
        if key in prices:
            raise ValueError(f"{key!r} is priced twice; {how}")
        prices[key] = price
    return prices


class GpuSettings(Group):
    """What the GPU hosts cost (docs/routing.md, "What a video really costs")."""

    hour_cost: str = setting(
        "0",
        env="GPU_HOUR_COST",
        description="Dollars per GPU-hour: one price (2.5) or per GPU class "
        "(h100=2.10,h200=3.20; * for the rest). A class key matches a host's GPU class when the "
        "class names it (h100 matches 'NVIDIA H100 80GB HBM3'). 0: owned GPUs, no cost.",
    )
    billing: Literal["always-on", "per-second"] = setting(
        "always-on",
        env="GPU_BILLING",
        description="always-on: the hosts cost their hours whether busy or idle, a Wan video "
        "adds nothing (routing treats it as free); per-second: hosts bill only while making "
        "videos (serverless GPUs), so each Wan video costs its GPU seconds and routing "
        "weighs that against the paid models.",
    )

    @field_validator("hour_cost")
    @classmethod
    def _prices(cls, value: str) -> str:
        parse_gpu_prices(value)
        return value

    @property
    def prices(self) -> dict[str, float]:
        """Dollars per hour per GPU class key (`*`: every class not named)."""
        return parse_gpu_prices(self.hour_cost)


class MoneyConfig(HealthConfig, Protocol):
    """What `money` reads of the settings, and what it hands to `health`."""

    @property
    def gpu(self) -> GpuSettings: ...
