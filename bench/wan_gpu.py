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

CONFIGS = Path(__file__).resolve().parent / "wan_configs" / "wan2.2-ti2v-5b"
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


def _config(component: str, reduced: bool) -> dict[str, Any]:
    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    config: dict[str, Any] = json.loads((CONFIGS / component / name).read_text())
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
    from reelroute.models.settings import load_settings

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

    from reelroute.models.enums import InferenceProvider
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
    from reelroute.models.enums import InferenceProvider
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
    from reelroute.models.enums import InferenceProvider
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wan_gpu")
    parser.add_argument("--out", type=Path, default=Path("/tmp/reelroute-wan5b"))
    parser.add_argument("--reduced", action="store_true")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
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
