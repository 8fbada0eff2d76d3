"""Every provider in one place: its model, what the admin sees, what it accepts, its price and
its usual speed (its pool is models.core.enums.POOL_OF).

It lives in `models` because the routing policy and the budgets price every item with it.
Adding a Runway model is one entry here, plus one line in a migration (`add_provider`, which adds
the value to the `inference_provider` type) and its value in models.core.enums.InferenceProvider.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelroute.models.core.enums import POOL_OF, InferenceProvider, Pool

DEFAULT_DURATION_S = 5


@dataclass(frozen=True)
class ProviderInfo:
    """What reelroute knows about one provider."""

    provider: InferenceProvider
    model: str
    label: str
    description: str
    durations_s: tuple[int, ...]
    """Durations the model accepts, in seconds."""
    ratios: tuple[str, ...]
    """Output resolutions (`width:height`) the model accepts; empty when free-form."""
    credits_per_second: float
    """Runway credits per second of video (1 credit = $0.01); 0 for our own GPUs."""
    minutes: tuple[int, int]
    """Usual time from start to finished video, in minutes (until there is history)."""
    badge: str
    """Its short name on the queue page's badge."""

    @property
    def pool(self) -> Pool:
        """The Prefect work pool that runs its items (models.core.enums.POOL_OF)."""
        return POOL_OF[self.provider]

    @property
    def paid(self) -> bool:
        """True for Runway's models, False for our own GPUs."""
        return self.credits_per_second > 0

    def estimate_credits(self, duration_s: int) -> int:
        """Credits a video of `duration_s` seconds is expected to cost."""
        return round(self.credits_per_second * duration_s)

    @property
    def most_credits(self) -> int:
        """The most one video of this model can cost (its longest duration): a cost reported
        above it is not believed."""
        return self.estimate_credits(max(self.durations_s))

    def credits_for(self, duration_s: int | None, frame_num: int | None) -> int:
        """Credits an item asking for this length is expected to cost with this model."""
        return self.estimate_credits(
            nearest_duration(self, requested_seconds(duration_s, frame_num))
        )


GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")

CATALOGUE: dict[InferenceProvider, ProviderInfo] = {
    InferenceProvider.wan_local: ProviderInfo(
        provider=InferenceProvider.wan_local,
        model="Wan2.2-TI2V-5B",
        label="WAN local (GPU server)",
        description="Local GPU inference with the open Wan model: free, slow.",
        durations_s=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
        ratios=(),
        credits_per_second=0.0,
        minutes=(20, 40),
        badge="WAN",
    ),
    InferenceProvider.runway_gen4_turbo: ProviderInfo(
        provider=InferenceProvider.runway_gen4_turbo,
        model="gen4_turbo",
        label="Runway Gen-4 Turbo (fast)",
        description="Runway API: fast, costs money (about 5 credits, $0.05, per second).",
        durations_s=(2, 3, 4, 5, 6, 7, 8, 9, 10),
        ratios=GEN4_RATIOS,
        credits_per_second=5.0,
        minutes=(2, 5),
        badge="Gen-4",
    ),
    InferenceProvider.runway_gen4_5: ProviderInfo(
        provider=InferenceProvider.runway_gen4_5,
        model="gen4.5",
        label="Runway Gen-4.5 (newest Runway model)",
        description="Runway's newest model: steadier motion than Gen-4 Turbo, a little slower, "
        "about 12 credits ($0.12) per second.",
        durations_s=(2, 3, 4, 5, 6, 7, 8, 9, 10),
        ratios=GEN4_RATIOS,
        credits_per_second=12.0,
        minutes=(3, 6),
        badge="Gen-4.5",
    ),
    InferenceProvider.runway_veo3_1_fast: ProviderInfo(
        provider=InferenceProvider.runway_veo3_1_fast,
        model="veo3.1_fast",
        label="Runway Veo 3.1 Fast",
        description="Google's Veo 3.1, faster and cheaper than the full model (about 15 "
        "credits, $0.15, per second).",
        durations_s=(4, 6, 8),
        ratios=VEO_RATIOS,
        credits_per_second=15.0,
        minutes=(3, 6),
        badge="Veo Fast",
    ),
    InferenceProvider.runway_veo3_1: ProviderInfo(
        provider=InferenceProvider.runway_veo3_1,
        model="veo3.1",
        label="Runway Veo 3.1 (best quality)",
        description="Runway API with Google's Veo 3.1: best quality, costs the most "
        "(about 40 credits, $0.40, per second).",
        durations_s=(4, 6, 8),
        ratios=VEO_RATIOS,
        credits_per_second=40.0,
        minutes=(5, 10),
        badge="Veo 3.1",
    ),
}
"""In the order the admin sees them."""

