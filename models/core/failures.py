"""Failure classes and their rules: every failure is classified once, by its code, and each class
says whether the item may try again, whether the attempt counts against the item's
REELROUTE_MAX_ATTEMPTS, and what it does to the provider's circuit breaker.

- `input`: the item fails now; never retried on that provider, never paid again without an
  admin's retry. Its provider's breaker is untouched. Wan's out-of-memory and pipeline crashes
  are of this class (the same input fails again: the message says which settings to change),
  unless another GPU host made a video of that length lately: then the failing host is at
  fault, and it is a `gpu_host` failure (models.items.lifecycle.made_elsewhere).
- `throttled`: the item waits and polls (never recorded as a failure).
- `provider_transient`: retried after the backoff; the attempt is spared (it counts against
  REELROUTE_MAX_SPARED_ATTEMPTS only); it counts toward opening the model's breaker.
- `provider_exhausted`: the item waits, pending, without backoff, the attempt spared; the
  model's breaker opens at once, until the reset Runway reports.
- `provider_config`: as exhausted, until the setting is fixed (probed every cooldown).
- `gpu_host`: retried after the backoff, spared; counts toward opening the host's breaker (a
  host gone, a GPU fault, a lost pipeline process).
- `infra`: retried after the backoff, spared; runs that never start open the pool's breaker.
- `output`: the video failed an automatic check and its group escalates: made again at once
  on the group's next option, counted against REELROUTE_MAX_ATTEMPTS; no breaker moves.
- `unknown`: retried after the backoff, and counted against REELROUTE_MAX_ATTEMPTS; counts
  toward opening the breaker.

An item's attempts count only the failures it could have caused; outages (a provider's or ours)
have their own, larger cap, so an item whose runs can never succeed still ends with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelroute.models.core.enums import FailureClass, FailureCode


@dataclass(frozen=True)
class Rule:
    """What a failure of one class does."""

    permanent: bool
    """The item fails now."""
    counts: bool
    """The attempt counts against REELROUTE_MAX_ATTEMPTS (else against the larger
    REELROUTE_MAX_SPARED_ATTEMPTS)."""
    backoff: bool
    """The next attempt waits the retry backoff (else it is sent when the provider is back)."""
    opens_at_once: bool = False
    """The provider's breaker opens with this one failure."""
    trips: bool = True
    """It counts toward the failure rate that opens the breaker."""


RULES: dict[FailureClass, Rule] = {
    FailureClass.input: Rule(permanent=True, counts=True, backoff=False, trips=False),
    FailureClass.throttled: Rule(permanent=False, counts=False, backoff=False, trips=False),
    FailureClass.provider_transient: Rule(permanent=False, counts=False, backoff=True),
    FailureClass.provider_exhausted: Rule(
        permanent=False, counts=False, backoff=False, opens_at_once=True
    ),
    FailureClass.provider_config: Rule(
        permanent=False, counts=False, backoff=False, opens_at_once=True
    ),
    FailureClass.gpu_host: Rule(permanent=False, counts=False, backoff=True),
    FailureClass.infra: Rule(permanent=False, counts=False, backoff=True, trips=False),
    FailureClass.unknown: Rule(permanent=False, counts=True, backoff=True),
    FailureClass.output: Rule(permanent=False, counts=True, backoff=False, trips=False),
}

CLASS_OF: dict[FailureCode, FailureClass] = {
    # Our orchestration: a run that died before or during its attempt.
    FailureCode.RUN_NOT_STARTED: FailureClass.infra,
    FailureCode.RUN_CRASHED: FailureClass.infra,
    FailureCode.RUN_CANCELLED: FailureClass.infra,
    FailureCode.RUN_FAILED: FailureClass.infra,
    FailureCode.RUN_COMPLETED: FailureClass.infra,
    FailureCode.RUN_GONE: FailureClass.infra,
    FailureCode.LEASE_EXPIRED: FailureClass.infra,
    # The item's input.
    FailureCode.NO_PHOTO: FailureClass.input,
    FailureCode.BAD_FRAME_COUNT: FailureClass.input,
    FailureCode.BAD_INPUT: FailureClass.input,
    FailureCode.HTTP_400: FailureClass.input,
    FailureCode.SAFETY_INPUT: FailureClass.input,
    FailureCode.SAFETY_OUTPUT: FailureClass.input,
    FailureCode.ASSET_INVALID: FailureClass.input,
    # An output that is no video: the item's or the provider's, we cannot tell.
    FailureCode.NOT_A_VIDEO: FailureClass.unknown,
    FailureCode.VIDEO_PROBE_TIMEOUT: FailureClass.unknown,
    # Wan on our GPUs.
    FailureCode.CUDA_OOM: FailureClass.input,  # or gpu_host: items.lifecycle.made_elsewhere
    FailureCode.GPU_FAULT: FailureClass.gpu_host,
    FailureCode.WAN_FAILED: FailureClass.input,  # the same
    FailureCode.WAN_HOST_GONE: FailureClass.gpu_host,
    FailureCode.WAN_UNAVAILABLE: FailureClass.gpu_host,
    FailureCode.WAN_PROCESS_LOST: FailureClass.gpu_host,
    FailureCode.WAN_WIRE: FailureClass.gpu_host,
    FailureCode.WAN_CONFIG: FailureClass.provider_config,
    # Runway's API.
    FailureCode.HTTP_401: FailureClass.provider_config,
    FailureCode.HTTP_403: FailureClass.provider_config,
    FailureCode.RUNWAY_CONFIG: FailureClass.provider_config,
    FailureCode.HTTP_429: FailureClass.provider_exhausted,
    FailureCode.CREDITS: FailureClass.provider_exhausted,
    FailureCode.HTTP_4XX: FailureClass.unknown,
    FailureCode.HTTP_5XX: FailureClass.provider_transient,
    FailureCode.CONNECTION: FailureClass.provider_transient,
    FailureCode.TIMEOUT: FailureClass.provider_transient,
    FailureCode.TASK_GONE: FailureClass.provider_transient,
    FailureCode.DOWNLOAD: FailureClass.provider_transient,
    FailureCode.CANCELLED: FailureClass.provider_transient,
    FailureCode.UNKNOWN_STATUS: FailureClass.provider_transient,
    FailureCode.INTERNAL: FailureClass.provider_transient,
    FailureCode.RUNWAY_FAILED: FailureClass.provider_transient,
    FailureCode.QUALITY_CHECK: FailureClass.output,
    FailureCode.OTHER: FailureClass.unknown,
}


def class_of(code: FailureCode | None) -> FailureClass:
    """The class of a failure code (a failure without one is `unknown`)."""
    return CLASS_OF.get(code, FailureClass.unknown) if code is not None else FailureClass.unknown


def rule_of(code: FailureCode | None) -> Rule:
    """The rule of a failure code's class."""
    return RULES[class_of(code)]
