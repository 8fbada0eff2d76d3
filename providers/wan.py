"""Wan image-to-video on our own GPUs through diffusers' WanImageToVideoPipeline.

The pipeline is loaded once per process (per configuration) and reused for every item after.
Heavy imports (torch, diffusers) happen here only, when a Wan item is made.
"""

from __future__ import annotations

import io
import math
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from reelroute.models.assembly import Settings
from reelroute.models.core.enums import FailureCode
from reelroute.providers.base import (
    ConfigurationError,
    GenerationRequest,
    GenerationResult,
    PermanentError,
    ProgressCallback,
    ProviderError,
    TaskCallback,
    TransientError,
)
from reelroute.providers.tiny_wan import ensure_tiny_wan
from reelroute.providers.video import encode_mp4
from reelroute.providers.wan_options import Applied, apply_preset, decode_latents
from reelroute.providers.wan_presets import FULL, WanPreset, preset_named
from reelroute.providers.wan_shapes import WAN22_TI2V_5B, model_folder, read_shape

T = TypeVar("T")

SANDBOX_MAX_AREA = 96 * 64  # the tiny pipeline's pictures are noise: keep them small and fast
SANDBOX_STEPS = 2
SANDBOX_TEXT_TOKENS = 16
NEGATIVE_PROMPT = "blurry, low quality, distorted, static, watermark, text"


@dataclass(frozen=True)
class WanConfig:
    """Everything that decides how the pipeline is loaded and run."""

    model: str
    device: str
    dtype: str
    offload: bool
    vae_tiling: bool
    max_area: int
    fps: float
    default_frames: int
    steps: int
    guidance_scale: float
    guidance_scale_2: float | None = None
    shape: str = WAN22_TI2V_5B.name
    max_sequence_length: int = 512
    step_seconds: float = 0.0
    """Sandbox mode: pretended GPU time per step of a 121-frame video."""
    preset: str = FULL.name
    lora: str | None = None
    lora_2: str | None = None
    checkpoint: str | None = None
    """A distilled transformer published whole (REELROUTE_WAN_CHECKPOINT)."""
    decoder: str | None = None
    """A light VAE decoder's folder (REELROUTE_WAN_DECODER)."""
    attention: str | None = None
    """The host's attention backend for every preset (REELROUTE_WAN_ATTENTION)."""
    compile_backend: str = "inductor"
    host: str = ""
    """The GPU host this process belongs to (recorded on the items it makes)."""

    @property
    def options(self) -> WanPreset:
        """The preset this configuration loads with."""
        return preset_named(self.preset)

    @classmethod
    def from_settings(cls, settings: Settings) -> WanConfig:
        """The configuration the settings ask for: the model's shape gives the defaults (read
        from its folder), the preset (REELROUTE_WAN_PRESET) overrides some, each
        REELROUTE_WAN_* setting that is set overrides one. Sandbox mode uses the tiny pipeline of
        the TI2V-5B shape, small and in few steps."""
        wan = settings.wan
        preset = preset_named(wan.preset)
        if settings.sandbox:
            folder = ensure_tiny_wan(Path(settings.store.storage_url).parent / "tiny-wan")
        else:
            folder = model_folder(wan.model)
        shape = read_shape(folder)
        max_area = _given(wan.max_area, shape.max_area)
        second = shape.guidance_scale_2 is not None
        config = cls(
            model=str(folder) if settings.sandbox else wan.model,
            device=wan.device,
            dtype=wan.dtype,
            offload=_given(preset.offload, wan.offload),
            vae_tiling=_given(preset.vae_tiling, wan.vae_tiling),
            max_area=max_area,
            fps=_given(wan.fps, shape.fps),
            default_frames=_given(wan.frames, shape.frames),
            steps=_given(wan.steps, _given(preset.steps, shape.steps)),
            guidance_scale=_given(
                wan.guidance_scale, _given(preset.guidance_scale, shape.guidance_scale)
            ),
            guidance_scale_2=(
                _given(
                    wan.guidance_scale_2,
                    _given(preset.guidance_scale_2, shape.guidance_scale_2),
                )
                if second
                else None
            ),
            shape=shape.name,
            preset=preset.name,
            lora=wan.lora,
            lora_2=wan.lora_2,
            checkpoint=wan.checkpoint,
            decoder=wan.decoder,
            attention=wan.attention,
            compile_backend=wan.compile_backend,
            host=wan.host or socket.gethostname(),
        )
        if not settings.sandbox:
            return config
        return replace(
            config,
            device="cpu",
            dtype="float32",
            offload=False,
            vae_tiling=False,
            max_area=min(max_area, SANDBOX_MAX_AREA),
            steps=_given(wan.steps, _given(preset.steps, SANDBOX_STEPS)),
            max_sequence_length=SANDBOX_TEXT_TOKENS,
            step_seconds=settings.local.sandbox_wan_step_seconds,
        )


