"""Wan through the real diffusers pipeline, with the tiny random-weight model on the CPU."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from reelroute.models.enums import InferenceProvider
from reelroute.models.errors import StaleAttempt
from reelroute.models.settings import load_settings
from reelroute.providers.base import (
    ConfigurationError,
    GenerationRequest,
    PermanentError,
    TransientError,
)
from reelroute.providers.video import probe_mp4
from reelroute.providers.wan import WanConfig, WanProvider, load_pipeline, size_for, translate
from tests.providers.conftest import photo


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
    load_pipeline.cache_clear()
    return WanProvider(sandbox_settings)


def request(**changes) -> GenerationRequest:
    fields = dict(
        item_id=uuid.uuid4(),
        provider=InferenceProvider.wan_local,
        image=photo(64, 48),
        prompt="waves roll in",
        frame_num=9,
    )
    fields.update(changes)
    return GenerationRequest(**fields)


def test_the_tiny_pipeline_makes_an_mp4_of_the_requested_frames_size_and_fps(wan):
    progress: list[float] = []
    result = wan.generate(request(), on_progress=progress.append, on_task=lambda _: None)
    info = probe_mp4(result.video)
    assert (info.frames, info.fps) == (9, 24.0)
    assert (info.width, info.height) == (result.width, result.height) == (80, 64)
    assert result.cost_credits == 0 and result.provider_task_id is None
    assert result.model == "tiny-wan"
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


def test_the_pipeline_is_built_once_for_two_generations(wan):
    for _ in range(2):
        wan.generate(request(), on_progress=lambda _: None, on_task=lambda _: None)
    info = load_pipeline.cache_info()
    assert (info.misses, info.hits) == (1, 1)


@pytest.mark.parametrize(
    ("frames", "hint"), [(8, "use 5 or 9"), (120, "use 117 or 121"), (3, "use 5 or 9")]
)
def test_a_bad_frame_count_is_refused_before_loading_anything(wan, frames, hint):
    with pytest.raises(PermanentError, match=f"frame_num {frames} is not 4k\\+1.*{hint}"):
        wan.generate(request(frame_num=frames), on_progress=lambda _: None, on_task=lambda _: None)
    assert load_pipeline.cache_info().misses == 0


def test_missing_weights_name_the_setting(tmp_path):
    load_pipeline.cache_clear()
    settings = load_settings(
        _env_file=None, wan_model=str(tmp_path / "no-such-model"), wan_device="cpu"
    )
    with pytest.raises(ConfigurationError, match="REELROUTE_WAN_MODEL"):
        WanProvider(settings).generate(
            request(), on_progress=lambda _: None, on_task=lambda _: None
        )
    with pytest.raises(ConfigurationError, match="REELROUTE_WAN_MODEL"):
        WanProvider(settings.model_copy(update={"wan_model": "Wan-AI/Not-In-Cache"})).generate(
            request(), on_progress=lambda _: None, on_task=lambda _: None
        )


def test_sizes_follow_the_aspect_ratio_and_the_grid():
    assert size_for(1280, 720, 1280 * 704, 32) == (1248, 704)
    assert size_for(720, 1280, 1280 * 704, 32) == (704, 1248)
    assert size_for(1000, 1000, 480 * 832, 16) == (624, 624)


def test_sandbox_config_uses_the_tiny_model(sandbox_settings):
    config = WanConfig.from_settings(sandbox_settings)
    assert config.model.endswith("tiny-wan") and config.device == "cpu"


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
