"""A preset's options applied to a loaded Wan pipeline (torch and diffusers, in the pipeline
process only), in the order they compose: the sampler the preset was distilled for, the
distilled LoRA fused into the weights, fp8 storage or fp8 compute, the attention backend, the
step cache, then the regional compile. (A distilled checkpoint and a light decoder are loaded
with the pipeline: `providers.wan`.)

What each did is reported (`Applied`), and a `BlockCounter` counts the transformer's forwards
and its last block's computed runs: a cache that skips blocks shows as fewer runs than
forwards.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

from reelroute.models.core.enums import FailureCode
from reelroute.providers.base import ConfigurationError
from reelroute.providers.wan_presets import (
    Sampler,
    WanPreset,
    check_preset,
    importable_backends,
    resolve_attention,
)


@dataclass
class BlockCounter:
    """Forwards of each transformer, and runs of its last block (hooks)."""

    forwards: int = 0
    last_block_runs: int = 0
    handles: list[Any] = field(default_factory=list)

    @property
    def skipped_share(self) -> float:
        """The share of forwards whose later blocks a cache skipped."""
        return 0.0 if not self.forwards else 1 - self.last_block_runs / self.forwards

    def reset(self) -> None:
        """Count from zero (per video)."""
        self.forwards = self.last_block_runs = 0


def count_blocks(pipeline: Any) -> BlockCounter:
    """Hooks that count the transformers' forwards and last-block runs."""
    counter = BlockCounter()

    def forward(*_: Any) -> None:
        counter.forwards += 1

    def block(*_: Any) -> None:
        counter.last_block_runs += 1

    for transformer in transformers_of(pipeline):
        counter.handles.append(transformer.register_forward_pre_hook(forward))
        # A skipped block is still called (the cache's hook answers for it): count the runs of
        # its attention, which only a computed block makes.
        counter.handles.append(transformer.blocks[-1].attn1.register_forward_pre_hook(block))
    return counter


def transformers_of(pipeline: Any) -> list[Any]:
    """The pipeline's transformer, and the A14B's second expert."""
    found = [pipeline.transformer]
    if getattr(pipeline, "transformer_2", None) is not None:
        found.append(pipeline.transformer_2)
    return found


@dataclass(frozen=True)
class Applied:
    """What a preset did to the pipeline."""

    preset: str
    lora: str | None = None
    weights: str = "bf16"
    attention: str | None = None
    cache: str | None = None
    compiled_blocks: int = 0
    scheduler: str = ""
    """The scheduler's class the steps run with."""
    seconds: float = 0.0
    """Time the options took to apply (the compile itself happens at the first call)."""


def apply_preset(
    pipeline: Any,
    preset: WanPreset,
    *,
    lora: str | None,
    lora_2: str | None = None,
    attention: str | None = None,
    compile_backend: str = "inductor",
    shape: str | None = None,
    checkpoint: str | None = None,
    decoder: str | None = None,
    steps: int | None = None,
) -> Applied:
    """Apply `preset` to a loaded pipeline (on its device); `attention` (the host's
    REELROUTE_WAN_ATTENTION) replaces the preset's backend. A ConfigurationError says what to
    fix when an option cannot be applied (a LoRA for another model, a backend this build or
    GPU lacks, fp8 on a device that cannot cast it, a family preset on another `shape`, a
    checkpoint or decoder not given, `steps` other than the preset's timestep list)."""
    import torch

    started = time.perf_counter()
    experts = transformers_of(pipeline)
    device = experts[0].device
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    available = importable_backends()
    check_preset(
        preset,
        lora=lora,
        device=str(device),
        capability=capability,
        available=available,
        attention=attention,
        fp8=preset.weights != "fp8-storage" or casts_fp8(device),
        shape=shape,
        checkpoint=checkpoint,
        decoder=decoder,
        steps=steps,
    )
    if preset.sampler.scheduler != "model":
        pipeline.scheduler = distilled_scheduler(preset.sampler)
    fused = None
    if preset.lora:
        assert lora is not None  # checked
        fused = _fuse_lora(pipeline, preset, lora, lora_2 if len(experts) > 1 else None)
    if preset.weights == "fp8-storage":
        for transformer in experts:
            transformer.enable_layerwise_casting(
                storage_dtype=torch.float8_e4m3fn, compute_dtype=transformer.dtype
            )
    elif preset.weights == "fp8-compute":  # checked: torchao and an Ada or Hopper GPU
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_

        for transformer in experts:
            quantize_(transformer, Float8DynamicActivationFloat8WeightConfig())
    backend = resolve_attention(attention or preset.attention, capability, available)
    if backend is not None:
        for transformer in experts:
            try:
                transformer.set_attention_backend(backend)
            except (ImportError, RuntimeError, ValueError) as error:
                raise ConfigurationError(
                    f"attention backend {backend} cannot run here ({error}); choose another "
                    "(REELROUTE_WAN_ATTENTION) or a preset without it",
                    code=FailureCode.WAN_CONFIG,
                ) from None
    if preset.cache == "first_block":
        from diffusers import FirstBlockCacheConfig

        for transformer in experts:
            transformer.enable_cache(FirstBlockCacheConfig(threshold=preset.cache_threshold))
    compiled = 0
    if preset.compile:
        for transformer in experts:
            transformer.compile_repeated_blocks(fullgraph=True, backend=compile_backend)
            compiled += len(transformer.blocks)
    return Applied(
        preset=preset.label,
        lora=fused,
        weights=preset.weights,
        attention=backend,
        cache=preset.cache,
        compiled_blocks=compiled,
        scheduler=type(pipeline.scheduler).__name__,
        seconds=time.perf_counter() - started,
    )


