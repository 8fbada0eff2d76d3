"""Wan through the real diffusers pipeline, with the tiny random-weight model on the CPU."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reelroute.models.assembly import load_settings
from reelroute.models.core.errors import StaleAttempt
from reelroute.providers.base import (
    ConfigurationError,
    PermanentError,
    TransientError,
)
from reelroute.providers.video import probe_mp4
from reelroute.providers.wan import WanConfig, WanProvider, loads, size_for, translate
from reelroute.providers.wan_shapes import SHAPES, WAN21_I2V, WAN22_I2V_A14B, read_shape
from tests.providers.conftest import photo
from tests.providers.wan_helpers import request, shape_settings

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def sandbox_settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("wan")
    return load_settings(
        _env_file=None,
        database_url=f"sqlite:///{root / 'db.sqlite'}",
        storage_url=str(root / "storage"),
        sandbox=True,
    )


@pytest.fixture
def wan(sandbox_settings) -> WanProvider:
    return WanProvider(sandbox_settings)


def test_the_tiny_pipeline_makes_an_mp4_of_the_requested_frames_size_and_fps(wan):
    progress: list[float] = []
    result = wan.generate(request(), on_progress=progress.append, on_task=lambda _: None)
    info = probe_mp4(result.video)
    assert (info.frames, info.fps) == (9, 24.0)  # the TI2V-5B shape: 24 fps, a grid of 32
    assert (info.width, info.height) == (result.width, result.height) == (64, 64)
    assert result.cost_credits == 0 and result.provider_task_id is None
    assert result.model == "wan2.2-ti2v-5b"
    assert progress == [0.0, 0.5, 1.0]  # a heartbeat per denoising step


def test_portrait_photos_make_portrait_videos(wan):
    result = wan.generate(
        request(image=photo(30, 60), frame_num=5),
        on_progress=lambda _: None,
        on_task=lambda _: None,
    )
    assert result.height > result.width and result.frames == 5


def test_duration_becomes_frames_at_the_models_fps(wan):
    result = wan.generate(
        request(frame_num=None, duration_s=1), on_progress=lambda _: None, on_task=lambda _: None
    )
    assert result.frames == 25  # 4k+1 nearest to 1 s at 24 fps


def test_the_seed_is_honoured(wan):
    def make(seed):
        return wan.generate(
            request(seed=seed), on_progress=lambda _: None, on_task=lambda _: None
        ).video

    assert make(7) == make(7)
    assert make(7) != make(8)


def test_the_pipeline_is_built_once_for_two_generations(tiny_models):
    provider = WanProvider(shape_settings(tiny_models[WAN21_I2V.name], wan_frames=5))
    before = len(loads())
    for _ in range(2):
        provider.generate(
            request(frame_num=None), on_progress=lambda _: None, on_task=lambda _: None
        )
    assert len(loads()) == before + 1


@pytest.mark.parametrize(
    ("frames", "hint"), [(8, "use 5 or 9"), (120, "use 117 or 121"), (3, "use 5 or 9")]
)
def test_a_bad_frame_count_is_refused_before_loading_anything(tiny_models, frames, hint):
    provider = WanProvider(shape_settings(tiny_models[WAN22_I2V_A14B.name], wan_steps=3))
    before = len(loads())
    with pytest.raises(PermanentError, match=f"frame_num {frames} is not 4k\\+1.*{hint}"):
        provider.generate(
            request(frame_num=frames), on_progress=lambda _: None, on_task=lambda _: None
        )
    assert len(loads()) == before


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_is_read_from_its_folder_and_makes_an_mp4(tiny_models, shape):
    folder = tiny_models[shape]
    assert read_shape(folder).name == shape
    provider = WanProvider(shape_settings(folder))
    defaults = SHAPES[shape]
    config = provider.config
    assert (config.shape, config.fps, config.default_frames) == (
        shape,
        defaults.fps,
        defaults.frames,
    )
    assert config.guidance_scale == defaults.guidance_scale
    assert config.guidance_scale_2 == defaults.guidance_scale_2
    result = provider.generate(request(), on_progress=lambda _: None, on_task=lambda _: None)
    info = probe_mp4(result.video)
    assert (info.frames, info.fps) == (9, defaults.fps)


def test_settings_override_the_shapes_defaults(tiny_models):
    settings = shape_settings(
        tiny_models[WAN22_I2V_A14B.name],
        wan_fps=12.0,
        wan_frames=33,
        wan_guidance_scale=4.0,
        wan_guidance_scale_2=2.0,
    )
    config = WanConfig.from_settings(settings)
    assert (config.fps, config.default_frames, config.steps) == (12.0, 33, 2)
    assert (config.guidance_scale, config.guidance_scale_2) == (4.0, 2.0)
    assert WanConfig.from_settings(shape_settings(tiny_models[WAN21_I2V.name])).max_area == (
        96 * 64
    )


def test_a_folder_that_is_no_wan_model_is_named(tmp_path):
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(ConfigurationError, match="not a Wan image-to-video model"):
        read_shape(tmp_path)


def test_missing_weights_name_the_setting(tmp_path):
    settings = load_settings(
        _env_file=None, wan_model=str(tmp_path / "no-such-model"), wan_device="cpu"
    )
    with pytest.raises(ConfigurationError, match="REELROUTE_WAN_MODEL"):
        WanProvider(settings).generate(
            request(), on_progress=lambda _: None, on_task=lambda _: None
        )
    with pytest.raises(ConfigurationError, match="REELROUTE_WAN_MODEL"):
        WanProvider(settings.replaced(wan_model="Wan-AI/Not-In-Cache")).generate(
            request(), on_progress=lambda _: None, on_task=lambda _: None
        )


def test_sizes_follow_the_aspect_ratio_and_the_grid():
    assert size_for(1280, 720, 1280 * 704, 32) == (1248, 704)
    assert size_for(720, 1280, 1280 * 704, 32) == (704, 1248)
    assert size_for(1000, 1000, 480 * 832, 16) == (624, 624)


def test_sandbox_config_uses_the_tiny_model(sandbox_settings):
    config = WanConfig.from_settings(sandbox_settings)
    assert config.model.endswith("tiny-wan/wan2.2-ti2v-5b") and config.device == "cpu"
    assert (config.shape, config.fps, config.steps) == ("wan2.2-ti2v-5b", 24.0, 2)


def test_importing_the_wan_provider_defers_torch(tmp_path):
    code = "import sys, reelroute.providers.wan; print('torch' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    assert output.strip() == "False"


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (lambda torch: torch.OutOfMemoryError("CUDA out of memory"), PermanentError, "CUDA_OOM"),
        (lambda torch: ValueError("height must be divisible by 16"), PermanentError, "BAD_INPUT"),
        (lambda torch: TypeError("expected a PIL image"), PermanentError, "BAD_INPUT"),
        (
            lambda torch: RuntimeError("CUDA error: an illegal memory access was encountered"),
            TransientError,
            "GPU_FAULT",
        ),
        (lambda torch: RuntimeError("mat1 and mat2 shapes cannot be multiplied"), PermanentError,
         "WAN_FAILED"),
    ],
)  # fmt: skip
def test_every_pipeline_error_leaves_as_one_of_the_three_classes(error, kind, code):
    import torch

    translated = translate(error(torch), width=80, height=64, frames=9)
    assert type(translated) is kind and translated.code == code
    assert "80x64, 9 frames" in str(translated)
    if code == "CUDA_OOM":
        assert "REELROUTE_WAN_OFFLOAD=true" in str(translated)


def test_the_callers_own_stop_passes_through_and_the_next_item_works(wan):
    def lost(fraction: float) -> None:
        if fraction > 0:
            raise StaleAttempt("attempt 1 lost item x")

    with pytest.raises(StaleAttempt):
        wan.generate(request(), on_progress=lost, on_task=lambda _: None)
    result = wan.generate(request(), on_progress=lambda _: None, on_task=lambda _: None)
    assert probe_mp4(result.video).frames == 9


def test_a_portrait_phone_photo_makes_a_portrait_video(wan, sandbox_settings):
    """A phone's portrait photo (raw pixels landscape, EXIF Orientation 6) as a flow run hands
    it over (the normalised copy): Wan's video is portrait. Before, Wan converted the raw
    pixels and the picture lay on its side."""
    from reelroute.models.intake.photos import upright_bytes
    from tests.models.intake.test_photo_corpus import phone_photo

    image = upright_bytes(phone_photo(6, 96, 160), sandbox_settings.api.photo_max_side)
    result = wan.generate(
        request(image=image, frame_num=5), on_progress=lambda _: None, on_task=lambda _: None
    )
    assert result.height > result.width and result.frames_asked == 5
    info = probe_mp4(result.video)
    assert info.height > info.width