VEO_FAMILY = (InferenceProvider.runway_veo3_1, InferenceProvider.runway_veo3_1_fast)


def info(provider: InferenceProvider) -> ProviderInfo:
    """The catalogue entry of `provider`."""
    return CATALOGUE[provider]


def requested_seconds(duration_s: int | None, frame_num: int | None, fps: float = 24.0) -> int:
    """The length the admin asked for: the duration, else the frame count at `fps`, else 5 s."""
    if duration_s is not None:
        return duration_s
    if frame_num is not None:
        return max(1, round((frame_num - 1) / fps))
    return DEFAULT_DURATION_S


def nearest_duration(info: ProviderInfo, seconds: int) -> int:
    """The model's allowed duration nearest to `seconds`; on a tie, the longer one (the admin
    gets at least what was asked)."""
    return min(info.durations_s, key=lambda allowed: (abs(allowed - seconds), -allowed))


def ratio_for(info: ProviderInfo, width: int, height: int) -> str:
    """The model's output ratio closest to the photo's shape (compared as log aspect ratios)."""
    import math

    aspect = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = (int(part) for part in ratio.split(":"))
        return abs(math.log(w / h) - aspect)

    return min(info.ratios, key=distance)


WAN_PRESET_TIME: dict[str, float] = {
    # measured: the TI2V-5B at 1280x704, 121 frames, on an H200 (docs/performance.md)
    "full": 1.0,
    "cached": 0.968,
    "compiled": 0.78,
    "fast": 0.107,
    "fast-compiled": 0.099,
    "fast-fp8": 0.107,
    # not yet measured on a GPU (none was lent since they were added): derived, see below
    "fast-fp8-compute": 0.096,
    "fast-light": 0.107,
    "fastwan": 0.098,
    "lightx2v": 0.045,
    "lightning": 0.054,
}
"""A Wan preset's time for a video against `full`'s on the same model, until its own videos are
measured (the estimates then learn each (preset, GPU class) pair from its videos).

Measured with `bench.wan_gpu --presets` on an H200 (docs/performance.md): full, cached (its
cache skipped no block with random weights: 0.968, the measurement, not the published 1.85x of
real weights), compiled, fast, fast-compiled, fast-fp8. Derived until `bench.wan_gpu --whole`
runs on a GPU (`bench/wan_gpu_device.sh`):
- fast-fp8-compute: fast with its 4 steps 1.45x faster (LightX2V's fp8 figure), the decode as
  measured: (4 x 1.17 / 1.45 + 9.3) / 131 s;
- fast-light: fast's, until the light decoder's time is measured (the decode is 9.3 of 14 s);
- fastwan: 3 of fast's steps and its decode: (3 x 1.17 + 9.3) / 131 s;
- lightx2v: LightX2V's published Wan2.1-I2V-14B on an H200, 974 s to 44 s;
- lightning: LightX2V's A14B 4-step fp8 at 720p on an H100 (57 s) against Wan's own scripts'
  A14B at 720p on an H100 (1055.9 s).
An unknown preset counts as `full`."""


def wan_preset_time(preset: str) -> float:
    """The prior relative time of a preset (`fast` or `fast@1`)."""
    return WAN_PRESET_TIME.get(preset.split("@", 1)[0], 1.0)