@functools.cache
def _fixed_steps_class() -> type:
    from diffusers import FlowMatchEulerDiscreteScheduler

    class FixedStepsScheduler(FlowMatchEulerDiscreteScheduler):  # type: ignore[misc]
        """Flow-matching Euler over a fixed sigma list, whatever step count the pipeline asks
        for (the pipeline calls `set_timesteps(num_inference_steps)` only)."""

        fixed_sigmas: tuple[float, ...] = ()

        def set_timesteps(self, *_: Any, device: Any = None, **__: Any) -> None:
            super().set_timesteps(sigmas=list(self.fixed_sigmas), device=device)

    return FixedStepsScheduler


def distilled_scheduler(sampler: Sampler) -> Any:
    """The scheduler a distilled family was trained for: flow-matching Euler with the sampler's
    shift over exactly its timestep list (`dmd`: stochastic, each step predicting the clean
    video and renoising it to the next level)."""
    scheduler = _fixed_steps_class()(
        num_train_timesteps=1000,
        shift=sampler.shift if sampler.shift is not None else 1.0,
        stochastic_sampling=sampler.scheduler == "dmd",
    )
    scheduler.fixed_sigmas = tuple(sampler.sigmas)
    return scheduler


def decode_latents(pipeline: Any, vae: Any, latents: Any) -> Any:
    """Frames (float32 numpy, (batch, frames, height, width, 3) in [0, 1]) of a video's latents
    (the pipeline's `output_type="latent"`) decoded by `vae`: the model's own, or a light
    decoder with the same latent layout. What the pipeline does after its last step."""
    import torch

    latents = latents.to(device=next(vae.parameters()).device, dtype=vae.dtype)
    shape = (1, vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
    std = torch.tensor(vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
    with torch.no_grad():
        video = vae.decode(latents * std + mean, return_dict=False)[0]
    return pipeline.video_processor.postprocess_video(video, output_type="np")


def casts_fp8(device: Any) -> bool:
    """Whether torch can keep a tensor in fp8 on `device` (and bring it back)."""
    import torch

    try:
        stored = torch.ones(4, device=device).to(torch.float8_e4m3fn)
        return bool(stored.to(torch.float32).sum().item() == 4)
    except (RuntimeError, TypeError):
        return False


def _fuse_lora(pipeline: Any, preset: WanPreset, lora: str, lora_2: str | None) -> str:
    """Load the LoRA into the transformer (and the A14B's second expert, from `lora_2` or the
    same file), fuse it into the weights, drop the adapters."""
    components = ["transformer"]
    try:
        pipeline.load_lora_weights(lora, adapter_name="distilled")
        if getattr(pipeline, "transformer_2", None) is not None:
            pipeline.load_lora_weights(
                lora_2 or lora, adapter_name="distilled_2", load_into_transformer_2=True
            )
            components.append("transformer_2")
        pipeline.fuse_lora(components=components, lora_scale=preset.lora_scale)
        pipeline.unload_lora_weights()
    except (RuntimeError, ValueError, KeyError, OSError) as error:
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise ConfigurationError(
            f"the LoRA {lora} does not fit this Wan model ({type(error).__name__}: {first}); "
            "use a LoRA made for this model's shape",
            code=FailureCode.WAN_CONFIG,
        ) from None
    return lora
