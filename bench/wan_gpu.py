"""The full-size Wan2.2-TI2V-5B with random weights, on a GPU: what loading costs against what
generating costs, the figures the warm pipeline process is for.

Nothing can be downloaded on the GPU machine: the model is built from the configs in
`bench/wan_configs/wan2.2-ti2v-5b/` (the published layout: a WanPipeline with
`expand_timesteps`, the 48-channel Wan2.2 VAE, a UMT5-XXL text encoder), with random weights,
saved with `save_pretrained`, then loaded back through reelroute's own loading path.

    python -m bench.wan_gpu --out /tmp/wan5b --json $OUT/wan_gpu.json        # on a GPU
    python -m bench.wan_gpu --reduced --out /tmp/wan-small                    # CPU, here

Measures (each printed, and all in the JSON):
1. load time to the device, cold (a fresh process, the files not yet read) and warm (again);
2. seconds per denoising step and peak memory at 1280x704, 121 frames, with and without model
   CPU offload and VAE tiling;
3. one whole video (50 steps);
4. two items through a pipeline process (`reelroute wan-server`): the second pays no load;
and the ratio of load to generation that the warm process removes from every video after the
first. `--reduced` shrinks the model, the picture and the steps so the same script runs on a
CPU in a minute or two: its figures show that it works, not how fast a GPU is.

`--presets full,fast,...` measures the Wan presets instead, on a pipeline built in memory (no
files: the 5B transformer with random weights, the real VAE, a 2-layer text encoder of the real
width, since the prompt is encoded once per video): for each preset, a fresh transformer with
the preset applied through reelroute's own `apply_preset` (a random rank-32 LoRA of the 5B's
layers for the fast ones), then
- seconds per denoising step at 1280x704, 121 frames (the steps after the first), and the
  first step's extra time (the compile, for the compiled presets);
- the seconds per video: the preset's steps times its step, plus one VAE decode (measured once);
- peak GPU memory; the time to apply the preset;
- the cache's share of skipped blocks. Random weights time the compute honestly, but say
  nothing about a cache's hit rate on real weights.
Figures go to `--json` after each preset, so a run cut short still reports the ones done.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

CONFIG_ROOT = Path(__file__).resolve().parent / "wan_configs"
CONFIGS = CONFIG_ROOT / "wan2.2-ti2v-5b"
MODELS = {"5b": "wan2.2-ti2v-5b", "a14b": "wan2.2-i2v-a14b"}
"""`--model`: the published layouts in wan_configs/ (random weights at full size)."""
SIZES = {"5b": (1280, 704, 121), "a14b": (1280, 720, 81)}
"""Width, height, frames of a whole video: each model card's 720p, 5 s."""
WHOLE_PRESETS = {
    "5b": "full,fast,fast-compiled,fast-fp8,fast-fp8-compute,fast-light,fastwan",
    "a14b": "full,lightning",
}
REDUCED = {  # the same layout, small enough for a CPU
    "transformer": {"num_layers": 2, "num_attention_heads": 2, "ffn_dim": 256, "text_dim": 64},
    "text_encoder": {
        "d_model": 64,
        "d_ff": 128,
        "d_kv": 16,
        "num_heads": 4,
        "num_layers": 2,
        "vocab_size": 1024,
    },
    "vae": {"base_dim": 16, "decoder_base_dim": 16, "num_res_blocks": 1},
}


def _config(component: str, reduced: bool, model: str = "5b") -> dict[str, Any]:
    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    folder = CONFIG_ROOT / MODELS[model]
    config: dict[str, Any] = json.loads((folder / component / name).read_text())
    if reduced:
        config.update(REDUCED.get(component, {}))
    return config


