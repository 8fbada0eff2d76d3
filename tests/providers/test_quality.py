"""The checks of a produced video, on made-up clips that pass and fail each: a good clip made
from the photo, a black clip, a frozen clip, a flickering clip, a clip that starts on another
image, clips of the wrong length, fps and shape, and bytes that are no video."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from reelroute.providers.quality import Expected, Thresholds, check_video, decode
from reelroute.providers.video import encode_mp4
from tests.models.helpers import textured_picture

WIDTH, HEIGHT, FPS, FRAMES = 192, 128, 16.0, 33


def scene(seed: int) -> np.ndarray:
    return textured_picture(seed, WIDTH + 40, HEIGHT + 30)


def png(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def pan(picture: np.ndarray, frames: int = FRAMES) -> list[np.ndarray]:
    """A slow pan across `picture`, starting on its centre crop (as image-to-video does)."""
    height, width = picture.shape[:2]
    top, left = (height - HEIGHT) // 2, (width - WIDTH) // 2
    shots = []
    for n in range(frames):
        dx = min(left, n // 2)
        shots.append(picture[top : top + HEIGHT, left + dx : left + dx + WIDTH])
    return shots


def mp4(frames: list[np.ndarray], fps: float = FPS) -> bytes:
    return encode_mp4(iter(frames), fps=fps, width=frames[0].shape[1], height=frames[0].shape[0])


def expected(**changes) -> Expected:
    fields = {
        "frames": FRAMES,
        "duration_s": None,
        "fps": FPS,
        "width": WIDTH,
        "height": HEIGHT,
        "aspect": WIDTH / HEIGHT,
        **changes,
    }
    return Expected(**fields)


PHOTO = scene(1)
GOOD = mp4(pan(PHOTO))


def failed(verdict) -> set[str]:
    return {check.name for check in verdict.failed}


def test_a_good_clip_made_from_the_photo_passes_every_check():
    photo = png(PHOTO[15:-15, 20:-20])  # the photo is the first frame, before the pan
    verdict = check_video(GOOD, photo, expected())
    assert verdict.passed, verdict.to_json()
    scores = verdict.scores()
    assert scores["first_frame"] > 0.7 and scores["frozen"] > 0.3 and scores["blank"] > 100
    assert [check.name for check in verdict.checks] == [
        "decodes",
        "length",
        "fps",
        "resolution",
        "blank",
        "frozen",
        "flicker",
        "first_frame",
    ]
    stored = verdict.to_json()
    assert stored["passed"] is True and stored["failed"] == {} and stored["seconds"] > 0


def test_a_black_clip_is_blank_and_frozen():
    black = [np.zeros((HEIGHT, WIDTH, 3), np.uint8)] * FRAMES
    verdict = check_video(mp4(black), png(PHOTO), expected())
    assert failed(verdict) == {"blank", "frozen", "first_frame"}
    assert "luma spans 0.0 of 255" in verdict.to_json()["failed"]["blank"]


def test_a_frozen_clip_fails_only_for_its_motion():
    still = pan(PHOTO)[:1] * FRAMES
    photo = png(PHOTO[15:-15, 20:-20])
    verdict = check_video(mp4(still), photo, expected())
    assert failed(verdict) == {"frozen"}
    assert verdict.scores()["frozen"] < 0.3


def test_a_flickering_clip_fails_for_its_jumps_of_light():
    frames = [
        np.clip(frame.astype(np.int16) + (70 if n % 2 else 0), 0, 255).astype(np.uint8)
        for n, frame in enumerate(pan(PHOTO))
    ]
    verdict = check_video(mp4(frames), png(PHOTO[15:-15, 20:-20]), expected())
    assert "flicker" in failed(verdict) and verdict.scores()["flicker"] > 40


def test_a_clip_that_starts_on_another_image_breaks_the_image_to_video_contract():
    other = mp4(pan(scene(2)))
    verdict = check_video(other, png(PHOTO[15:-15, 20:-20]), expected())
    assert failed(verdict) == {"first_frame"}
    assert verdict.scores()["first_frame"] < 0.5
    assert "with the photo (below 0.5)" in verdict.to_json()["failed"]["first_frame"]


def test_the_length_fps_and_shape_must_be_what_was_asked():
    photo = png(PHOTO[15:-15, 20:-20])
    assert failed(check_video(GOOD, photo, expected(frames=49))) == {"length"}
    # Judged by duration (Runway): 33 frames at 16 fps is 2.06 s.
    assert check_video(GOOD, photo, expected(frames=None, duration_s=2)).passed
    verdict = check_video(GOOD, photo, expected(frames=None, duration_s=5))
    assert verdict.to_json()["failed"] == {"length": "2.06 s long, 5 s asked"}
    assert failed(check_video(GOOD, photo, expected(fps=24.0))) == {"fps"}
    assert failed(check_video(GOOD, photo, expected(width=1280, height=720))) == {"resolution"}
    assert failed(check_video(GOOD, photo, expected(aspect=9 / 16))) == {"resolution"}


def test_thresholds_move_the_verdict():
    photo = png(PHOTO[15:-15, 20:-20])
    strict = Thresholds(min_first_frame_ssim=0.99, min_motion=50.0)
    assert failed(check_video(GOOD, photo, expected(), strict)) == {"first_frame", "frozen"}


def test_bytes_that_are_no_video_fail_to_decode():
    verdict = check_video(b"not a video at all", png(PHOTO), expected())
    assert failed(verdict) == {"decodes"} and len(verdict.checks) == 1
    assert not verdict.passed and verdict.to_json()["scores"] == {"decodes": 0.0}


def test_frames_are_decoded_grey_and_small():
    decoded = decode(GOOD)
    assert decoded.frames.shape == (FRAMES, 106, 160)  # 160 wide, the aspect kept (even)
    assert (decoded.width, decoded.height, decoded.fps) == (WIDTH, HEIGHT, FPS)
    with pytest.raises(ValueError, match="it is a PNG picture"):
        decode(png(PHOTO))
