"""Wan presets: named, versioned sets of options a GPU host's pipeline processes load with
(`reelroute worker --pool gpu --preset NAME`, or REELROUTE_WAN_PRESET). No torch here: the
worker checks a preset before it starts its pipeline processes, and the web app and the router
read the catalogue.

An item records the preset (`name@version`) and the GPU host that made it, so service times are
learnt per preset and per GPU class; a new version of a preset is a new figure.

- `full`: the model card's settings (40-50 steps with classifier-free guidance): the reference.
- `fast`: a step- and guidance-distilled LoRA (lightx2v's StepDistill-CfgDistill for Wan2.1,
  Wan2.2-Lightning for the A14B and 5B), fused, 4 steps at guidance 1.0: one forward per step
  instead of two, 4 steps instead of 50. Needs the LoRA file (REELROUTE_WAN_LORA; for the A14B's
  second expert REELROUTE_WAN_LORA_2, else the same file). Weaker motion is reported with some of
  these LoRAs: the quality checks and review measure it.
- `cached`: FirstBlockCache at a conservative threshold (0.05): a step whose first block barely
  changed reuses the rest of the last step's residual. No LoRA, no quality change reported at
  this threshold (0.09 was reported as not usable).
- `compiled`: `full` with the transformer's repeated blocks compiled (`torch.compile`, regional)
  and the fastest attention this GPU has (`auto`: FlashAttention 3 on Hopper where installed,
  then FlashAttention 2, then PyTorch's cuDNN attention on Hopper, else PyTorch's default): the
  first video pays the compile.
- `fast-compiled`: `fast` with the same compile and attention.
- `fast-fp8`: `fast` with the transformer's weights kept in fp8 (layerwise casting to bf16 for
  compute): about half the memory of the transformer, on any device whose torch can cast fp8
  (not Apple's MPS).

A host's owner can set an attention backend for every preset (REELROUTE_WAN_ATTENTION), and a
group can require a preset that keeps the model card's quality (`keeps_quality`: full and
compiled compute the same video).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from reelroute.models.core.enums import FailureCode
from reelroute.providers.base import ConfigurationError

CACHES = ("first_block",)
WEIGHTS = ("bf16", "fp8-storage")
AUTO = "auto"
ATTENTION_BACKENDS = {
    # diffusers' backend name -> (the package it needs, the smallest compute capability)
    AUTO: (None, None),
    "native": (None, None),
    "_native_math": (None, None),
    "_native_efficient": (None, None),
    "_native_flash": (None, (8, 0)),
    "_native_cudnn": (None, (8, 0)),
    "flash": ("flash_attn", (8, 0)),
    "_flash_3": ("flash_attn_interface", (9, 0)),
    "sage": ("sageattention", (8, 0)),
}


@dataclass(frozen=True)
class WanPreset:
    """How the pipeline is loaded and run. None: the model shape's own (or the settings')."""

    name: str
    version: int
    description: str
    quality: str
    """What it costs in quality, for the GPU host's owner."""
    steps: int | None = None
    guidance_scale: float | None = None
    guidance_scale_2: float | None = None
    lora: bool = False
    """Fuse the configured distilled LoRA (REELROUTE_WAN_LORA) after loading."""
    lora_scale: float = 1.0
    cache: str | None = None
    """`first_block` (diffusers' FirstBlockCache), or None."""
    cache_threshold: float = 0.0
    compile: bool = False
    """Regional compile: `transformer.compile_repeated_blocks(fullgraph=True)`."""
    compile_backend: str = "inductor"
    attention: str | None = None
    """A diffusers attention backend (`transformer.set_attention_backend`), `auto` (the fastest
    this GPU has, `resolve_attention`), or None (as loaded)."""
    weights: str = "bf16"
    """`bf16`, or `fp8-storage` (layerwise casting: fp8 storage, bf16 compute)."""
    offload: bool | None = None
    vae_tiling: bool | None = None
    keeps_quality: bool = False
    """The same video as the model card's settings (a group that requires it gets only these)."""

    @property
    def label(self) -> str:
        """`fast@1`: what an item records."""
        return f"{self.name}@{self.version}"


FULL = WanPreset(
    "full",
    1,
    "The model card's settings: 40-50 steps with classifier-free guidance.",
    "The reference.",
    keeps_quality=True,
)
FAST = WanPreset(
    "fast",
    1,
    "A step- and guidance-distilled LoRA, fused; 4 steps at guidance 1.0.",
    "Weaker motion is reported with some distilled LoRAs (CausVid keeps it better); the "
    "first-frame and motion checks of the review show it per group.",
    steps=4,
    guidance_scale=1.0,
    guidance_scale_2=1.0,
    lora=True,
)
CACHED = WanPreset(
    "cached",
    1,
    "FirstBlockCache at 0.05: a step whose first block barely changed reuses the last step's "
    "residual for the other blocks.",
    "None reported at this threshold; 0.09 was reported as not usable.",
    cache="first_block",
    cache_threshold=0.05,
)
COMPILED = WanPreset(
    "compiled",
    1,
    "full, with the repeated blocks compiled (regional torch.compile) and cuDNN attention.",
    "None: the same computation, faster kernels.",
    compile=True,
    attention=AUTO,
    keeps_quality=True,
)
FAST_COMPILED = WanPreset(
    "fast-compiled",
    1,
    "fast, compiled as `compiled`.",
    "As fast.",
    steps=4,
    guidance_scale=1.0,
    guidance_scale_2=1.0,
    lora=True,
    compile=True,
    attention=AUTO,
)
FAST_FP8 = WanPreset(
    "fast-fp8",
    1,
    "fast, the transformer's weights stored in fp8 (computed in bf16): about half its memory.",
    "As fast, plus fp8 rounding of the weights (small, reported as not visible).",
    steps=4,
    guidance_scale=1.0,
    guidance_scale_2=1.0,
    lora=True,
    weights="fp8-storage",
)
PRESETS: dict[str, WanPreset] = {
    preset.name: preset for preset in (FULL, FAST, CACHED, COMPILED, FAST_COMPILED, FAST_FP8)
}


