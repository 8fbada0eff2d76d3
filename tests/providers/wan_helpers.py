"""The tiny Wan pipeline in the tests: settings for one shape's folder, and a request."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

from reelroute.models.assembly import Settings, load_settings
from reelroute.models.core.enums import InferenceProvider
from reelroute.providers.base import GenerationRequest
from tests.providers.conftest import photo


def shape_settings(folder: Path, **changes: Any) -> Settings:
    """Settings for the tiny model in `folder`, on the CPU, small and in 2 steps."""
    fields: dict[str, Any] = {
        "_env_file": None,
        "wan_model": str(folder),
        "wan_device": "cpu",
        "wan_max_area": 96 * 64,
        "wan_steps": 2,
    }
    return load_settings(**(fields | changes))


def request(**changes: Any) -> GenerationRequest:
    """A 9-frame Wan request of a 64x48 photo."""
    base = GenerationRequest(
        item_id=uuid.uuid4(),
        provider=InferenceProvider.wan_local,
        image=photo(64, 48),
        prompt="waves roll in",
        frame_num=9,
    )
    return dataclasses.replace(base, **changes)
