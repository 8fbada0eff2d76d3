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


def probe_mp4(data: bytes) -> VideoInfo:
    """Decode every frame of `data` with ffmpeg; PermanentError when it is not a playable video."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "video.mp4")
        with open(path, "wb") as file:
            file.write(data)
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-i",
            path,
            "-map",
            "0:v:0",
            "-f",
            "null",
            "-",
        ]
        done = subprocess.run(  # noqa: S603 (our own ffmpeg binary, our own temp file)
            command, capture_output=True, text=True, timeout=120, check=False
        )
    log = done.stderr
    size = re.search(r"Video: .*?, (\d+)x(\d+)", log)
    fps = re.search(r"([\d.]+) fps", log)
    frames = re.findall(r"frame=\s*(\d+)", log)
    if done.returncode != 0 or not (size and fps and frames) or int(frames[-1]) == 0:
        reason = log.strip().splitlines()[-1] if log.strip() else "no video stream"
        raise PermanentError(f"the video is not a playable mp4: {reason}")
    return VideoInfo(
        frames=int(frames[-1]),
        fps=float(fps.group(1)),
        width=int(size.group(1)),
        height=int(size.group(2)),
    )
