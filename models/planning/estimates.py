"""How long a provider takes: p50 and p90 of claim → complete over its recent videos.

Runway's models take about the same time whatever the video; Wan's time grows with the work,
frames x pixels, so its figures are per unit of work and scaled for each item. Until a provider
has history (MIN_SAMPLES completions), the catalogue's usual minutes apply. Reading them costs one
index range scan per provider (`ix_video_items_completed_provider`), whatever the table's size.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from reelroute.models.core.catalogue import wan_preset_time
from reelroute.models.core.enums import InferenceProvider
from reelroute.models.store.queries.planning import RECENT
from reelroute.models.store.sql import sql

SAMPLE = 200  # the latest completions of a provider that the figures cover
WAN_SAMPLE = 1000  # Wan's: enough for each (preset, GPU class) to have its own
MIN_SAMPLES = 5
DEFAULT_SECONDS = 5  # a video's length when the task says neither frames nor seconds
WAN_FPS = 24.0  # frames per second of the default Wan model (units only need to be consistent)
WAN_FRAMES = 121
DEFAULT_WAN_AREA = 1280 * 704  # the default model's (units only need to be consistent)


@dataclass(frozen=True)
class ServiceTime:
    """Seconds from claim to video, at the median and the 90th percentile (per unit of work
    when `per_unit`)."""

    p50: float
    p90: float
    samples: int
    per_unit: bool = False


def wan_units(frame_num: int | None, duration_s: int | None, pixels: int) -> float:
    """Wan's work for an item: frames x pixels (the frames it will make; pixels of the model's
    output area)."""
    if frame_num is not None:
        frames = frame_num
    elif duration_s is not None:
        frames = 4 * round(duration_s * WAN_FPS / 4) + 1
    else:
        frames = WAN_FRAMES
    return float(frames * pixels)


@dataclass(frozen=True)
class Estimates:
    """Service times of every provider."""

    times: Mapping[InferenceProvider, ServiceTime]
    pixels: int
    """Wan's output area in pixels (REELROUTE_WAN_MAX_AREA)."""
    known: Mapping[tuple[uuid.UUID, InferenceProvider], float] = field(default_factory=dict)
    """Exact seconds of some items (`reelroute replay`'s hindsight: the true durations)."""
    wan_classes: Mapping[tuple[str, str], ServiceTime] = field(default_factory=dict)
    """Wan's service times per unit of work per (preset, GPU class), where measured."""

    def wan_speed(self, preset: str, gpu_class: str) -> float:
        """A GPU host's speed in Wan's lane: its (preset, GPU class) time per unit of work over
        Wan's reference (all recent Wan videos). Unmeasured, it is guessed from the preset's
        prior relative time (catalogue) and what its GPU class, or the fleet, shows with the
        presets measured so far."""
        reference = self.times[InferenceProvider.wan_local].p50
        measured = self.wan_classes.get((preset, gpu_class))
        if measured is not None:
            return measured.p50 / reference

        def full_time(key: tuple[str, str]) -> float:
            return self.wan_classes[key].p50 / wan_preset_time(key[0])

        same_class = [full_time(key) for key in self.wan_classes if key[1] == gpu_class]
        anyone = [full_time(key) for key in self.wan_classes]
        found = same_class or anyone
        if not found:  # nothing measured by preset yet: the reference is a full-speed time
            return wan_preset_time(preset)
        return statistics.median(found) * wan_preset_time(preset) / reference

    def seconds(
        self,
        provider: InferenceProvider,
        frame_num: int | None,
        duration_s: int | None,
        item_id: uuid.UUID | None = None,
    ) -> tuple[float, float]:
        """Predicted seconds (p50, p90) for an item of `provider`."""
        if item_id is not None and (item_id, provider) in self.known:
            exact = self.known[(item_id, provider)]
            return exact, exact
        time = self.times[provider]
        if not time.per_unit:
            return time.p50, time.p90
        units = wan_units(frame_num, duration_s, self.pixels)
        return time.p50 * units, time.p90 * units


def catalogue_time(
    provider: InferenceProvider, minutes: tuple[int, int], pixels: int
) -> ServiceTime:
    """The catalogue's usual minutes as a service time: p50 in the middle, p90 at the top."""
    low, high = minutes
    p50, p90 = (low + high) / 2 * 60, high * 60
    if provider is InferenceProvider.wan_local:
        units = wan_units(None, None, pixels)
        return ServiceTime(p50 / units, p90 / units, 0, per_unit=True)
    return ServiceTime(p50, p90, 0)


def quantiles(values: list[float]) -> tuple[float, float]:
    """The median and the 90th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def read_estimates(
    session: Session, *, defaults: Mapping[InferenceProvider, tuple[int, int]], pixels: int
) -> Estimates:
    """The providers' service times from their latest completions (catalogue minutes where
    there are fewer than MIN_SAMPLES)."""
    from sqlmodel.sql.sqltypes import UTCDateTime

    statement = sql(RECENT).columns(
        sa.column("started_at", UTCDateTime()),
        sa.column("finished_at", UTCDateTime()),
        sa.column("frame_num", sa.Integer()),
        sa.column("duration_s", sa.Integer()),
        sa.column("wan_preset", sa.String()),
        sa.column("gpu_class", sa.String()),
    )
    times: dict[InferenceProvider, ServiceTime] = {}
    classes: dict[tuple[str, str], list[float]] = {}
    for provider, minutes in defaults.items():
        wan = provider is InferenceProvider.wan_local
        limit = WAN_SAMPLE if wan else SAMPLE
        rows = session.execute(statement, {"provider": provider.value, "limit": limit}).all()
        default = catalogue_time(provider, minutes, pixels)
        seconds = []
        for started, finished, frame_num, duration_s, preset, gpu_class in rows:
            took = max(1.0, (finished - started).total_seconds())
            if default.per_unit:
                took /= wan_units(frame_num, duration_s, pixels)
            seconds.append(took)
            if wan and preset and gpu_class:
                classes.setdefault((preset, gpu_class), []).append(took)
        if len(seconds) < MIN_SAMPLES:
            times[provider] = default
            continue
        recent = seconds[:SAMPLE]
        p50, p90 = quantiles(recent)
        times[provider] = ServiceTime(p50, p90, len(recent), per_unit=default.per_unit)
    wan_classes = {
        key: ServiceTime(*quantiles(found[:SAMPLE]), len(found[:SAMPLE]), per_unit=True)
        for key, found in classes.items()
        if len(found) >= MIN_SAMPLES
    }
    return Estimates(times=times, pixels=pixels, wan_classes=wan_classes)
