"""Is the video good enough? Checks of a produced video from its decoded frames, before it
counts as completed (signal processing only: no model weights).

- `decodes`: ffmpeg decodes it;
- `length`: its frame count (Wan, when the task named one) or its duration (Runway: the
  model's allowed length nearest to the task's) is what the task asked for;
- `fps` and `resolution`: what the provider said it made, in the photo's (or the task's) aspect;
- `blank`: the range of luma over the clip is above a floor (not black, not one flat colour);
- `frozen`: the mean motion between consecutive frames is above a floor;
- `flicker`: no jump of mean luma between consecutive frames above a ceiling;
- `first_frame`: the first frame matches the photo (SSIM of grey images, the photo cropped to
  the video's aspect and resized to the decoded size): the image-to-video contract.

Frames are decoded in grey at most DECODE_WIDTH pixels wide, every frame (a few hundred at
most), so a check costs a small share of the generation. Each check gives a score and passes or
fails against `Thresholds`; a model-based scorer (a VBench-style consistency score) plugs in as
one more `Scorer`.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import imageio_ffmpeg

from reelroute.models.core.enums import InferenceProvider
from reelroute.providers.base import PermanentError
from reelroute.providers.video import PROBE_TIMEOUT_SECONDS, probe_video_file

if TYPE_CHECKING:
    import numpy.typing as npt

    Frames = npt.NDArray[Any]

DECODE_WIDTH = 160
"""Frames are decoded at most this wide (grey): enough for SSIM and motion, cheap to decode."""
CHECKS = (
    "decodes",
    "length",
    "fps",
    "resolution",
    "blank",
    "frozen",
    "flicker",
    "first_frame",
)


@dataclass(frozen=True)
class Thresholds:
    """Where each check passes (settings REELROUTE_QUALITY_*, a group may override them)."""

    min_luma_range: float = 24.0
    """blank: the 1st to 99th percentile range of luma over the clip (0-255) at least this."""
    min_motion: float = 0.3
    """frozen: the mean absolute difference of consecutive frames (0-255) at least this."""
    max_flicker: float = 40.0
    """flicker: no jump of mean luma (0-255) between consecutive frames above this."""
    min_first_frame_ssim: float = 0.5
    """first_frame: SSIM (-1 to 1) of the first frame and the photo at least this."""
    duration_tolerance: float = 0.15
    """length: the duration within this share of what was asked (Runway)."""
    aspect_tolerance: float = 0.08
    """resolution: the aspect ratio within this share of the photo's (or the task's ratio)."""


@dataclass(frozen=True)
class Expected:
    """What the task asked for and what the provider says it made."""

    frames: int | None
    """The frame count the task asked for (Wan with frame_num); None: judged by duration."""
    duration_s: float | None
    """The duration the task asked for (Runway: the model's allowed length)."""
    fps: float
    width: int
    height: int
    """What the provider said it made."""
    aspect: float | None
    """The width / height the video should have: the photo's, or the task's ratio."""


@dataclass(frozen=True)
class Check:
    """One check's score and whether it passed (`detail` says why it failed)."""

    name: str
    score: float
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    """Every check of one video, and what the checking took."""

    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def scores(self) -> dict[str, float]:
        return {check.name: round(check.score, 4) for check in self.checks}

    def to_json(self) -> dict[str, Any]:
        """What the item stores (`video_items.quality`)."""
        return {
            "passed": self.passed,
            "scores": self.scores(),
            "failed": {check.name: check.detail for check in self.failed},
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class Decoded:
    """A video decoded in grey at reduced size: frames (n, h, w) uint8 and the stream's facts."""

    frames: Frames
    fps: float
    width: int
    height: int


def expected_of(
    provider: InferenceProvider,
    *,
    frame_num: int | None,
    duration_s: int | None,
    photo: bytes,
    fps: float,
    width: int,
    height: int,
) -> Expected:
    """What a task asked of `provider`, as the providers read it: Wan makes `frame_num` frames
    (else its own count) in the photo's aspect; Runway the model's allowed duration nearest to
    the task's, in the model's ratio nearest to the photo's (providers.runway.request_body).
    `fps`, `width` and `height` are what the provider says it made."""
    from PIL import Image

    from reelroute.models.core.catalogue import (
        info,
        nearest_duration,
        ratio_for,
        requested_seconds,
    )

    with Image.open(io.BytesIO(photo)) as picture:
        photo_width, photo_height = picture.size
    if provider is InferenceProvider.wan_local:
        return Expected(frame_num, None, fps, width, height, photo_width / photo_height)
    entry = info(provider)
    seconds = nearest_duration(entry, requested_seconds(duration_s, frame_num))
    ratio_width, ratio_height = (
        int(part) for part in ratio_for(entry, photo_width, photo_height).split(":")
    )
    return Expected(None, float(seconds), fps, width, height, ratio_width / ratio_height)


class Scorer(Protocol):
    """One more check (a model-based score, for deployments that have its weights)."""

    name: str

    def check(self, decoded: Decoded, photo: bytes, thresholds: Thresholds) -> Check: ...


def decode(video: bytes, width: int = DECODE_WIDTH) -> Decoded:
    """Decode `video` (MP4/MOV) in grey, at most `width` pixels wide (the aspect kept).
    ValueError, saying why, when it is no video ffmpeg can decode."""
    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "video.mp4")
        with open(path, "wb") as file:
            file.write(video)
        try:
            info = probe_video_file(path)
        except PermanentError as error:
            raise ValueError(str(error)) from None
        out_width = min(width, info.width) // 2 * 2
        out_height = max(2, round(info.height * out_width / info.width / 2) * 2)
        done = subprocess.run(  # noqa: S603 (our own ffmpeg binary, our own temp file)
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                *("-hide_banner", "-nostdin", "-loglevel", "error"),
                *("-protocol_whitelist", "file", "-f", "mov", "-i", path),
                *("-map", "0:v:0", "-vf", f"scale={out_width}:{out_height}"),
                *("-pix_fmt", "gray", "-f", "rawvideo", "-"),
            ],
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    frame_bytes = out_width * out_height
    count = len(done.stdout) // frame_bytes
    if done.returncode != 0 or count < 2:
        reason = done.stderr.decode("utf-8", "replace").strip()[:200] or f"{count} frame(s)"
        raise ValueError(f"ffmpeg cannot decode it: {reason}")
    frames = np.frombuffer(done.stdout[: count * frame_bytes], dtype=np.uint8)
    return Decoded(
        frames=frames.reshape(count, out_height, out_width),
        fps=info.fps,
        width=info.width,
        height=info.height,
    )


def check_video(
    video: bytes,
    photo: bytes,
    expected: Expected,
    thresholds: Thresholds | None = None,
    scorers: Sequence[Scorer] = (),
) -> Verdict:
    """Every check of `video`, made from `photo` for a task that asked for `expected`."""
    thresholds = thresholds or Thresholds()
    began = time.perf_counter()
    try:
        decoded = decode(video)
    except ValueError as error:
        return Verdict([Check("decodes", 0.0, False, str(error))], time.perf_counter() - began)
    checks = [
        Check("decodes", 1.0, True),
        _length(decoded, expected, thresholds),
        _fps(decoded, expected),
        _resolution(decoded, expected, thresholds),
        *_signal(decoded, thresholds),
        _first_frame(decoded, photo, thresholds),
        *(scorer.check(decoded, photo, thresholds) for scorer in scorers),
    ]
    return Verdict(checks, time.perf_counter() - began)


def _length(decoded: Decoded, expected: Expected, thresholds: Thresholds) -> Check:
    count = len(decoded.frames)
    if expected.frames is not None:
        ok = count == expected.frames
        return Check("length", count, ok, "" if ok else f"{count} frames, {expected.frames} asked")
    seconds = count / decoded.fps if decoded.fps else 0.0
    if expected.duration_s is None:
        return Check("length", seconds, True)
    off = abs(seconds - expected.duration_s) / expected.duration_s
    ok = off <= thresholds.duration_tolerance
    detail = "" if ok else f"{seconds:.2f} s long, {expected.duration_s:g} s asked"
    return Check("length", seconds, ok, detail)


def _fps(decoded: Decoded, expected: Expected) -> Check:
    ok = abs(decoded.fps - expected.fps) <= 0.5
    detail = "" if ok else f"{decoded.fps:g} fps, the provider said {expected.fps:g}"
    return Check("fps", decoded.fps, ok, detail)


def _resolution(decoded: Decoded, expected: Expected, thresholds: Thresholds) -> Check:
    aspect = decoded.width / decoded.height
    size = f"{decoded.width}x{decoded.height}"
    if (decoded.width, decoded.height) != (expected.width, expected.height):
        return Check(
            "resolution",
            aspect,
            False,
            f"{size}, the provider said {expected.width}x{expected.height}",
        )
    if expected.aspect is not None:
        off = abs(aspect - expected.aspect) / expected.aspect
        if off > thresholds.aspect_tolerance:
            return Check(
                "resolution",
                aspect,
                False,
                f"{size} is {aspect:.3f}:1, {expected.aspect:.3f}:1 asked",
            )
    return Check("resolution", aspect, True)


def _signal(decoded: Decoded, thresholds: Thresholds) -> list[Check]:
    import numpy as np

    frames = decoded.frames.astype(np.float32)
    low, high = np.percentile(frames, [1, 99])
    luma_range = float(high - low)
    motion = float(np.abs(np.diff(frames, axis=0)).mean())
    means = frames.mean(axis=(1, 2))
    flicker = float(np.abs(np.diff(means)).max())
    blank_ok = luma_range >= thresholds.min_luma_range
    frozen_ok = motion >= thresholds.min_motion
    flicker_ok = flicker <= thresholds.max_flicker
    return [
        Check(
            "blank",
            luma_range,
            blank_ok,
            ""
            if blank_ok
            else f"luma spans {luma_range:.1f} of 255 (below {thresholds.min_luma_range:g})",
        ),
        Check(
            "frozen",
            motion,
            frozen_ok,
            "" if frozen_ok else f"mean motion {motion:.2f} (below {thresholds.min_motion:g})",
        ),
        Check(
            "flicker",
            flicker,
            flicker_ok,
            ""
            if flicker_ok
            else f"mean luma jumps {flicker:.1f} (above {thresholds.max_flicker:g})",
        ),
    ]


def _first_frame(decoded: Decoded, photo: bytes, thresholds: Thresholds) -> Check:
    import numpy as np
    from PIL import Image, ImageOps
    from skimage.metrics import structural_similarity

    first = decoded.frames[0]
    height, width = first.shape
    try:
        with Image.open(io.BytesIO(photo)) as picture:
            grey = ImageOps.exif_transpose(picture).convert("L")
            fitted = ImageOps.fit(grey, (width, height), Image.Resampling.BILINEAR)
    except (OSError, ValueError) as error:
        return Check("first_frame", -1.0, False, f"the photo cannot be read: {error}")
    reference = np.asarray(fitted, dtype=np.float32)
    window = min(7, height, width)
    window -= 1 - window % 2  # odd, as SSIM's window must be
    score = float(
        structural_similarity(  # type: ignore[no-untyped-call]
            first.astype(np.float32), reference, data_range=255.0, win_size=window
        )
    )
    ok = score >= thresholds.min_first_frame_ssim
    detail = (
        "" if ok else f"SSIM {score:.2f} with the photo (below {thresholds.min_first_frame_ssim:g})"
    )
    return Check("first_frame", score, ok, detail)
