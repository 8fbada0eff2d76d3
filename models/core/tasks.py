"""The one task type: what an admin asks for per video, and every rule it must meet.

The REST API takes it as its request body, the CLI and the admin page build it; `problems()` says
what is wrong with one, in words that say what to fix (models.intake.batches collects them).
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from reelroute.models.core.enums import AUTO, InferenceProvider
from reelroute.models.core.text import control_problem

MAX_PROMPT_UTF16_UNITS = 1000  # Runway's limit; applied to every item so it can be re-routed.
MIN_FRAMES, MAX_FRAMES = 5, 241  # Wan: 4k+1 frames; 241 is 10 s at the 5B model's 24 fps.
MIN_DURATION_S, MAX_DURATION_S = 1, 10
MAX_SEED = 2**32 - 1
MIN_DEADLINE_S, MAX_DEADLINE_S = 60, 30 * 24 * 3600


def parse_provider(value: str | None) -> InferenceProvider | None:
    """`None` or `auto` mean "apply the routing rules"; anything else must name a provider."""
    if value is None or value == AUTO:
        return None
    try:
        return InferenceProvider(value)
    except ValueError:
        choices = ", ".join([p.value for p in InferenceProvider] + [AUTO])
        raise ValueError(f"{value!r} is not a provider; choose one of {choices}") from None


def prompt_units(prompt: str) -> int:
    """Length in UTF-16 code units, as Runway counts it."""
    return len(prompt.encode("utf-16-le")) // 2


class TaskSpec(BaseModel):
    """One task of a batch: the seed's fields (SEED.md §2.1) and ours.

    Types are checked when it is built; the rules (prompt length, Wan's frame counts, ranges) by
    `problems()`, so that a batch names every problem of every task at once.
    """

    model_config = ConfigDict(extra="forbid")

    photo_id: uuid.UUID | None = Field(
        default=None,
        description="A photo of the batch's group (upload it first). Tasks made from files "
        "uploaded in the same batch (CLI, admin page) get theirs when it is stored.",
    )
    prompt: str = Field(description=f"What should move, and how (1 to {MAX_PROMPT_UTF16_UNITS}).")
    frame_num: int | None = Field(
        default=None, description=f"Wan's frame count, 4k+1 from {MIN_FRAMES} to {MAX_FRAMES}."
    )
    duration_s: int | None = Field(
        default=None,
        description=f"Seconds of video ({MIN_DURATION_S}-{MAX_DURATION_S}); each model uses its "
        "allowed length nearest to it.",
    )
    seed: int | None = Field(default=None, description=f"0 to {MAX_SEED}; random when omitted.")
    inference_provider: str | None = Field(
        default=None,
        description="A provider (wan_local, runway_gen4_turbo, runway_gen4.5, runway_veo3.1, "
        "runway_veo3.1_fast), or auto: the routing policy decides",
    )
    deadline_seconds: int | None = Field(
        default=None,
        description="Seconds from now by which the video should be ready; unset: the group's "
        "time-to-video target.",
    )
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="A registered webhook endpoint this item's events also go to.",
    )

    def provider(self) -> InferenceProvider | None:
        """The provider asked for; None for the routing rules (checked by `problems()`)."""
        return parse_provider(self.inference_provider)

    def problems(self) -> list[tuple[str, str]]:
        """Every rule this task breaks, as (field, what is wrong and how to fix it)."""
        problems = []
        try:
            parse_provider(self.inference_provider)
        except ValueError as error:
            problems.append(("inference_provider", str(error)))
        if not self.prompt.strip():
            problems.append(("prompt", "is empty; describe the motion you want"))
        elif (control := control_problem(self.prompt, free_text=True)) is not None:
            problems.append(("prompt", control))
        elif (units := prompt_units(self.prompt)) > MAX_PROMPT_UTF16_UNITS:
            problems.append(
                (
                    "prompt",
                    f"is {units} UTF-16 units long; shorten it to at most {MAX_PROMPT_UTF16_UNITS}",
                )
            )
        if self.frame_num is not None and (
            self.frame_num % 4 != 1 or not MIN_FRAMES <= self.frame_num <= MAX_FRAMES
        ):
            problems.append(
                (
                    "frame_num",
                    f"{self.frame_num} is not a frame count Wan can make; use 4k+1 between "
                    f"{MIN_FRAMES} and {MAX_FRAMES} (e.g. 81 or 121)",
                )
            )
        if self.duration_s is not None and not (
            MIN_DURATION_S <= self.duration_s <= MAX_DURATION_S
        ):
            problems.append(
                (
                    "duration_s",
                    f"{self.duration_s} is out of range; use {MIN_DURATION_S} to "
                    f"{MAX_DURATION_S} seconds",
                )
            )
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            problems.append(("seed", f"{self.seed} is out of range; use 0 to {MAX_SEED}"))
        if self.deadline_seconds is not None and not (
            MIN_DEADLINE_S <= self.deadline_seconds <= MAX_DEADLINE_S
        ):
            problems.append(
                (
                    "deadline_seconds",
                    f"{self.deadline_seconds} is out of range; use {MIN_DEADLINE_S} s to "
                    f"{MAX_DEADLINE_S // 86400} days",
                )
            )
        return problems


def parse_deadline(text: str) -> int:
    """`90m`, `4h`, `1h30m`, `1200s` or `1200` as seconds; ValueError says how to write it."""
    import re

    cleaned = text.strip().lower().replace(" ", "")
    if cleaned.isdigit():
        return int(cleaned)
    match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", cleaned)
    if not cleaned or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration; write e.g. 90m, 4h, 1h30m or 1200s")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds
