"""A tiny Wan image-to-video pipeline with random weights, for sandbox mode and tests.

Built from configs (the sizes of diffusers' own Wan tests), saved with `save_pretrained` into a
folder once, then loaded by `providers.wan` through exactly the same `from_pretrained` path as
real weights. It makes a real mp4 in seconds on a CPU; the pictures are noise.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

MARKER = "model_index.json"
VOCAB_SIZE = 64


def build_tiny_wan(target: Path) -> Path:
    """Create the tiny pipeline in `target` (atomically: built aside, then renamed)."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        PreTrainedTokenizerFast,
        UMT5Config,
        UMT5EncoderModel,
    )

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,
    )
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    text_encoder = UMT5EncoderModel(
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
    words = ["<pad>", "</s>", "<unk>"] + [f"w{n}" for n in range(VOCAB_SIZE - 3)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    pipeline = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
        image_encoder=image_encoder,
        transformer=transformer,
    )
    staging = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
    pipeline.save_pretrained(staging)
    try:
        os.replace(staging, target)  # two builders at once: the first rename wins
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_tiny_wan(folder: Path) -> Path:
    """The tiny pipeline's folder, built on first use."""
    if not (folder / MARKER).exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        build_tiny_wan(folder)
    return folder
