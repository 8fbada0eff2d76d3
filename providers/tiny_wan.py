"""Tiny Wan image-to-video pipelines with random weights, for sandbox mode and tests, in each of
the three real shapes (`providers.wan_shapes`): Wan2.1-I2V, Wan2.2-TI2V-5B (sandbox mode's, the
default model's) and Wan2.2-I2V-A14B.

Built from configs (the sizes of diffusers' own Wan tests, with each shape's layout), saved with
`save_pretrained` into a folder once, then loaded by `providers.wan` through exactly the same
`from_pretrained` path as real weights. Each makes a real mp4 in seconds on a CPU; the pictures
are noise.

`make_lora` (peft) and `lora_like` make random LoRAs in the layout of the distilled ones, for
the fast presets in sandbox mode, the tests and the benchmarks.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from reelroute.providers.wan_shapes import SHAPES, WAN21_I2V, WAN22_I2V_A14B, WAN22_TI2V_5B

MARKER = "model_index.json"
VOCAB_SIZE = 64
DEFAULT_SHAPE = WAN22_TI2V_5B.name  # sandbox mode runs the default model's shape


def _tokenizer() -> object:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "</s>", "<unk>"] + [f"w{n}" for n in range(VOCAB_SIZE - 3)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def _text_encoder() -> object:
    from transformers import UMT5Config, UMT5EncoderModel

    return UMT5EncoderModel(
        UMT5Config(
            vocab_size=VOCAB_SIZE,
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            dropout_rate=0.0,
        )
    ).eval()


def _transformer(channels_in: int, channels_out: int, image_dim: int | None) -> object:
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=channels_in,
        out_channels=channels_out,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=image_dim,
    )


def _wan21_vae() -> object:
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def _wan22_vae() -> object:
    """The Wan2.2 VAE's layout in miniature: 48 latent channels, 2x2 patches in and out
    (12 channels), residual blocks, 16x spatial and 4x temporal compression."""
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=3,
        z_dim=48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
    )


def _wan22_scheduler() -> object:
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0
    )


def _pipeline(shape: str) -> object:
    """The tiny pipeline of one shape, in the layout its real weights are published in."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    common = {"tokenizer": _tokenizer(), "text_encoder": _text_encoder()}
    if shape == WAN21_I2V.name:  # a CLIP image encoder, 16 + 4 + 16 input channels
        return WanImageToVideoPipeline(
            **common,
            vae=_wan21_vae(),
            scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
            image_processor=CLIPImageProcessor(crop_size=32, size=32),
            image_encoder=CLIPVisionModel(
                CLIPVisionConfig(
                    hidden_size=4,
                    projection_dim=4,
                    num_hidden_layers=2,
                    num_attention_heads=2,
                    image_size=32,
                    intermediate_size=16,
                    patch_size=1,
                )
            ),
            transformer=_transformer(36, 16, image_dim=4),
        )
    if shape == WAN22_TI2V_5B.name:  # published as a WanPipeline: text and image to video
        return WanPipeline(
            **common,
            vae=_wan22_vae(),
            scheduler=_wan22_scheduler(),
            transformer=_transformer(48, 48, image_dim=None),
            expand_timesteps=True,
        )
    if shape == WAN22_I2V_A14B.name:  # two experts, switched at boundary_ratio; no CLIP
        return WanImageToVideoPipeline(
            **common,
            vae=_wan21_vae(),
            scheduler=_wan22_scheduler(),
            transformer=_transformer(36, 16, image_dim=None),
            transformer_2=_transformer(36, 16, image_dim=None),
            boundary_ratio=0.9,
        )
    raise ValueError(f"unknown Wan shape {shape!r}; known: {', '.join(SHAPES)}")


def build_tiny_wan(target: Path, shape: str = DEFAULT_SHAPE) -> Path:
    """Create the tiny pipeline of `shape` in `target` (atomically: built aside, renamed)."""
    import torch

    torch.manual_seed(0)
    pipeline = _pipeline(shape)
    staging = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
    pipeline.save_pretrained(staging)  # type: ignore[attr-defined]
    try:
        os.replace(staging, target)  # two builders at once: the first rename wins
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_tiny_wan(folder: Path, shape: str = DEFAULT_SHAPE) -> Path:
    """The tiny pipeline's folder (one per shape inside `folder`), built on first use."""
    target = folder / shape
    if not (target / MARKER).exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        build_tiny_wan(target, shape)
    return target


