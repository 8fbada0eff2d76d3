"""Wan presets: every preset on every model shape (the tiny pipeline, on the CPU), each option
really applied (the LoRA changes the video, the cache skips blocks, compile wraps the repeated
blocks, the attention backend is set, fp8 storage holds the weights), and the combinations that
cannot run refused before anything loads, saying what to fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reelroute.providers.base import ConfigurationError
from reelroute.providers.video import probe_mp4
from reelroute.providers.wan_presets import (
    CACHED,
    FAST,
    FAST_FP8,
    FULL,
    PRESETS,
    check_preset,
    lora_fit,
    preset_named,
    resolve_attention,
)
from reelroute.providers.wan_shapes import SHAPES, linear_sizes

# --- without torch: names, checks, the choice of attention --------------------------------------


def test_an_unknown_preset_is_refused_naming_the_presets():
    with pytest.raises(ConfigurationError, match="choose one of full, fast, cached"):
        preset_named("turbo")
    assert preset_named("fast@1") is FAST and FAST.label == "fast@1"


def test_only_presets_that_compute_the_same_video_keep_the_quality():
    assert {p.name for p in PRESETS.values() if p.keeps_quality} == {"full", "compiled"}


def test_a_preset_that_fuses_a_lora_needs_one():
    with pytest.raises(ConfigurationError, match="set REELROUTE_WAN_LORA"):
        check_preset(FAST, lora=None)
    check_preset(FULL, lora=None)
    check_preset(CACHED, lora=None)


@pytest.mark.parametrize(
    ("attention", "capability", "available", "why"),
    [
        ("flash", (9, 0), frozenset(), "needs the flash_attn package"),
        ("_flash_3", (8, 0), frozenset({"flash_attn_interface"}), "compute capability 9.0"),
        ("_native_cudnn", None, frozenset(), "compute capability 8.0 or newer; this is cpu"),
        ("sage", (9, 0), frozenset(), "needs the sageattention package"),
        ("fastest", (9, 0), frozenset(), "is unknown"),
    ],
)
def test_an_attention_backend_this_host_lacks_is_refused(attention, capability, available, why):
    with pytest.raises(ConfigurationError, match=why):
        check_preset(
            FULL, lora=None, capability=capability, available=available, attention=attention
        )


def test_fp8_weights_are_refused_where_the_device_cannot_cast_them():
    with pytest.raises(ConfigurationError, match="cannot cast: choose fast"):
        check_preset(FAST_FP8, lora="x.safetensors", device="mps", fp8=False)
    check_preset(FAST_FP8, lora="x.safetensors", fp8=True)


@pytest.mark.parametrize(
    ("capability", "available", "chosen"),
    [
        (None, frozenset(), "native"),
        ((8, 6), frozenset(), "native"),
        ((8, 0), frozenset({"flash_attn"}), "flash"),
        ((9, 0), frozenset(), "_native_cudnn"),
        ((9, 0), frozenset({"flash_attn", "flash_attn_interface"}), "_flash_3"),
        ((10, 0), frozenset({"flash_attn_interface"}), "_native_cudnn"),
    ],
)
def test_auto_attention_is_the_fastest_this_gpu_has(capability, available, chosen):
    assert resolve_attention("auto", capability, available) == chosen
    assert resolve_attention("_native_math", capability, available) == "_native_math"


# --- the tiny pipeline of every shape ------------------------------------------------------------


@pytest.fixture(scope="module")
def loras(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """A distilled-LoRA stand-in for each shape, made with peft."""
    from reelroute.providers.tiny_wan import make_lora

    root = tmp_path_factory.mktemp("loras")
    return {shape: make_lora(folder, root / shape) for shape, folder in tiny_models.items()}


@pytest.fixture(scope="module")
def checkpoints(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """A distilled checkpoint published whole (FastWan's layout) for each shape."""
    from reelroute.providers.tiny_wan import make_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    return {shape: make_checkpoint(folder, root / shape) for shape, folder in tiny_models.items()}


@pytest.fixture(scope="module")
def decoders(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """A light VAE decoder (the model's latents, a narrower decoder) for each shape."""
    from reelroute.providers.tiny_wan import make_light_decoder

    root = tmp_path_factory.mktemp("decoders")
    return {
        shape: make_light_decoder(folder, root / shape) for shape, folder in tiny_models.items()
    }


def runnable(shape: str, preset: str) -> bool:
    """Whether a preset runs on this shape on a CPU (a family preset only on its own model;
    fp8 compute only on an Ada or Hopper GPU: its refusal is tested below)."""
    chosen = PRESETS[preset]
    return (not chosen.shapes or shape in chosen.shapes) and chosen.weights != "fp8-compute"


def generate(folder: Path, **changes):
    from reelroute.providers.wan import WanProvider, load_pipeline
    from tests.providers.wan_helpers import request, shape_settings

    provider = WanProvider(shape_settings(folder, **changes))
    result = provider.generate(request(seed=11), on_progress=lambda _: None, on_task=lambda _: None)
    return result, load_pipeline(provider.config)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("shape", "preset"),
    [(shape, preset) for shape in SHAPES for preset in PRESETS if runnable(shape, preset)],
)
def test_every_preset_makes_a_video_on_every_shape_it_is_for(
    tiny_models, loras, checkpoints, decoders, shape, preset
):
    distilled = PRESETS[preset].sampler.timesteps
    result, loaded = generate(
        tiny_models[shape],
        wan_preset=preset,
        wan_lora=str(loras[shape]),
        wan_checkpoint=str(checkpoints[shape]),
        wan_decoder=str(decoders[shape]),
        wan_compile_backend="aot_eager",  # the same graphs, no kernels generated (seconds)
        wan_steps=None if distilled else 2,  # a distilled family runs its own timesteps
    )
    info = probe_mp4(result.video)
    assert (info.frames, result.wan_preset) == (9, PRESETS[preset].label)
    assert result.gpu_class == "cpu" and result.gpu_host
    applied = loaded.applied
    assert applied is not None and applied.preset == PRESETS[preset].label
    chosen = PRESETS[preset]
    assert (applied.lora is not None) == chosen.lora
    assert applied.cache == chosen.cache and applied.weights == chosen.weights
    for transformer in transformers(loaded.pipeline):
        blocks = list(transformer.blocks)
        if chosen.compile:  # regional compile: each repeated block compiled on its own
            assert applied.compiled_blocks == len(blocks) * len(transformers(loaded.pipeline))
            assert all(block._compiled_call_impl is not None for block in blocks)
        else:
            assert all(block._compiled_call_impl is None for block in blocks)
        if chosen.attention == "auto":  # on a CPU: PyTorch's own
            assert applied.attention == "native"
            assert attention_backends(transformer) == {"native"}
        if chosen.weights == "fp8-storage":
            import torch

            assert blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
        if chosen.cache == "first_block":
            assert "fbc_leader_block_hook" in blocks[0]._diffusers_hook.hooks


def transformers(pipeline) -> list:
    from reelroute.providers.wan_options import transformers_of

    return transformers_of(pipeline)


def attention_backends(transformer) -> set[str]:
    found = set()
    for module in transformer.modules():
        backend = getattr(getattr(module, "processor", None), "_attention_backend", None)
        if backend is not None:
            found.add(backend.value)
    return found


@pytest.mark.torch
@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_lora_changes_the_video(tiny_models, loras, shape):
    """The same steps and guidance with and without the fused LoRA."""
    folder = tiny_models[shape]
    plain, _ = generate(folder, wan_preset="full", wan_guidance_scale=1.0, wan_guidance_scale_2=1.0)
    again, _ = generate(folder, wan_preset="full", wan_guidance_scale=1.0, wan_guidance_scale_2=1.0)
    fused, _ = generate(folder, wan_preset="fast", wan_lora=str(loras[shape]))
    assert frames_of(plain.video) == frames_of(again.video)  # the seed holds
    assert frames_of(fused.video) != frames_of(plain.video)


def frames_of(video: bytes) -> bytes:
    """The decoded pixels of an mp4 (ffmpeg, raw RGB)."""
    import subprocess
    import tempfile

    import imageio_ffmpeg

    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        file.write(video)
        file.flush()
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", file.name]
        command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        return subprocess.run(command, capture_output=True, check=True).stdout


@pytest.mark.torch
@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_step_cache_skips_blocks(tiny_models, shape, monkeypatch):
    """FirstBlockCache's hook, counted: with a threshold no step's change can reach, every step
    after the first reuses the last residual (fewer runs of the last block than forwards);
    `cached` itself registers the same hook at 0.05 (its skips on real weights are for
    bench.wan_gpu to report)."""
    from reelroute.providers import wan_presets
    from reelroute.providers.wan_options import count_blocks

    loose = dataclasses.replace(CACHED, name="cached-loose", cache_threshold=10.0)
    monkeypatch.setitem(wan_presets.PRESETS, "cached-loose", loose)
    _, loaded = generate(tiny_models[shape], wan_preset="cached-loose", wan_steps=6)
    counter = count_blocks(loaded.pipeline)
    _, same = generate(tiny_models[shape], wan_preset="cached-loose", wan_steps=6)
    assert same is loaded
    assert counter.forwards == 6 * 2  # guidance: two forwards a step (one expert at a time)
    assert 0 < counter.last_block_runs < counter.forwards
    assert counter.skipped_share > 0.5


@pytest.mark.torch
def test_the_hosts_attention_backend_replaces_the_presets(tiny_models):
    _, loaded = generate(
        tiny_models["wan2.2-ti2v-5b"],
        wan_preset="compiled",
        wan_attention="_native_math",
        wan_compile_backend="aot_eager",
    )
    assert loaded.applied is not None and loaded.applied.attention == "_native_math"
    assert attention_backends(loaded.pipeline.transformer) == {"_native_math"}


@pytest.mark.torch
def test_compile_with_inductor_makes_the_same_video(tiny_models):
    """The real compile (inductor kernels, on the CPU) once, on one shape."""
    folder = tiny_models["wan2.2-ti2v-5b"]
    eager, _ = generate(folder, wan_preset="full")
    compiled, loaded = generate(folder, wan_preset="compiled", wan_attention="native")
    assert loaded.applied is not None and loaded.applied.compiled_blocks == 2
    assert probe_mp4(compiled.video).frames == probe_mp4(eager.video).frames == 9


@pytest.mark.torch
def test_a_lora_for_another_model_is_refused_before_loading(tiny_models, tmp_path):
    from reelroute.models.assembly import load_settings
    from reelroute.providers.tiny_wan import make_lora

    folder = tiny_models["wan2.2-ti2v-5b"]
    other = make_lora(folder, tmp_path / "other", head_dim=8)  # like the 14B's LoRA on the 5B
    why = lora_fit(other, linear_sizes(folder))
    assert why is not None and "is for another model" in why
    # The worker's check, before any pipeline process starts:
    from reelroute.deployments.gpu_host import preflight

    settings = load_settings(
        _env_file=None, wan_model=str(folder), wan_preset="fast", wan_lora=str(other)
    )
    with pytest.raises(ConfigurationError, match="use a LoRA made for this model"):
        preflight(settings)
    # And the pipeline process's own, when it loads:
    with pytest.raises(ConfigurationError, match="does not fit this Wan model"):
        generate(folder, wan_preset="fast", wan_lora=str(other))


@pytest.mark.torch
def test_a_backend_this_build_lacks_is_refused_when_the_process_starts(tiny_models):
    with pytest.raises(ConfigurationError, match="needs the flash_attn package"):
        generate(tiny_models["wan2.1-i2v"], wan_attention="flash")


@pytest.mark.torch
def test_fp8_on_a_device_that_cannot_cast_it_is_refused(tiny_models, loras, monkeypatch):
    from reelroute.providers import wan_options

    monkeypatch.setattr(wan_options, "casts_fp8", lambda _device: False)
    shape = "wan2.1-i2v"
    with pytest.raises(ConfigurationError, match="cannot cast: choose fast"):
        generate(tiny_models[shape], wan_preset="fast-fp8", wan_lora=str(loras[shape]))


# --- the distilled families: each with its own sampler and timestep list ----------------------

FAMILIES = [
    ("lightx2v", "wan2.1-i2v", "euler"),
    ("lightning", "wan2.2-i2v-a14b", "euler"),
    ("fastwan", "wan2.2-ti2v-5b", "dmd"),
]


@pytest.mark.torch
@pytest.mark.parametrize(("preset", "shape", "kind"), FAMILIES)
def test_each_family_runs_the_sampler_and_timesteps_it_was_distilled_for(
    tiny_models, loras, checkpoints, preset, shape, kind
):
    """Not the model's default scheduler at fewer steps: flow-matching Euler (stochastic for
    DMD) with the family's shift over exactly its timestep list, seen step by step; the A14B's
    two experts take two steps each (lightx2v's boundary_step_index 2); a single forward a step
    (no guidance)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    from reelroute.providers.wan import WanProvider, load_pipeline
    from reelroute.providers.wan_options import count_blocks
    from tests.providers.wan_helpers import request, shape_settings

    chosen = PRESETS[preset]
    settings = shape_settings(
        tiny_models[shape],
        wan_preset=preset,
        wan_lora=str(loras[shape]),
        wan_checkpoint=str(checkpoints[shape]),
        wan_steps=None,
    )
    provider = WanProvider(settings)
    loaded = load_pipeline(provider.config)
    pipeline = loaded.pipeline
    scheduler = pipeline.scheduler
    assert isinstance(scheduler, FlowMatchEulerDiscreteScheduler)
    assert not isinstance(scheduler, UniPCMultistepScheduler)
    assert scheduler.config.stochastic_sampling is (kind == "dmd")
    assert loaded.applied is not None and loaded.applied.scheduler == type(scheduler).__name__
    seen: list[float] = []
    second = getattr(pipeline, "transformer_2", None)
    experts = {id(pipeline.transformer): "high", id(second): "low"}
    used: list[str] = []
    handles = [
        t.register_forward_pre_hook(lambda module, _args: used.append(experts[id(module)]))
        for t in (pipeline.transformer, getattr(pipeline, "transformer_2", None))
        if t is not None
    ]
    counter = count_blocks(pipeline)
    original = scheduler.step

    def step(model_output, timestep, sample, **kwargs):
        seen.append(float(timestep))
        return original(model_output, timestep, sample, **kwargs)

    scheduler.step = step
    try:
        result = provider.generate(
            request(seed=3), on_progress=lambda _: None, on_task=lambda _: None
        )
    finally:
        scheduler.step = original
        for handle in handles + counter.handles:
            handle.remove()
    expected = [1000 * sigma for sigma in chosen.sampler.shifted()]
    assert seen == pytest.approx(expected, rel=1e-4)
    assert len(seen) == chosen.steps == len(chosen.sampler.timesteps)
    assert counter.forwards == len(seen)  # guidance 1: one forward a step
    if shape == "wan2.2-i2v-a14b":
        assert used == ["high", "high", "low", "low"]
    assert probe_mp4(result.video).frames == 9
    if chosen.checkpoint:  # the transformer is the checkpoint's, not the model folder's
        from diffusers import WanTransformer3DModel

        published = WanTransformer3DModel.from_pretrained(
            checkpoints[shape], subfolder="transformer"
        )
        name, weight = next(iter(published.state_dict().items()))
        assert torch.equal(pipeline.transformer.state_dict()[name].cpu(), weight)


def test_the_shifted_timesteps_are_the_published_ones():
    """lightx2v's sigma shift: s' = shift*s / (1 + (shift-1)*s), at shift 5."""
    assert PRESETS["lightx2v"].sampler.shifted() == pytest.approx(
        [1.0, 0.9375, 0.8333, 0.625], abs=1e-4
    )
    assert PRESETS["fastwan"].sampler.shifted()[1:] == pytest.approx([0.9397, 0.8453], abs=1e-3)


def test_a_family_preset_on_another_model_or_without_its_parts_is_refused():
    lightning = PRESETS["lightning"]
    with pytest.raises(
        ConfigurationError, match=r"made for wan2\.2-i2v-a14b.*this model is wan2\.2-ti2v-5b"
    ):
        check_preset(lightning, lora="x.safetensors", shape="wan2.2-ti2v-5b")
    with pytest.raises(ConfigurationError, match="set REELROUTE_WAN_CHECKPOINT"):
        check_preset(PRESETS["fastwan"], lora=None, shape="wan2.2-ti2v-5b")
    with pytest.raises(ConfigurationError, match="set REELROUTE_WAN_DECODER"):
        check_preset(PRESETS["fast-light"], lora="x.safetensors")
    with pytest.raises(ConfigurationError, match=r"distilled for .1000, 750, 500, 250.*not 8"):
        check_preset(lightning, lora="x.safetensors", steps=8)
    check_preset(lightning, lora="x.safetensors", shape="wan2.2-i2v-a14b", steps=4)


@pytest.mark.parametrize(
    ("capability", "available", "why"),
    [
        (None, frozenset({"torchao"}), "compute capability 8.9 or newer.*this is cpu"),
        ((8, 0), frozenset({"torchao"}), "this is compute capability 8.0"),
        ((9, 0), frozenset(), "through torchao, which this host lacks"),
    ],
)
def test_fp8_compute_needs_torchao_and_an_ada_or_hopper_gpu(capability, available, why):
    with pytest.raises(ConfigurationError, match=why):
        check_preset(
            PRESETS["fast-fp8-compute"], lora="x.safetensors", capability=capability,
            available=available,
        )  # fmt: skip
    check_preset(
        PRESETS["fast-fp8-compute"], lora="x.safetensors", capability=(9, 0),
        available=frozenset({"torchao"}),
    )  # fmt: skip


@pytest.mark.torch
def test_the_light_decoder_decodes_the_models_latents(tiny_models, loras, decoders):
    """fast-light: the same latents as fast, decoded by the light decoder (another video);
    a decoder for another model's latents is refused when the process loads."""
    folder, shape = tiny_models["wan2.2-ti2v-5b"], "wan2.2-ti2v-5b"
    fast, _ = generate(folder, wan_preset="fast", wan_lora=str(loras[shape]))
    light, loaded = generate(
        folder,
        wan_preset="fast-light",
        wan_lora=str(loras[shape]),
        wan_decoder=str(decoders[shape]),
    )
    assert loaded.decoder is not None
    assert loaded.decoder.config.decoder_base_dim < loaded.pipeline.vae.config.base_dim
    assert probe_mp4(light.video).frames == probe_mp4(fast.video).frames == 9
    assert frames_of(light.video) != frames_of(fast.video)
    with pytest.raises(ConfigurationError, match="does not decode this model's latents"):
        generate(
            folder, wan_preset="fast-light", wan_lora=str(loras[shape]),
            wan_decoder=str(decoders["wan2.1-i2v"]),
        )  # fmt: skip


@pytest.mark.torch
def test_the_tiled_decoder_makes_the_video(tiny_models):
    from reelroute.providers import wan_presets

    tiled = dataclasses.replace(FULL, name="full-tiled", decoder="tiled")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(wan_presets.PRESETS, "full-tiled", tiled)
        result, loaded = generate(tiny_models["wan2.2-ti2v-5b"], wan_preset="full-tiled")
    assert loaded.pipeline.vae.use_tiling
    assert probe_mp4(result.video).frames == 9
