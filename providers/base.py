"""The provider interface: one request in, one video out, three kinds of error.

Vendor exceptions (runwayml, torch) never leave `providers/`: each provider translates them into
TransientError (retry later), PermanentError (retrying will not help) or ConfigurationError (a
setting to fix, named in the message), each with a failure code whose class
(models.core.failures) decides what happens to the item and to the provider's breaker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from reelroute.models.core.enums import FailureCode, InferenceProvider

ProgressCallback = Callable[[float], None]
"""Called with the fraction done (0..1); also the provider's heartbeat."""

TaskCallback = Callable[[str], None]
"""Called with the provider's task id the moment it exists, before anything else can fail."""


@dataclass(frozen=True)
class GenerationRequest:
    """What to make: one photo and one prompt, and how long a video."""

    item_id: uuid.UUID
    provider: InferenceProvider
    image: bytes
    prompt: str
    duration_s: int | None = None
    frame_num: int | None = None
    seed: int | None = None
    provider_task_id: str | None = None
    """A task submitted by an earlier attempt: resume it instead of submitting (paying) again."""


@dataclass(frozen=True)
class GenerationResult:
    """The video (mp4 bytes) and what it took."""

    video: bytes
    model: str
    cost_credits: int
    provider_task_id: str | None
    frames: int
    fps: float
    width: int
    height: int
    wan_preset: str | None = None
    """Wan: the preset that made it (`fast@1`)."""
    gpu_host: str | None = None
    """Wan: the GPU host that made it."""
    gpu_class: str | None = None
    """Wan: its GPU's name (`NVIDIA H200`), or `cpu`."""
    frames_asked: int | None = None
    """Wan: the frame count it set out to make (the task's, else its duration at the model's
    fps, else the model's default): what the length check holds the video to."""


class ProviderError(Exception):
    """An error of a provider, already translated; `code` is the provider's failure code
    (its class, models.core.failures, decides what happens next); `retry_after` is when the
    provider said to come back, in seconds (a daily cap's reset)."""

    def __init__(
        self,
        message: str,
        *,
        code: FailureCode | None = None,
        cost_credits: int = 0,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.cost_credits = cost_credits
        self.retry_after = retry_after


class TransientError(ProviderError):
    """Try again later (rate limit, server error, timeout).

    `task_alive` says whether the provider's task can still be resumed by the next attempt.
    """

    def __init__(
        self,
        message: str,
        *,
        code: FailureCode | None = None,
        cost_credits: int = 0,
        task_alive: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, cost_credits=cost_credits, retry_after=retry_after)
        self.task_alive = task_alive


class PermanentError(ProviderError):
    """Retrying will not help (moderation, invalid input): fail the item."""


class ConfigurationError(ProviderError):
    """The provider is not set up (missing key, missing weights); the message names the setting."""


class Provider(Protocol):
    """Turns one request into one video."""

    def generate(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, on_task: TaskCallback
    ) -> GenerationResult:
        """Make the video; raises only the ProviderError family."""
        ...

    def cancel(self, task_id: str) -> None:
        """Stop the provider's task (and its billing, where the provider allows)."""
        ...
