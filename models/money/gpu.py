"""What the GPU hosts cost: a price per GPU-hour per GPU class (REELROUTE_GPU_HOUR_COST) and how
the hosts are billed (REELROUTE_GPU_BILLING).

- `always-on`: the hosts cost their hours, busy or idle (owned GPUs, or rented ones left on).
  A Wan video adds nothing to the bill: its marginal cost is zero, and routing treats it so.
- `per-second`: the hosts bill only while they make videos (serverless GPUs). A Wan video costs
  its GPU seconds times the price; routing compares that with the paid models' credits.

Either way each Wan attempt that made a video records its GPU seconds (claim to video) and what
they cost at its class's price (`video_items.gpu_seconds`, `gpu_dollars`, and the `gpu_tallies`
the metrics read): the share of the bill each video used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reelroute.models.money.settings import MoneyConfig

SECONDS_PER_HOUR = 3600.0
CREDITS_PER_DOLLAR = 100.0


@dataclass(frozen=True)
class GpuPrices:
    """Dollars per GPU-hour by GPU class key, and the billing."""

    hourly: dict[str, float] = field(default_factory=dict)
    """Class key (lower case, `*`: every class not named) -> dollars per hour."""
    per_second_billing: bool = False

    @classmethod
    def of(cls, settings: MoneyConfig) -> GpuPrices:
        """The prices the settings give."""
        return cls(settings.gpu.prices, settings.gpu.billing == "per-second")

    def hour_cost(self, gpu_class: str | None) -> float:
        """Dollars per hour of one GPU of `gpu_class`: the key equal to the class, else the
        longest key the class's name contains (`h100` in `NVIDIA H100 80GB HBM3`), else `*`,
        else 0."""
        name = (gpu_class or "").lower()
        if name in self.hourly:
            return self.hourly[name]
        named = [key for key in self.hourly if key != "*" and key in name]
        if named:
            return self.hourly[max(named, key=len)]
        return self.hourly.get("*", 0.0)

    def dollars(self, seconds: float, gpu_class: str | None) -> float:
        """What `seconds` of one GPU of `gpu_class` cost."""
        return max(0.0, seconds) * self.hour_cost(gpu_class) / SECONDS_PER_HOUR

    def marginal_credits_per_second(self, gpu_class: str | None) -> float:
        """What one more second of GPU work adds to the bill, in credits (1 credit = $0.01):
        its price under per-second billing, 0 for always-on hosts."""
        if not self.per_second_billing:
            return 0.0
        return self.hour_cost(gpu_class) * CREDITS_PER_DOLLAR / SECONDS_PER_HOUR

    @property
    def free(self) -> bool:
        """No GPU has a price (owned GPUs)."""
        return not any(self.hourly.values())