def build(out: Path, reduced: bool) -> float:
    """Random weights from the configs, saved with save_pretrained; returns the seconds."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    started = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):  # build on the device: 5B of random numbers, fast
        transformer = WanTransformer3DModel.from_config(_config("transformer", reduced)).to(dtype)
        vae = AutoencoderKLWan.from_config(_config("vae", reduced))
        encoder_config = _config("text_encoder", reduced)
        encoder_config.pop("architectures", None)
        text_encoder = UMT5EncoderModel(UMT5Config(**encoder_config)).to(dtype).eval()
    vocab_size = int(encoder_config["vocab_size"])
    words = ["<pad>", "</s>", "<unk>"] + [f"w{n}" for n in range(vocab_size - 3)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    scheduler = UniPCMultistepScheduler.from_config(_config("scheduler", reduced))
    pipeline = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformer,
        expand_timesteps=True,
    )
    if out.exists():
        shutil.rmtree(out)
    pipeline.save_pretrained(out)
    del pipeline, transformer, vae, text_encoder
    if device == "cuda":
        torch.cuda.empty_cache()
    return time.perf_counter() - started


def _settings(model: Path, reduced: bool, **changes: Any) -> Any:
    from reelroute.models.assembly import load_settings

    fields: dict[str, Any] = {"_env_file": None, "wan_model": str(model)}
    if reduced:
        fields |= {"wan_max_area": 128 * 128, "wan_frames": 9, "wan_steps": 2}
    return load_settings(**(fields | changes))


def load_once(model: Path, reduced: bool) -> float:
    """`--load-only`: this process loads the pipeline to the device; prints the seconds."""
    from reelroute.providers.wan import WanConfig, load_pipeline

    loaded = load_pipeline(WanConfig.from_settings(_settings(model, reduced)))
    return loaded.seconds


def _load_in_fresh_process(model: Path, reduced: bool) -> float:
    argv = [sys.executable, "-m", "bench.wan_gpu", "--load-only", "--out", str(model)]
    done = subprocess.run(
        argv + (["--reduced"] if reduced else []),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def _photo() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1280, 720), (90, 140, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def steps_and_memory(model: Path, reduced: bool, offload: bool, tiling: bool) -> dict[str, float]:
    """Seconds per step (after the first) and peak memory for one 2-step video."""
    import torch

    from reelroute.models.core.enums import InferenceProvider
    from reelroute.providers.base import GenerationRequest
    from reelroute.providers.wan import WanProvider

    settings = _settings(model, reduced, wan_offload=offload, wan_vae_tiling=tiling, wan_steps=3)
    provider = WanProvider(settings)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    marks: list[float] = []
    request = GenerationRequest(
        item_id=uuid.uuid4(),
        provider=InferenceProvider.wan_local,
        image=_photo(),
        prompt="waves roll onto the beach at sunset",
    )
    started = time.perf_counter()
    provider.generate(
        request, on_progress=lambda _: marks.append(time.perf_counter()), on_task=lambda _: None
    )
    total = time.perf_counter() - started
    gaps = [b - a for a, b in itertools.pairwise(marks[1:])]  # steps 2 and 3
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return {
        "seconds_per_step": sum(gaps) / len(gaps) if gaps else float("nan"),
        "peak_gib": peak,
        "three_step_video_seconds": total,
    }


def whole_video(model: Path, reduced: bool) -> float:
    """One video at the model's defaults (50 steps; --reduced: 2)."""
    from reelroute.models.core.enums import InferenceProvider
    from reelroute.providers.base import GenerationRequest
    from reelroute.providers.wan import WanProvider

    provider = WanProvider(_settings(model, reduced))
    request = GenerationRequest(
        item_id=uuid.uuid4(), provider=InferenceProvider.wan_local, image=_photo(), prompt="waves"
    )
    started = time.perf_counter()
    provider.generate(request, on_progress=lambda _: None, on_task=lambda _: None)
    return time.perf_counter() - started


def through_process(model: Path, reduced: bool, folder: Path) -> dict[str, float]:
    """Two items through a pipeline process: (start → ready), first video, second video."""
    from reelroute.models.core.enums import InferenceProvider
    from reelroute.providers.base import GenerationRequest
    from reelroute.providers.wan_process import RemoteWan, ask_health

    path = folder / "gpu-0.sock"
    env = {**os.environ, "REELROUTE_WAN_MODEL": str(model)}
    if reduced:
        env |= {"REELROUTE_WAN_MAX_AREA": str(128 * 128), "REELROUTE_WAN_FRAMES": "9"}
        env |= {"REELROUTE_WAN_STEPS": "2"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "reelroute", "wan-server", "--socket", str(path), "--gpu", "0"],
        env=env,
    )
    try:
        while ask_health(path) is None:
            if process.poll() is not None:
                raise RuntimeError("the pipeline process did not start")
            time.sleep(0.5)
        ready = time.perf_counter() - started
        remote = RemoteWan(_settings(model, reduced, wan_servers=[str(path)]))
        times = []
        for _ in range(2):
            request = GenerationRequest(
                item_id=uuid.uuid4(),
                provider=InferenceProvider.wan_local,
                image=_photo(),
                prompt="waves",
            )
            began = time.perf_counter()
            remote.generate(request, on_progress=lambda _: None, on_task=lambda _: None)
            times.append(time.perf_counter() - began)
        health = ask_health(path)
        loads = health.loads if health is not None else -1
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {"ready": ready, "first": times[0], "second": times[1], "loads": float(loads)}


