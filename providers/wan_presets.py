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
- `fast-fp8-compute`: `fast` with the transformer's linear layers quantised to fp8 and computed
  in fp8 (torchao's dynamic float8 matmuls): on GPUs of compute capability 8.9 or newer (Ada,
  Hopper) with torchao installed.
- `fast-light`: `fast` with a light VAE decoder (REELROUTE_WAN_DECODER: a diffusers
  `AutoencoderKLWan` folder with the model's latent layout and a narrower decoder, such as
  LightX2V's pruned LightVAE converted to diffusers): the decode is most of a fast video's time.

The distilled families, each with the sampler and the timestep list it was trained for (the
wrong sampler makes blurry or static videos with real weights, which the checks then reject):
- `lightx2v`: Wan2.1-I2V-14B with lightx2v's StepDistill-CfgDistill LoRA; flow-matching Euler,
  shift 5, the timesteps 1000, 750, 500, 250, no guidance (lightx2v's
  `configs/distill/wan21/wan_i2v_distill_lora_4step_cfg.json`).
- `lightning`: Wan2.2-I2V-A14B with the Wan2.2-Lightning LoRAs (high-noise expert:
  REELROUTE_WAN_LORA, low-noise: REELROUTE_WAN_LORA_2); the same sampler and timesteps, the
  experts switching after two steps (lightx2v's `configs/distill/wan22/
  wan_moe_i2v_distill_with_lora.json`: sample_shift 5, boundary_step_index 2).
- `fastwan`: FastWan2.2-TI2V-5B, published as a whole distilled transformer, not a LoRA
  (REELROUTE_WAN_CHECKPOINT: its folder); 3 DMD steps (predict the clean video, renoise to the
  next level) at 1000, 757, 522, shift 5, no guidance (FastVideo's DMD pipeline for
  `FastVideo/FastWan2.2-TI2V-5B-FullAttn-Diffusers`).

The table of presets is data (`PRESETS`); `docs/performance.md` gives each one's measured time.

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
WEIGHTS = ("bf16", "fp8-storage", "fp8-compute")
DECODERS = ("full", "tiled", "light")
SCHEDULERS = ("model", "euler", "dmd")
FP8_COMPUTE_CAPABILITY = (8, 9)
"""fp8 matmuls (torchao's float8 kernels) need Ada or Hopper."""
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
class Sampler:
    """The scheduler a preset's steps run with.

    - `model`: the scheduler the model ships with (UniPC for Wan2.2, flow-matching Euler for
      Wan2.1), at the preset's number of steps;
    - `euler`: diffusers' `FlowMatchEulerDiscreteScheduler` with `shift`, over exactly
      `timesteps` (out of 1000, before the shift: each sigma is t/1000, shifted as
      shift*s/(1+(shift-1)*s));
    - `dmd`: the same schedule with stochastic sampling: each step predicts the clean video and
      renoises it to the next level (what DMD-distilled models are trained for).
    """

    scheduler: str = "model"
    shift: float | None = None
    timesteps: tuple[int, ...] = ()

    @property
    def sigmas(self) -> list[float]:
        """The unshifted sigmas of the timestep list."""
        return [t / 1000 for t in self.timesteps]

    def shifted(self) -> list[float]:
        """The sigmas each step runs at, after the shift (what a test can compare with)."""
        shift = self.shift if self.shift is not None else 1.0
        return [shift * s / (1 + (shift - 1) * s) for s in self.sigmas]


MODEL_SAMPLER = Sampler()
DISTILLED_EULER = Sampler("euler", shift=5.0, timesteps=(1000, 750, 500, 250))


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
    sampler: Sampler = MODEL_SAMPLER
    checkpoint: bool = False
    """The transformer(s) come from a distilled checkpoint (REELROUTE_WAN_CHECKPOINT), not the
    model folder's."""
    decoder: str = "full"
    """`full` (the model's VAE), `tiled` (the same VAE, decoded in tiles: less memory), or `light`
    (a light decoder from REELROUTE_WAN_DECODER)."""
    shapes: tuple[str, ...] = ()
    """The model shapes it is made for (`providers.wan_shapes`); empty: every one."""
    source: str = ""
    """Where its settings come from (a model card, a published config)."""

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
FAST_FP8_COMPUTE = WanPreset(
    "fast-fp8-compute",
    1,
    "fast, the transformer's linear layers quantised to fp8 and computed in fp8 (torchao).",
    "As fast, plus fp8 rounding of the weights and activations (reported as small).",
    steps=4,
    guidance_scale=1.0,
    guidance_scale_2=1.0,
    lora=True,
    weights="fp8-compute",
    source="torchao Float8DynamicActivationFloat8WeightConfig; LightX2V's fp8 figures",
)
FAST_LIGHT = WanPreset(
    "fast-light",
    1,
    "fast, decoded by a light VAE decoder (REELROUTE_WAN_DECODER).",
    "As fast, plus what the light decoder loses in detail (the first-frame check measures it).",
    steps=4,
    guidance_scale=1.0,
    guidance_scale_2=1.0,
    lora=True,
    decoder="light",
    source="LightX2V's LightVAE (a pruned Wan VAE decoder), in diffusers' AutoencoderKLWan layout",
)
LIGHTX2V = WanPreset(
    "lightx2v",
    1,
    "Wan2.1-I2V-14B with lightx2v's StepDistill-CfgDistill LoRA: 4 Euler steps, no guidance.",
    "Close to the model card's in lightx2v's comparisons; weaker motion is reported on some "
    "inputs (the review shows it per group).",
    steps=4,
    guidance_scale=1.0,
    lora=True,
    sampler=DISTILLED_EULER,
    shapes=("wan2.1-i2v",),
    source="lightx2v configs/distill/wan21/wan_i2v_distill_lora_4step_cfg.json (infer_steps 4, "
    "denoising_step_list [1000, 750, 500, 250], sample_shift 5, enable_cfg false)",
)
LIGHTNING = WanPreset(
    "lightning",
    1,
    "Wan2.2-I2V-A14B with the Wan2.2-Lightning LoRAs (one per expert): 4 Euler steps, two on "
    "each expert, no guidance.",
    "Weaker motion is reported with some Lightning versions; the review shows it per group.",
    steps=4,
    guidance_scale=1.0,
    guidance_scale_2=1.0,
    lora=True,
    sampler=DISTILLED_EULER,
    shapes=("wan2.2-i2v-a14b",),
    source="Wan2.2-Lightning (lightx2v); lightx2v configs/distill/wan22/"
    "wan_moe_i2v_distill_with_lora.json (4 steps, [1000, 750, 500, 250], sample_shift 5, "
    "boundary_step_index 2)",
)
FASTWAN = WanPreset(
    "fastwan",
    1,
    "FastWan2.2-TI2V-5B: a whole distilled transformer (REELROUTE_WAN_CHECKPOINT), 3 DMD steps, "
    "no guidance.",
    "FastVideo reports quality close to the 50-step model at 720p; it was trained for exactly "
    "this sampler.",
    steps=3,
    guidance_scale=1.0,
    checkpoint=True,
    sampler=Sampler("dmd", shift=5.0, timesteps=(1000, 757, 522)),
    shapes=("wan2.2-ti2v-5b",),
    source="FastVideo/FastWan2.2-TI2V-5B-FullAttn-Diffusers with FastVideo's DMD pipeline "
    "(dmd_denoising_steps 1000,757,522, flow_shift 5)",
)
PRESETS: dict[str, WanPreset] = {
    preset.name: preset
    for preset in (
        FULL,
        FAST,
        CACHED,
        COMPILED,
        FAST_COMPILED,
        FAST_FP8,
        FAST_FP8_COMPUTE,
        FAST_LIGHT,
        LIGHTX2V,
        LIGHTNING,
        FASTWAN,
    )
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
    shape: str | None = None,
    checkpoint: str | None = None,
    decoder: str | None = None,
    steps: int | None = None,
) -> None:
    """Refuse a combination that cannot run here, before any process loads, saying what to
    fix: a preset that needs a LoRA without one, a LoRA whose layers do not fit the model
    (`model_dims`: the model's linear sizes), an attention backend (the preset's, or the host's
    `attention`) whose package (`available`: the importable ones) or GPU is missing, fp8 weights
    on a device that cannot cast them (`fp8`: False; None: not known yet), fp8 compute without
    torchao or an Ada/Hopper GPU, a family preset on another model `shape`, a distilled
    checkpoint or light decoder that is not set, a step count (`steps`, REELROUTE_WAN_STEPS)
    that differs from the preset's timestep list."""
    problems = []
    if shape is not None and preset.shapes and shape not in preset.shapes:
        problems.append(
            f"preset {preset.name} is made for {', '.join(preset.shapes)}, and this model is "
            f"{shape}: choose a preset for it (full, fast, cached, ...) or the model it is for"
        )
    if preset.checkpoint and not checkpoint:
        problems.append(
            f"preset {preset.name} runs a distilled checkpoint: set REELROUTE_WAN_CHECKPOINT to "
            "its folder (diffusers layout, e.g. FastVideo/FastWan2.2-TI2V-5B-FullAttn-Diffusers)"
        )
    if preset.decoder == "light" and not decoder:
        problems.append(
            f"preset {preset.name} decodes with a light VAE: set REELROUTE_WAN_DECODER to its "
            "folder (a diffusers AutoencoderKLWan with this model's latent layout)"
        )
    if preset.sampler.timesteps and steps is not None and steps != len(preset.sampler.timesteps):
        problems.append(
            f"preset {preset.name} runs the {len(preset.sampler.timesteps)} steps it was "
            f"distilled for ({', '.join(map(str, preset.sampler.timesteps))}), not {steps}: "
            "unset REELROUTE_WAN_STEPS"
        )
    if preset.weights == "fp8-compute":
        if "torchao" not in available:
            problems.append(
                f"preset {preset.name} computes in fp8 through torchao, which this host lacks: "
                "pip install torchao, or choose fast-fp8 (fp8 storage only)"
            )
        if capability is None or capability < FP8_COMPUTE_CAPABILITY:
            where = f"compute capability {capability[0]}.{capability[1]}" if capability else device
            problems.append(
                f"preset {preset.name} needs fp8 matmuls: a GPU of compute capability 8.9 or "
                f"newer (Ada, Hopper); this is {where}: choose fast-fp8"
            )
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
    """The optional packages of the presets this Python can import (without importing them):
    the attention backends', and torchao (fp8 compute)."""
    import importlib.util

    packages = {package for package, _ in ATTENTION_BACKENDS.values() if package is not None}
    packages.add("torchao")  # fp8 compute
    return frozenset(p for p in packages if importlib.util.find_spec(p) is not None)
