"""A preset's options applied to a loaded Wan pipeline (torch and diffusers, in the pipeline
process only), in the order they compose: the distilled LoRA fused into the weights, fp8
storage, the attention backend, the step cache, then the regional compile.

What each did is reported (`Applied`), and a `BlockCounter` counts the transformer's forwards
and its last block's computed runs: a cache that skips blocks shows as fewer runs than
forwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from reelroute.models.core.enums import FailureCode
from reelroute.providers.base import ConfigurationError
from reelroute.providers.wan_presets import (
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
) -> Applied:
    """Apply `preset` to a loaded pipeline (on its device); `attention` (the host's
    REELROUTE_WAN_ATTENTION) replaces the preset's backend. A ConfigurationError says what to
    fix when an option cannot be applied (a LoRA for another model, a backend this build or
    GPU lacks, fp8 on a device that cannot cast it)."""
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
    )
    fused = None
    if preset.lora:
        assert lora is not None  # checked
        fused = _fuse_lora(pipeline, preset, lora, lora_2 if len(experts) > 1 else None)
    if preset.weights == "fp8-storage":
        for transformer in experts:
            transformer.enable_layerwise_casting(
                storage_dtype=torch.float8_e4m3fn, compute_dtype=transformer.dtype
            )
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
        seconds=time.perf_counter() - started,
    )


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