def make_lora(model: Path, target: Path, *, head_dim: int | None = None, seed: int = 3) -> Path:
    """A LoRA (rank 4, on every attention projection and feed-forward layer, random A and B so
    that it changes the output) for the transformer of the model at `model`, made with peft and
    saved as diffusers saves LoRAs (`target/pytorch_lora_weights.safetensors`): what the fast
    presets fuse, for sandbox mode, the tests and the benchmarks. `head_dim` makes it for
    another shape instead (a LoRA for another model, e.g. the 14B's on the 5B)."""
    import json

    import torch
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel
    from peft import LoraConfig, get_peft_model_state_dict

    config = json.loads((model / "transformer" / "config.json").read_text())
    config = {key: value for key, value in config.items() if not key.startswith("_")}
    if head_dim is not None:
        config["attention_head_dim"] = head_dim
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel.from_config(config)
    transformer.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=4,
            init_lora_weights=False,  # B is not zero: the LoRA changes what the model makes
            target_modules=["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"],
        )
    )
    with torch.no_grad():  # large enough to move a 2-step video visibly
        for name, parameter in transformer.named_parameters():
            if "lora_B" in name:
                parameter.mul_(20)
    WanImageToVideoPipeline.save_lora_weights(
        target, transformer_lora_layers=get_peft_model_state_dict(transformer)
    )
    return target / "pytorch_lora_weights.safetensors"


def lora_like(transformer: object, target: Path, *, rank: int = 32, seed: int = 5) -> Path:
    """A random LoRA of `rank` on every attention projection and feed-forward layer of a
    loaded `transformer` (any size: the full 5B too, without building a second copy), saved in
    peft's layout as diffusers saves LoRAs; what a distilled LoRA costs to fuse and run, not
    what it makes."""
    import torch
    from safetensors.torch import save_file

    wanted = ("to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2")
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in transformer.named_modules():  # type: ignore[attr-defined]
        if not name.startswith("blocks.") or not name.endswith(wanted):
            continue
        out_size, in_size = module.weight.shape
        down = torch.randn(rank, in_size, generator=generator) / in_size**0.5
        up = torch.randn(out_size, rank, generator=generator) * 0.01
        tensors[f"transformer.{name}.lora_A.weight"] = down.to(torch.bfloat16)
        tensors[f"transformer.{name}.lora_B.weight"] = up.to(torch.bfloat16)
    target.mkdir(parents=True, exist_ok=True)
    path = target / "pytorch_lora_weights.safetensors"
    save_file(tensors, str(path))
    return path


def make_checkpoint(model: Path, target: Path, *, seed: int = 7) -> Path:
    """A distilled checkpoint published whole, in miniature: the model's transformer(s) with
    other random weights, saved in a pipeline folder's layout (`target/transformer/`, and
    `transformer_2/` for two experts), as FastWan is published."""
    import json

    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    for name in ("transformer", "transformer_2"):
        if not (model / name).is_dir():
            continue
        config = json.loads((model / name / "config.json").read_text())
        config = {key: value for key, value in config.items() if not key.startswith("_")}
        WanTransformer3DModel.from_config(config).save_pretrained(target / name)
    return target


def make_light_decoder(model: Path, target: Path, *, seed: int = 9) -> Path:
    """A light VAE decoder in miniature: the model's VAE layout (the same latents) with a
    narrower decoder (`decoder_base_dim` halved), as LightX2V's LightVAE prunes Wan's."""
    import json

    import torch
    from diffusers import AutoencoderKLWan

    config = json.loads((model / "vae" / "config.json").read_text())
    config = {key: value for key, value in config.items() if not key.startswith("_")}
    decoder = config.get("decoder_base_dim") or config["base_dim"]
    config["decoder_base_dim"] = max(2, int(decoder) // 2)
    torch.manual_seed(seed)
    AutoencoderKLWan.from_config(config).save_pretrained(target)
    return target