def _given(value: T | None, default: T) -> T:
    """A setting when it is set, else the shape's default."""
    return default if value is None else value


def frames_for(request: GenerationRequest, config: WanConfig) -> int:
    """The frame count to make: the one asked for, else the duration at the model's fps, else
    the model's default. Wan makes 4k+1 frames; anything else is refused with the nearest ones."""
    if request.frame_num is not None:
        frames = request.frame_num
    elif request.duration_s is not None:
        frames = 4 * round(request.duration_s * config.fps / 4) + 1
    else:
        frames = config.default_frames
    if frames < 5 or frames % 4 != 1:
        lower = max(5, (frames - 1) // 4 * 4 + 1)
        raise PermanentError(
            f"frame_num {frames} is not 4k+1; Wan makes 4k+1 frames: use {lower} or {lower + 4}",
            code=FailureCode.BAD_FRAME_COUNT,
        )
    return frames


def size_for(width: int, height: int, max_area: int, multiple: int) -> tuple[int, int]:
    """The output (width, height): the photo's aspect ratio, about `max_area` pixels, each side a
    multiple of the model's grid."""
    aspect = height / width
    out_height = max(multiple, round(math.sqrt(max_area * aspect)) // multiple * multiple)
    out_width = max(multiple, round(math.sqrt(max_area / aspect)) // multiple * multiple)
    return out_width, out_height


@dataclass
class Loaded:
    """The pipeline this process holds, and what loading it took."""

    config: WanConfig
    pipeline: Any
    seconds: float
    device: str
    applied: Applied | None = None
    gpu_class: str = "cpu"
    """The GPU's name (`NVIDIA H200`), or `cpu`: the class its service times are kept for."""
    decoder: Any = None
    """The light VAE decoder (preset decoder `light`), or None: the pipeline's VAE decodes."""


@dataclass
class _Held:
    loaded: Loaded | None = None
    loads: list[float] = field(default_factory=list)
    """Seconds each load of this process took (tests and the health report count them)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


_HELD = _Held()


def loads() -> list[float]:
    """How long each pipeline load of this process took, in order."""
    return list(_HELD.loads)


def load_pipeline(config: WanConfig) -> Loaded:
    """The pipeline for `config`, loaded once per process from local files only (a different
    configuration replaces it)."""
    with _HELD.lock:
        if _HELD.loaded is not None and _HELD.loaded.config == config:
            return _HELD.loaded
        _HELD.loaded = None  # let the old one go before the new one takes memory
        started = time.perf_counter()
        pipeline, device = _load(config)
        applied = apply_preset(
            pipeline,
            config.options,
            lora=config.lora,
            lora_2=config.lora_2,
            attention=config.attention,
            compile_backend=config.compile_backend,
            shape=config.shape,
            checkpoint=config.checkpoint,
            decoder=config.decoder,
            steps=config.steps,
        )
        decoder = None
        if config.options.decoder == "light" and config.decoder is not None:
            decoder = load_decoder(Path(config.decoder), pipeline.vae, device)
        seconds = time.perf_counter() - started
        _HELD.loads.append(seconds)
        _HELD.loaded = Loaded(
            config,
            pipeline,
            seconds,
            device,
            applied=applied,
            gpu_class=gpu_class(device),
            decoder=decoder,
        )
        return _HELD.loaded


def gpu_class(device: str) -> str:
    """The name of the device's GPU (`NVIDIA H200`), or `cpu`."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return str(torch.cuda.get_device_name(torch.device(device)))
    return "cpu"


def _load(config: WanConfig) -> tuple[Any, str]:
    import torch
    from diffusers import AutoencoderKLWan, WanImageToVideoPipeline

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype_name = config.dtype
    if dtype_name == "auto":
        dtype_name = "bfloat16" if device.startswith("cuda") else "float32"
    dtype = getattr(torch, dtype_name)
    folder = model_folder(config.model)
    preset = config.options
    distilled = (
        distilled_transformers(Path(config.checkpoint), dtype)
        if preset.checkpoint and config.checkpoint
        else {}
    )
    try:
        # The VAE stays in float32 (Wan's VAE loses detail in bf16); the rest in `dtype`. The
        # TI2V-5B is published as a WanPipeline: the image-to-video class loads it all the same.
        vae = AutoencoderKLWan.from_pretrained(
            folder, subfolder="vae", dtype=torch.float32, local_files_only=True
        )
        pipeline = WanImageToVideoPipeline.from_pretrained(
            folder, vae=vae, dtype=dtype, local_files_only=True, **distilled
        )
    except Exception as error:  # any failure to load is a setup problem: say what to set
        raise ConfigurationError(
            f"cannot load Wan weights from {config.model!r}: set REELROUTE_WAN_MODEL to a local "
            "folder or a Hugging Face id already in the local cache (no downloads at run time), "
            f"or REELROUTE_SANDBOX=1 for the tiny offline pipeline ({type(error).__name__})",
            code=FailureCode.WAN_CONFIG,
        ) from None
    pipeline.set_progress_bar_config(disable=True)
    if config.vae_tiling or preset.decoder == "tiled":
        pipeline.vae.enable_tiling()
    if config.offload:
        pipeline.enable_model_cpu_offload(device=device)
    else:
        pipeline.to(device)
    return pipeline, device


def distilled_transformers(checkpoint: Path, dtype: Any) -> dict[str, Any]:
    """The transformer(s) of a distilled checkpoint published whole (FastWan): a pipeline folder
    (its `transformer/`, and `transformer_2/` for two experts) or a transformer folder, loaded
    to replace the model folder's."""
    from diffusers import WanTransformer3DModel

    found: dict[str, Any] = {}
    try:
        if (checkpoint / "transformer").is_dir():
            for name in ("transformer", "transformer_2"):
                if (checkpoint / name).is_dir():
                    found[name] = WanTransformer3DModel.from_pretrained(
                        checkpoint, subfolder=name, dtype=dtype, local_files_only=True
                    )
        else:
            found["transformer"] = WanTransformer3DModel.from_pretrained(
                checkpoint, dtype=dtype, local_files_only=True
            )
    except Exception as error:  # a missing or foreign folder: say what to set
        raise ConfigurationError(
            f"cannot load the distilled checkpoint {str(checkpoint)!r} "
            f"({type(error).__name__}): set REELROUTE_WAN_CHECKPOINT to a local folder with a "
            "Wan transformer in diffusers layout (a pipeline folder or its transformer/)",
            code=FailureCode.WAN_CONFIG,
        ) from None
    return found


def load_decoder(folder: Path, vae: Any, device: str) -> Any:
    """A light VAE decoder from `folder` (a diffusers AutoencoderKLWan, or a pipeline folder
    with `vae/`), on `device` in float32; refused unless its latents are the model VAE's
    (channels, mean and spread), since it decodes what the model makes."""
    import torch
    from diffusers import AutoencoderKLWan

    subfolder = "vae" if (folder / "vae").is_dir() else None
    try:
        light = AutoencoderKLWan.from_pretrained(
            folder, subfolder=subfolder, dtype=torch.float32, local_files_only=True
        )
    except Exception as error:
        raise ConfigurationError(
            f"cannot load the light decoder {str(folder)!r} ({type(error).__name__}): set "
            "REELROUTE_WAN_DECODER to a local diffusers AutoencoderKLWan folder",
            code=FailureCode.WAN_CONFIG,
        ) from None
    for key in ("z_dim", "latents_mean", "latents_std", "patch_size", "scale_factor_spatial"):
        if light.config.get(key) != vae.config.get(key):
            raise ConfigurationError(
                f"the light decoder {folder.name} does not decode this model's latents: its "
                f"{key} is {light.config.get(key)!r}, the model's {vae.config.get(key)!r}; use "
                "a decoder made for this model",
                code=FailureCode.WAN_CONFIG,
            )
    return light.to(device).eval()


def release_memory(device: str) -> None:
    """Give back what one video's run left cached (the weights stay)."""
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


def memory_in_use(device: str) -> int:
    """Bytes the process holds: on the GPU (allocated by torch) or, on a CPU, its resident set."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return int(torch.cuda.memory_allocated())
    import psutil

    return int(psutil.Process().memory_info().rss)


def translate(error: BaseException, *, width: int, height: int, frames: int) -> ProviderError:
    """An error of the pipeline run as one of ours. Out of GPU memory, and an input the model
    cannot take, fail the item (the same input fails again). A fault of the GPU or its driver may
    pass: the next attempt retries. Anything else is a failure of the model code on this input:
    permanent, with the error's type and message for whoever reads the item."""
    import torch

    where = f"at {width}x{height}, {frames} frames"
    if isinstance(error, torch.OutOfMemoryError):
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return PermanentError(
            f"the GPU ran out of memory {where}: set REELROUTE_WAN_OFFLOAD=true, "
            "REELROUTE_WAN_VAE_TILING=true or a smaller REELROUTE_WAN_MAX_AREA",
            code=FailureCode.CUDA_OOM,
        )
    if isinstance(error, ValueError | TypeError | IndexError):
        return PermanentError(
            f"Wan cannot make this input {where}: {error}", code=FailureCode.BAD_INPUT
        )
    accelerator_error = getattr(torch, "AcceleratorError", ())
    if isinstance(error, accelerator_error) or "CUDA error" in str(error):
        return TransientError(f"the GPU failed {where}: {error}", code=FailureCode.GPU_FAULT)
    return PermanentError(
        f"Wan failed {where}: {type(error).__name__}: {error}; the same input fails again: "
        "try fewer frames, a smaller REELROUTE_WAN_MAX_AREA or another REELROUTE_WAN_PRESET",
        code=FailureCode.WAN_FAILED,
    )


class WanProvider:
    """Wan on this host's GPU (or CPU), with the pipeline kept for the life of the process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._config: WanConfig | None = None

    @property
    def config(self) -> WanConfig:
        """The configuration from the settings (resolved on first use)."""
        if self._config is None:
            self._config = WanConfig.from_settings(self.settings)
        return self._config

    def generate(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, on_task: TaskCallback
    ) -> GenerationResult:
        """Run the pipeline; progress (and so the lease heartbeat) after every denoising step."""
        import torch

        config = self.config
        frames = frames_for(request, config)
        try:
            with Image.open(io.BytesIO(request.image)) as source:
                image = source.convert("RGB")
        except OSError:
            raise PermanentError("the photo is not a readable image") from None
        loaded = load_pipeline(config)
        pipeline = loaded.pipeline
        multiple = pipeline.vae_scale_factor_spatial * pipeline.transformer.config.patch_size[1]
        width, height = size_for(image.width, image.height, config.max_area, multiple)
        generator = None
        if request.seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(request.seed)

        stopped: list[BaseException] = []

        pretend = config.step_seconds * frames / 121

        def step_done(_pipe: Any, step: int, _timestep: Any, kwargs: dict[str, Any]) -> Any:
            if pretend:
                time.sleep(pretend)  # sandbox mode: a GPU's pace, so a video can be cancelled
            try:
                on_progress((step + 1) / config.steps)
            except BaseException as error:  # the caller stops us (e.g. its lease was lost)
                stopped.append(error)
                raise
            return kwargs

        extra = {}
        if config.guidance_scale_2 is not None:
            extra["guidance_scale_2"] = config.guidance_scale_2
        on_progress(0.0)
        try:
            output = pipeline(
                image=image.resize((width, height)),
                prompt=request.prompt,
                negative_prompt=NEGATIVE_PROMPT,
                height=height,
                width=width,
                num_frames=frames,
                num_inference_steps=config.steps,
                guidance_scale=config.guidance_scale,
                **extra,
                generator=generator,
                output_type="latent" if loaded.decoder is not None else "np",
                callback_on_step_end=step_done,
                max_sequence_length=config.max_sequence_length,
            )
            frames_out = output.frames
            if loaded.decoder is not None:  # the light decoder decodes the model's latents
                frames_out = decode_latents(pipeline, loaded.decoder, frames_out)
            video = (frames_out[0] * 255).round().clip(0, 255).astype("uint8")
            data = encode_mp4(iter(video), fps=config.fps, width=width, height=height)
        except ProviderError:
            raise
        except Exception as error:  # the boundary: nothing of torch or diffusers leaves it
            if stopped and error is stopped[0]:
                raise  # the caller's own exception, from its progress callback
            raise translate(error, width=width, height=height, frames=frames) from None
        finally:
            output = frames_out = None
            release_memory(loaded.device)
        return GenerationResult(
            video=data,
            model=Path(config.model).name if Path(config.model).exists() else config.model,
            cost_credits=0,
            provider_task_id=None,
            frames=len(video),
            fps=config.fps,
            width=width,
            height=height,
            wan_preset=config.options.label,
            gpu_host=config.host,
            gpu_class=loaded.gpu_class,
            frames_asked=frames,
        )

    def cancel(self, task_id: str) -> None:
        """Nothing to do: a Wan run stops with its process (the flow run's cancellation)."""