def preset_named(name: str) -> WanPreset:
    """The preset called `name` (a `name@version` label is taken by its name); a
    ConfigurationError lists the presets otherwise."""
    found = PRESETS.get(name.split("@", 1)[0])
    if found is None:
        raise ConfigurationError(
            f"no Wan preset {name!r}; choose one of {', '.join(PRESETS)} "
            "(REELROUTE_WAN_PRESET, or --preset)",
            code=FailureCode.WAN_CONFIG,
        )
    return found


def check_preset(
    preset: WanPreset,
    *,
    lora: str | None,
    model_dims: set[int] | None = None,
    device: str = "cpu",
    capability: tuple[int, int] | None = None,
    available: frozenset[str] = frozenset(),
    attention: str | None = None,
    fp8: bool | None = None,
) -> None:
    """Refuse a combination that cannot run here, before any process loads, saying what to
    fix: a preset that needs a LoRA without one, a LoRA whose layers do not fit the model
    (`model_dims`: the model's linear sizes), an attention backend (the preset's, or the host's
    `attention`) whose package (`available`: the importable ones) or GPU is missing, fp8 weights
    on a device that cannot cast them (`fp8`: False; None: not known yet)."""
    problems = []
    if preset.lora:
        if not lora:
            problems.append(
                f"preset {preset.name} fuses a distilled LoRA: set REELROUTE_WAN_LORA to its "
                ".safetensors file (e.g. lightx2v's StepDistill-CfgDistill for Wan2.1, "
                "Wan2.2-Lightning for Wan2.2), or choose the preset full or cached"
            )
        elif model_dims is not None:
            problem = lora_fit(Path(lora), model_dims)
            if problem is not None:
                problems.append(problem)
    backend = attention or preset.attention
    if backend is not None:
        package, needs = ATTENTION_BACKENDS.get(backend, ("?", None))
        where = f"compute capability {capability[0]}.{capability[1]}" if capability else device
        if package == "?":
            problems.append(
                f"attention backend {backend!r} is unknown; choose one of "
                f"{', '.join(ATTENTION_BACKENDS)}"
            )
        elif package is not None and package not in available:
            problems.append(
                f"attention backend {backend} needs the {package} package, which this host "
                "lacks: install it, or unset REELROUTE_WAN_ATTENTION (auto picks what is there)"
            )
        if needs is not None and (capability is None or capability < needs):
            problems.append(
                f"attention backend {backend} needs a GPU of compute capability "
                f"{needs[0]}.{needs[1]} or newer; this is {where}"
            )
    if preset.weights == "fp8-storage" and fp8 is False:
        problems.append(
            f"preset {preset.name} keeps the weights in fp8, which this device ({device}) cannot "
            "cast: choose fast"
        )
    if problems:
        raise ConfigurationError("; ".join(problems), code=FailureCode.WAN_CONFIG)


def resolve_attention(
    choice: str | None, capability: tuple[int, int] | None, available: frozenset[str]
) -> str | None:
    """The backend to set for `choice`: `auto` is FlashAttention 3 on Hopper (compute
    capability 9.x) where its package is installed, then FlashAttention 2 (8.0+), then
    PyTorch's cuDNN attention on 9.0+, else PyTorch's default (`native`, also on CPU)."""
    if choice != AUTO:
        return choice
    if capability is not None:
        if capability[0] == 9 and "flash_attn_interface" in available:
            return "_flash_3"
        if capability >= (8, 0) and "flash_attn" in available:
            return "flash"
        if capability >= (9, 0):
            return "_native_cudnn"
    return "native"


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """The tensors' shapes in a .safetensors file, read from its header (no torch)."""
    try:
        with path.open("rb") as file:
            (size,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(size))
    except (OSError, ValueError, struct.error) as error:
        raise ConfigurationError(
            f"cannot read the LoRA file {path}: {error}; give a .safetensors file",
            code=FailureCode.WAN_CONFIG,
        ) from None
    return {
        name: list(entry["shape"])
        for name, entry in header.items()
        if isinstance(entry, dict) and "shape" in entry
    }


def lora_fit(path: Path, model_dims: set[int]) -> str | None:
    """Why the LoRA at `path` does not fit a model whose linear layers have the sizes
    `model_dims`, or None. A LoRA's down (A) matrices take a layer's input size: a LoRA made for
    the 14B (5120) does not fit the 5B (3072)."""
    shapes = safetensors_shapes(path)
    downs = [
        shape
        for name, shape in shapes.items()
        if ("lora_A" in name or "lora_down" in name) and len(shape) == 2
    ]
    if not downs:
        return f"{path} holds no LoRA down/A matrices: is it a LoRA file?"
    sizes = {shape[1] for shape in downs}
    if not sizes <= model_dims:
        return (
            f"the LoRA {path.name} is for another model: its layers take {sorted(sizes)[:4]}, "
            f"the model's take {sorted(model_dims)[:4]}; use a LoRA made for this model"
        )
    return None


def importable_backends() -> frozenset[str]:
    """The attention backends' packages this Python can import (without importing them)."""
    import importlib.util

    packages = {package for package, _ in ATTENTION_BACKENDS.values() if package is not None}
    return frozenset(p for p in packages if importlib.util.find_spec(p) is not None)