def _in_memory(reduced: bool, model: str = "5b") -> Any:
    """An image-to-video pipeline of `model` in memory (the 5B, or the A14B: two experts, the
    Wan2.1 VAE, boundary 0.9), without its transformers (set per preset)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder_config = _config("text_encoder", reduced, model)
    encoder_config.pop("architectures", None)
    encoder_config["num_layers"] = 2  # the prompt is encoded once a video: its width matters
    with torch.device(device):
        vae = AutoencoderKLWan.from_config(_config("vae", reduced, model))
        text_encoder = UMT5EncoderModel(UMT5Config(**encoder_config)).eval()
    if device == "cuda":
        text_encoder = text_encoder.to(torch.bfloat16)
    vocab_size = int(encoder_config["vocab_size"])
    words = ["<pad>", "</s>", "<unk>"] + [f"w{n}" for n in range(vocab_size - 3)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    two = model == "a14b"
    pipeline = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=UniPCMultistepScheduler.from_config(_config("scheduler", reduced, model)),
        transformer=None,
        transformer_2=None,
        boundary_ratio=0.9 if two else None,
        expand_timesteps=not two,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _transformer(reduced: bool, model: str = "5b") -> Any:
    import torch
    from diffusers import WanTransformer3DModel

    cuda = torch.cuda.is_available()
    with torch.device("cuda" if cuda else "cpu"):
        transformer = WanTransformer3DModel.from_config(_config("transformer", reduced, model))
    return transformer.to(torch.bfloat16 if cuda else torch.float32)


def run_preset(
    pipeline: Any,
    name: str,
    model: str,
    reduced: bool,
    *,
    steps: int | None = None,
    output_type: str = "np",
    marks: list[float] | None = None,
) -> Any:
    """The pipeline called as preset `name` runs on `model`: the model's size (or the reduced
    one), the preset's steps (or `steps`) and guidance, the A14B's second guidance; each step's
    end (GPU synchronised) appended to `marks`. Returns the frames (or latents)."""
    import torch
    from PIL import Image

    from reelroute.providers.wan_presets import preset_named
    from reelroute.providers.wan_shapes import SHAPES

    preset = preset_named(name)
    shape = SHAPES[MODELS[model]]
    width, height, frames = SIZES[model] if not reduced else (128, 128, 9)
    guidance = preset.guidance_scale if preset.guidance_scale is not None else shape.guidance_scale
    extra: dict[str, Any] = {}
    if model == "a14b":
        second = preset.guidance_scale_2
        extra["guidance_scale_2"] = second if second is not None else shape.guidance_scale_2
    cuda = torch.cuda.is_available()

    def step_done(_pipe: Any, _step: int, _timestep: Any, kwargs: dict[str, Any]) -> Any:
        if cuda:
            torch.cuda.synchronize()
        if marks is not None:
            marks.append(time.perf_counter())
        return kwargs

    return pipeline(
        image=Image.new("RGB", (width, height), (90, 140, 200)),
        prompt="waves roll onto the beach at sunset",
        negative_prompt="blurry" if guidance > 1 else None,
        height=height,
        width=width,
        num_frames=frames,
        num_inference_steps=steps or preset.steps or shape.steps,
        guidance_scale=guidance,
        output_type=output_type,
        callback_on_step_end=step_done,
        max_sequence_length=512 if not reduced else 16,
        **extra,
    ).frames


def preset_figures(
    pipeline: Any,
    name: str,
    reduced: bool,
    lora_folder: Path,
    measured_steps: int,
    attention: str | None = None,
    model: str = "5b",
) -> dict[str, Any]:
    """One preset on fresh transformer(s) (with the host's `attention` backend, if given): its
    steps, memory and time to apply."""
    import torch

    from reelroute.providers.wan_options import count_blocks
    from reelroute.providers.wan_presets import preset_named
    from reelroute.providers.wan_shapes import SHAPES

    preset = preset_named(name)
    shape = SHAPES[MODELS[model]]
    cuda = torch.cuda.is_available()
    started = time.perf_counter()
    applied, _light = _set_preset(pipeline, name, model, reduced, lora_folder, attention)
    built = time.perf_counter() - started - applied.seconds
    weights = torch.cuda.memory_allocated() / 2**30 if cuda else float("nan")
    if cuda:  # the peak of making a video, not of building the random weights
        torch.cuda.reset_peak_memory_stats()
    counter = count_blocks(pipeline)
    guidance = preset.guidance_scale if preset.guidance_scale is not None else shape.guidance_scale
    marks: list[float] = []
    began = time.perf_counter()
    latents = run_preset(
        pipeline,
        name,
        model,
        reduced,
        steps=measured_steps,
        output_type="latent",
        marks=marks,
    )
    first = marks[0] - began
    later = [b - a for a, b in itertools.pairwise(marks)]
    per_step = sum(later) / len(later)
    steps = preset.steps or shape.steps
    figures = {
        "preset": preset.label,
        "steps": steps,
        "forwards_per_step": 1 if guidance <= 1 else 2,
        "seconds_per_step": per_step,
        "first_step_extra_seconds": max(0.0, first - per_step),
        "denoise_seconds_per_video": steps * per_step,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
        "weights_gib": weights,
        "build_seconds": built,
        "apply_seconds": applied.seconds,
        "attention": applied.attention,
        "compiled_blocks": applied.compiled_blocks,
        # Inside a compiled block the counting hook does not run: no figure there.
        "skipped_share": counter.skipped_share if preset.cache else None,
        "forwards_counted": counter.forwards,
    }
    for handle in counter.handles:
        handle.remove()
    figures["_latents"] = latents
    return figures


def vae_decode_seconds(pipeline: Any, latents: Any) -> dict[str, float]:
    """One VAE decode of a video's latents (what every video pays once, whatever the preset)."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with torch.no_grad():
        pipeline.vae.decode(latents.to(pipeline.vae.dtype), return_dict=False)
    if cuda:
        torch.cuda.synchronize()
    return {
        "seconds": time.perf_counter() - started,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
    }


def whole_video_in_memory(pipeline: Any, name: str, reduced: bool) -> float:
    """One video, prompt to pixels, with the pipeline as the last preset left it."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    run_preset(pipeline, name, "5b", reduced)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def presets(
    names: list[str], reduced: bool, json_path: Path | None, folder: Path, model: str = "5b"
) -> None:
    """`--presets`: every named preset on the in-memory 5B; prints a table against `full`."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    report: dict[str, Any] = {"device": device, "reduced": reduced, "presets": {}}
    started = time.perf_counter()
    pipeline = _in_memory(reduced, model)
    report["model"] = MODELS[model]
    report["versions"] = versions()
    report["pipeline_build_seconds"] = time.perf_counter() - started
    print(
        f"{device}: pipeline (without transformer) built in "
        f"{report['pipeline_build_seconds']:.1f} s"
    )

    def save() -> None:
        if json_path is not None:
            json_path.write_text(json.dumps(report, indent=2))

    for name in names:  # `full:_native_cudnn`: a preset with the host's attention backend
        preset, _, attention = name.partition(":")
        measured = 3 if "compiled" not in name else 4
        try:
            figures = preset_figures(
                pipeline, preset, reduced, folder, measured, attention or None, model
            )
        except Exception as error:  # a preset that cannot run here is a figure too
            report["presets"][name] = {"error": f"{type(error).__name__}: {error}"[:500]}
            print(f"{name}: {report['presets'][name]['error']}")
            save()
            continue
        latents = figures.pop("_latents")
        if "vae_decode" not in report:
            report["vae_decode"] = vae_decode_seconds(pipeline, latents)
            print(f"VAE decode of one video: {report['vae_decode']['seconds']:.1f} s")
        figures["seconds_per_video"] = (
            figures["denoise_seconds_per_video"] + report["vae_decode"]["seconds"]
        )
        report["presets"][name] = figures
        print(
            f"{name}: {figures['seconds_per_step']:.2f} s/step x {figures['steps']} = "
            f"{figures['seconds_per_video']:.0f} s/video; first step +"
            f"{figures['first_step_extra_seconds']:.0f} s; peak {figures['peak_gib']:.1f} GiB "
            f"(weights {figures['weights_gib']:.1f}); "
            f"apply {figures['apply_seconds']:.1f} s; skipped {figures['skipped_share']}; "
            f"attention {figures['attention']}"
        )
        save()
    last = names[-1].partition(":")[0]
    if model == "5b" and "seconds_per_video" in report["presets"].get(names[-1], {}):
        # The extrapolation checked: one whole video (text, every step, decode) with the last
        # preset, against its predicted seconds per video.
        whole = whole_video_in_memory(pipeline, last, reduced)
        predicted = report["presets"][names[-1]]["seconds_per_video"]
        report["whole_video"] = {"preset": last, "seconds": whole, "predicted": predicted}
        print(f"one whole {last} video: {whole:.1f} s (predicted {predicted:.1f} s)")
    full = report["presets"].get("full", {}).get("seconds_per_video")
    if full:
        for name, figures in report["presets"].items():
            if "seconds_per_video" in figures:
                figures["time_against_full"] = figures["seconds_per_video"] / full
                print(f"  {name:15} {figures['time_against_full']:.3f}x full")
    save()


def _light_decoder(pipeline: Any) -> Any:
    """A light decoder in the model VAE's latent layout with a quarter of its decoder's width
    (as LightX2V's LightVAE prunes Wan's), random weights: its time and memory are honest, its
    pictures are not."""
    import torch
    from diffusers import AutoencoderKLWan

    config = {k: v for k, v in dict(pipeline.vae.config).items() if not k.startswith("_")}
    config["decoder_base_dim"] = max(
        4, int(config.get("decoder_base_dim") or config["base_dim"]) // 4
    )
    with torch.device(next(pipeline.vae.parameters()).device):
        return AutoencoderKLWan.from_config(config).eval()


def _set_preset(
    pipeline: Any,
    name: str,
    model: str,
    reduced: bool,
    folder: Path,
    attention: str | None = None,
) -> Any:
    """Fresh transformer(s) with random weights (a distilled checkpoint's stand-in too), the
    model's scheduler back, then the preset applied through reelroute's `apply_preset`;
    returns (applied, light decoder or None)."""
    import gc

    import torch

    from reelroute.providers.tiny_wan import lora_like
    from reelroute.providers.wan_options import apply_preset
    from reelroute.providers.wan_presets import preset_named

    preset = preset_named(name)
    pipeline.transformer = pipeline.transformer_2 = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    pipeline.transformer = _transformer(reduced, model)
    if model == "a14b":
        pipeline.transformer_2 = _transformer(reduced, model)
    from diffusers import UniPCMultistepScheduler

    pipeline.scheduler = UniPCMultistepScheduler.from_config(_config("scheduler", reduced, model))
    pipeline.vae.disable_tiling()
    lora = lora_2 = None
    if preset.lora:
        lora = str(lora_like(pipeline.transformer, folder / f"lora-{model}"))
        if pipeline.transformer_2 is not None:
            lora_2 = str(lora_like(pipeline.transformer_2, folder / f"lora-{model}-2", seed=6))
    applied = apply_preset(
        pipeline,
        preset,
        lora=lora,
        lora_2=lora_2,
        attention=attention,
        shape=MODELS[model],
        checkpoint="random weights" if preset.checkpoint else None,
        decoder="random weights" if preset.decoder == "light" else None,
    )
    if preset.decoder == "tiled":
        pipeline.vae.enable_tiling()
    light = _light_decoder(pipeline) if preset.decoder == "light" else None
    return applied, light


def one_video(
    pipeline: Any, name: str, model: str, reduced: bool, light: Any = None
) -> dict[str, float]:
    """One video, prompt to MP4 bytes: its seconds, the parts (text and set-up, the steps, the
    decode, the MP4), the median step, and the peak GPU memory of all of it."""
    import statistics

    import torch

    from reelroute.providers.video import encode_mp4
    from reelroute.providers.wan_options import decode_latents
    from reelroute.providers.wan_shapes import SHAPES

    shape = SHAPES[MODELS[model]]
    width, height, _ = SIZES[model] if not reduced else (128, 128, 9)
    cuda = torch.cuda.is_available()
    marks: list[float] = []
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    output = run_preset(
        pipeline,
        name,
        model,
        reduced,
        output_type="latent" if light is not None else "np",
        marks=marks,
    )
    if light is not None:
        output = decode_latents(pipeline, light, output)
    if cuda:
        torch.cuda.synchronize()
    decoded = time.perf_counter()
    video = (output[0] * 255).round().clip(0, 255).astype("uint8")
    encode_mp4(iter(video), fps=shape.fps, width=width, height=height)
    ended = time.perf_counter()
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    step = statistics.median(gaps) if gaps else marks[0] - began
    decode = decoded - marks[-1]
    return {
        "seconds": ended - began,
        "first_step_seconds": marks[0] - began,
        "steps_seconds": marks[-1] - began,
        "decode_seconds": decode,
        "mp4_seconds": ended - decoded,
        "step_seconds": step,
        "steps": float(len(marks)),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
        # The old method: the steps times the median step, plus the decode.
        "extrapolated_seconds": len(marks) * step + decode,
    }


def whole(
    names: list[str], model: str, reduced: bool, videos: int, json_path: Path | None, folder: Path
) -> dict[str, Any]:
    """`--whole`: for each preset, one warm-up video, then `videos` whole videos (prompt to
    MP4), their median and spread, the peak memory of a whole video (the decode included), the
    extrapolation's error; then the decoders on the same latents."""
    import statistics

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    report: dict[str, Any] = {
        "device": device,
        "model": MODELS[model],
        "size": list(SIZES[model]) if not reduced else [128, 128, 9],
        "reduced": reduced,
        "versions": versions(),
        "presets": {},
    }

    def save() -> None:
        if json_path is not None:
            json_path.write_text(json.dumps(report, indent=2))

    pipeline = _in_memory(reduced, model)
    for name in names:
        try:
            applied, light = _set_preset(pipeline, name, model, reduced, folder)
            warm = one_video(pipeline, name, model, reduced, light)
            runs = [one_video(pipeline, name, model, reduced, light) for _ in range(videos)]
        except Exception as error:  # a preset that cannot run here is a figure too
            report["presets"][name] = {"error": f"{type(error).__name__}: {error}"[:500]}
            print(f"{name}: {report['presets'][name]['error']}")
            save()
            continue
        seconds = [run["seconds"] for run in runs]
        median = statistics.median(seconds)
        extrapolated = statistics.median(run["extrapolated_seconds"] for run in runs)
        figures = {
            "videos": seconds,
            "median_seconds": median,
            "spread": (max(seconds) - min(seconds)) / median,
            "warm_up_seconds": warm["seconds"],
            "peak_gib": max(run["peak_gib"] for run in runs),
            "attention": applied.attention,
            "scheduler": applied.scheduler,
            "extrapolated_seconds": extrapolated,
            "extrapolation_error": extrapolated / median - 1,
        }
        for part in ("first_step_seconds", "step_seconds", "decode_seconds", "mp4_seconds"):
            figures[part] = statistics.median(run[part] for run in runs)
        figures["steps"] = runs[0]["steps"]
        report["presets"][name] = figures
        print(
            f"{name}: {median:.2f} s a video (n={videos}, spread {figures['spread']:.1%}; "
            f"warm-up {warm['seconds']:.1f} s): {figures['steps']:.0f} steps x "
            f"{figures['step_seconds']:.2f} s, decode {figures['decode_seconds']:.2f} s, mp4 "
            f"{figures['mp4_seconds']:.2f} s; peak {figures['peak_gib']:.1f} GiB; extrapolation "
            f"{extrapolated:.2f} s ({figures['extrapolation_error']:+.1%})"
        )
        save()
    full = report["presets"].get("full", {}).get("median_seconds")
    if full:
        for figures in report["presets"].values():
            if "median_seconds" in figures:
                figures["time_against_full"] = figures["median_seconds"] / full
    try:
        report["decoders"] = compare_decoders(pipeline, model, reduced)
    except Exception as error:
        report["decoders"] = {"error": f"{type(error).__name__}: {error}"[:500]}
    print(f"decoders: {json.dumps(report['decoders'])}")
    save()
    return report


def compare_decoders(pipeline: Any, model: str, reduced: bool) -> dict[str, Any]:
    """The same latents (one video's, the pipeline as the last preset left it) decoded by the
    full VAE, the same VAE tiled, and a light decoder: seconds, peak memory, and the first
    frame's SSIM against the full decoder's (with random weights the light decoder's pictures
    are unrelated: its SSIM says something only with real weights)."""
    import torch
    from PIL import Image
    from skimage.metrics import structural_similarity

    from reelroute.providers.wan_options import decode_latents

    cuda = torch.cuda.is_available()
    width, height, frames = SIZES[model] if not reduced else (128, 128, 9)
    pipeline.vae.disable_tiling()
    latents = pipeline(
        image=Image.new("RGB", (width, height), (90, 140, 200)),
        prompt="waves",
        height=height,
        width=width,
        num_frames=frames,
        num_inference_steps=1,
        guidance_scale=1.0,
        output_type="latent",
        max_sequence_length=512 if not reduced else 16,
    ).frames
    light = _light_decoder(pipeline)
    results: dict[str, Any] = {}
    first: Any = None
    for name in ("full", "tiled", "light"):
        decoder = light if name == "light" else pipeline.vae
        if name == "tiled":
            pipeline.vae.enable_tiling()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        video = decode_latents(pipeline, decoder, latents)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        pipeline.vae.disable_tiling()
        frame = video[0][0]
        if first is None:
            first = frame
        results[name] = {
            "seconds": seconds,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
            "first_frame_ssim": float(
                structural_similarity(  # type: ignore[no-untyped-call]
                    first, frame, channel_axis=2, data_range=1.0
                )
            ),
        }
    return results


def versions() -> dict[str, str]:
    """The libraries and driver the figures were measured with."""
    import importlib.metadata

    import torch

    found = {"torch": torch.__version__, "cuda": str(torch.version.cuda)}
    for package in ("diffusers", "transformers", "torchao", "peft"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    if torch.cuda.is_available():
        try:
            done = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                check=False,
            )
            found["driver"] = done.stdout.strip()
        except OSError:
            found["driver"] = "unknown"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wan_gpu")
    parser.add_argument("--out", type=Path, default=Path("/tmp/reelroute-wan5b"))
    parser.add_argument("--reduced", action="store_true")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--presets", help="measure these Wan presets (comma-separated) instead, in memory"
    )
    parser.add_argument(
        "--whole",
        action="store_true",
        help="whole videos, prompt to MP4, per preset (--presets; default: the model's list), "
        "then the decoders on the same latents",
    )
    parser.add_argument("--model", choices=sorted(MODELS), default="5b")
    parser.add_argument("--videos", type=int, default=2, help="timed videos after a warm-up")
    options = parser.parse_args()
    if options.whole:
        names = (options.presets or WHOLE_PRESETS[options.model]).split(",")
        options.out.mkdir(parents=True, exist_ok=True)
        whole(
            [name.strip() for name in names if name.strip()],
            options.model,
            options.reduced,
            max(2, options.videos),
            options.json,
            options.out,
        )
        return
    if options.presets:
        names = [name.strip() for name in options.presets.split(",") if name.strip()]
        options.out.mkdir(parents=True, exist_ok=True)
        presets(names, options.reduced, options.json, options.out, options.model)
        return
    if options.load_only:
        print(load_once(options.out, options.reduced))
        return
    import torch

    figures: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "reduced": options.reduced,
        "build_and_save_seconds": build(options.out, options.reduced),
    }
    print(f"built and saved in {figures['build_and_save_seconds']:.1f} s on {figures['device']}")
    figures["load_cold_seconds"] = _load_in_fresh_process(options.out, options.reduced)
    figures["load_warm_seconds"] = _load_in_fresh_process(options.out, options.reduced)
    cold, warm = figures["load_cold_seconds"], figures["load_warm_seconds"]
    print(f"load: cold {cold:.1f} s, warm {warm:.1f} s")
    variants: dict[str, dict[str, Any]] = {}
    for offload in (False, True):
        for tiling in (False, True):
            key = f"offload={offload},tiling={tiling}"
            try:
                variants[key] = steps_and_memory(options.out, options.reduced, offload, tiling)
            except Exception as error:  # an out-of-memory variant is a figure too
                variants[key] = {"error": f"{type(error).__name__}: {error}"}
            print(f"{key}: {variants[key]}")
    figures["variants"] = variants
    figures["whole_video_seconds"] = whole_video(options.out, options.reduced)
    print(f"one whole video: {figures['whole_video_seconds']:.1f} s")
    figures["pipeline_process"] = through_process(options.out, options.reduced, options.out.parent)
    process = figures["pipeline_process"]
    print(
        f"pipeline process: ready in {process['ready']:.1f} s, first video {process['first']:.1f}"
        f" s, second {process['second']:.1f} s, loads {process['loads']:.0f}"
    )
    figures["load_over_generate"] = figures["load_warm_seconds"] / figures["whole_video_seconds"]
    print(
        f"load / generate: {figures['load_over_generate']:.2f} (what the warm process saves on "
        "every video after the first)"
    )
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
