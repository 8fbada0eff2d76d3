"""mp4 files: write frames with imageio-ffmpeg, and read a file back (the playability check)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import imageio_ffmpeg

from reelroute.models.core.enums import FailureCode
from reelroute.providers.base import PermanentError

if TYPE_CHECKING:
    import numpy.typing as npt

    Frame = npt.NDArray[Any]


@dataclass(frozen=True)
class VideoInfo:
    """What an mp4 holds."""

    frames: int
    fps: float
    width: int
    height: int


def encode_mp4(frames: Iterable[Frame], *, fps: float, width: int, height: int) -> bytes:
    """H.264 mp4 (yuv420p, playable in browsers) of RGB uint8 frames of the given size."""
    import numpy as np  # here, not at import: a Runway run only probes videos

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "video.mp4")
        writer = imageio_ffmpeg.write_frames(
            path,
            (width, height),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=2,
            output_params=["-movflags", "+faststart"],
            ffmpeg_log_level="error",
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        with open(path, "rb") as file:
            return file.read()


PROBE_TIMEOUT_SECONDS = 120


def probe_mp4(data: bytes) -> VideoInfo:
    """`probe_video_file` of bytes in memory."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "video.mp4")
        with open(path, "wb") as file:
            file.write(data)
        return probe_video_file(path)


def picture_format(path: str) -> str | None:
    """The format of the picture at `path` (JPEG, PNG, GIF, …), None if it is none Pillow
    knows: to tell a sender what they sent instead of a video."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return picture.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def probe_video_file(path: str, timeout: float | None = None) -> VideoInfo:
    """Decode every frame of the file at `path` with ffmpeg. PermanentError, saying why, unless
    it is an MP4/MOV container with a video stream of more than one frame (a JPEG, PNG or GIF is
    no video, however well it decodes), or when the check takes longer than `timeout`."""
    timeout = PROBE_TIMEOUT_SECONDS if timeout is None else timeout
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        # The file and nothing it points to: read as MP4/MOV whatever it claims to be (an HLS
        # playlist or a concat script would make ffmpeg open the files it names: devices,
        # FIFOs, other videos), through the file protocol only (no data:, crypto:, network).
        "-protocol_whitelist",
        "file",
        "-f",
        "mov",
        "-i",
        path,
        "-map",
        "0:v:0",
        "-f",
        "null",
        "-",
    ]
    try:
        done = subprocess.run(  # noqa: S603 (our own ffmpeg binary, our own temp file)
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise PermanentError(
            f"the video could not be checked within {timeout:.0f} s; send a shorter mp4",
            code=FailureCode.VIDEO_PROBE_TIMEOUT,
        ) from None
    log = done.stderr
    size = re.search(r"Video: .*?, (\d+)x(\d+)", log)
    fps = re.search(r"([\d.]+) fps", log)
    frames = re.findall(r"frame=\s*(\d+)", log)
    if done.returncode != 0 or not (size and fps and frames) or int(frames[-1]) == 0:
        picture = picture_format(path)
        if picture is not None:
            reason = f"it is a {picture} picture; send an MP4 or MOV"
        else:
            last = log.strip().splitlines()[-1] if log.strip() else "no video stream"
            # ffmpeg names the file it read: a temporary path of ours, which no answer shows
            reason = last.replace(str(path), "the upload").replace(os.path.basename(path), "")
        raise PermanentError(
            f"the video is not a playable mp4: {reason}", code=FailureCode.NOT_A_VIDEO
        )
    if int(frames[-1]) < 2:
        raise PermanentError(
            "the video is not a playable mp4: it has one frame (a still picture)",
            code=FailureCode.NOT_A_VIDEO,
        )
    return VideoInfo(
        frames=int(frames[-1]),
        fps=float(fps.group(1)),
        width=int(size.group(1)),
        height=int(size.group(2)),
    )
