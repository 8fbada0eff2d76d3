"""The three Wan image-to-video model shapes diffusers' `WanImageToVideoPipeline` serves, told
apart from a model folder's `model_index.json` and component configs (never from its name),
with each shape's defaults. No torch here: the worker and the web app may read it.

- `wan2.1-i2v`: a CLIP image encoder, 36 input channels, the Wan2.1 VAE. 16 fps, 81 frames,
  832x480, 40 steps, guidance 5.0.
- `wan2.2-ti2v-5b`: no image encoder, `expand_timesteps`, the 48-channel Wan2.2 VAE (16x
  spatial compression). 24 fps, 121 frames, 1280x704, 50 steps, guidance 5.0.
- `wan2.2-i2v-a14b`: `transformer_2` and `boundary_ratio` (two experts), no image encoder.
  16 fps, 81 frames, 832x480, 40 steps, guidance 3.5 and 3.5 (`guidance_scale_2`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reelroute.models.core.enums import FailureCode
from reelroute.providers.base import ConfigurationError


@dataclass(frozen=True)
class WanShape:
    """One model layout and its defaults."""

    name: str
    fps: float
    frames: int
    max_area: int
    steps: int
    guidance_scale: float
    guidance_scale_2: float | None = None
    """The second expert's guidance (A14B only)."""


WAN21_I2V = WanShape("wan2.1-i2v", 16.0, 81, 832 * 480, 40, 5.0)
WAN22_TI2V_5B = WanShape("wan2.2-ti2v-5b", 24.0, 121, 1280 * 704, 50, 5.0)
WAN22_I2V_A14B = WanShape("wan2.2-i2v-a14b", 16.0, 81, 832 * 480, 40, 3.5, 3.5)
SHAPES = {shape.name: shape for shape in (WAN21_I2V, WAN22_TI2V_5B, WAN22_I2V_A14B)}


def _json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigurationError(
            f"cannot read {path}: {error}", code=FailureCode.WAN_CONFIG
        ) from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} is not a JSON object", code=FailureCode.WAN_CONFIG)
    return data


def _present(index: dict[str, object], component: str) -> bool:
    """Whether model_index.json names a component (`[library, class]`, not `[null, null]`)."""
    entry = index.get(component)
    return isinstance(entry, list) and len(entry) == 2 and entry[1] is not None


def read_shape(folder: Path) -> WanShape:
    """The shape of the model saved in `folder` (diffusers layout)."""
    index = _json(folder / "model_index.json")
    if _present(index, "transformer_2") or index.get("boundary_ratio") is not None:
        return WAN22_I2V_A14B
    vae = _json(folder / "vae" / "config.json") if (folder / "vae").is_dir() else {}
    if index.get("expand_timesteps") or vae.get("z_dim") == 48:
        return WAN22_TI2V_5B
    if _present(index, "image_encoder"):
        return WAN21_I2V
    raise ConfigurationError(
        f"{folder} is not a Wan image-to-video model diffusers can run: it has neither an image "
        "encoder (Wan2.1 I2V), nor expand_timesteps (Wan2.2 TI2V-5B), nor two experts (A14B)",
        code=FailureCode.WAN_CONFIG,
    )


def model_folder(model: str) -> Path:
    """The local folder of `model`: a folder, or a Hugging Face id already in the local cache
    (nothing is downloaded)."""
    path = Path(model)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not in the cache, or not an id: say what to set
        raise ConfigurationError(
            f"cannot find Wan weights {model!r}: set REELROUTE_WAN_MODEL to a local folder or a "
            "Hugging Face id already in the local cache (no downloads at run time), or "
            "REELROUTE_SANDBOX=1 for the tiny offline pipeline",
            code=FailureCode.WAN_CONFIG,
        ) from None


def linear_sizes(folder: Path) -> set[int]:
    """The input sizes of the transformer's linear layers (attention, feed-forward, the text,
    time and image embedders), read from its config: what a LoRA for this model must match."""
    config = _json(folder / "transformer" / "config.json")
    inner = int(str(config["num_attention_heads"])) * int(str(config["attention_head_dim"]))
    sizes = {inner, int(str(config["ffn_dim"])), int(str(config["text_dim"]))}
    sizes.add(int(str(config.get("freq_dim", 256))))
    if config.get("image_dim"):
        sizes.add(int(str(config["image_dim"])))
    return sizes
