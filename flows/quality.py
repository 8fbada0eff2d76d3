"""The automatic checks of a video, whoever made it (a flow run, or a pull worker's upload), and
what its group does with them (models.items.review): complete it, hold it for a person, or make
it again on the group's next option (escalate)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from reelroute.models.assembly import Settings
from reelroute.models.core import QualityAction, VideoItem
from reelroute.models.items import Claim, Decision, MadeBy, QualityPolicy, decide, quality_policy
from reelroute.models.money import GpuPrices
from reelroute.models.planning import escalate_to_next_option
from reelroute.models.store import session_scope
from reelroute.providers.base import GenerationResult
from reelroute.providers.quality import Thresholds, check_video, expected_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judged:
    """A video's checks (what the item stores, None when checks are off) and its fate."""

    quality: dict[str, Any] | None
    decision: Decision


def judge(
    engine: sa.Engine, settings: Settings, claim: Claim, result: GenerationResult, photo: bytes
) -> Judged:
    """Check the video of `claim` made from `photo`, and decide by its group's policy."""
    if not settings.quality.checks:
        return Judged(None, Decision(QualityAction.accept))
    with session_scope(engine) as session:
        policy = quality_policy(session, claim.group_id, settings)
        item = session.get(VideoItem, claim.item_id)
        sample = item is not None and item.shadow_of is not None
    if sample:  # an A/B sample's second video: scored, never held or made again
        policy = QualityPolicy(QualityAction.accept, policy.thresholds, 0.0)
    asked = claim.frame_num if claim.frame_num is not None else result.frames_asked
    expected = expected_of(
        claim.inference_provider,
        frame_num=asked,
        duration_s=claim.duration_s,
        photo=photo,
        fps=result.fps,
        width=result.width,
        height=result.height,
    )
    verdict = check_video(result.video, photo, expected, Thresholds(**policy.thresholds))
    decision = decide(
        policy,
        passed=verdict.passed,
        failed={check.name: check.detail for check in verdict.failed},
        provider=claim.inference_provider,
    )
    quality = {**verdict.to_json(), "action": decision.outcome.value}
    log.info(
        "item %s: checks %s in %.2f s (%s)",
        claim.item_id,
        "passed" if verdict.passed else "failed: " + ", ".join(quality["failed"]),
        verdict.seconds,
        decision.outcome.value,
    )
    return Judged(quality, decision)


def made_by(settings: Settings, result: GenerationResult) -> MadeBy:
    """Who made the video (Wan: its preset, GPU host and class) and that class's GPU-hour
    price (REELROUTE_GPU_HOUR_COST): what the attempt's GPU seconds cost."""
    hour_cost = GpuPrices.of(settings).hour_cost(result.gpu_class)
    return MadeBy(result.wan_preset, result.gpu_host, result.gpu_class, hour_cost)


def escalate(
    engine: sa.Engine, settings: Settings, claim: Claim, result: GenerationResult, judged: Judged
) -> str | None:
    """Make the item again on its group's next option (the attempt ends; its video is not
    kept). Returns why it is held for a person instead, when it cannot be: no attempt left, no
    other option within budget and deadline. StaleAttempt when the attempt lost the item."""
    reason = judged.decision.reason or "checks failed"
    with session_scope(engine) as session:
        return escalate_to_next_option(
            session,
            settings,
            item_id=claim.item_id,
            attempt=claim.attempt,
            worker_id=claim.worker_id,
            reason=reason,
            cost_credits=result.cost_credits,
            quality=judged.quality or {},
            wan_preset=result.wan_preset,
            made_by=made_by(settings, result),
        )


@dataclass(frozen=True)
class Checked:
    """A video's checks and what follows for its attempt: made again elsewhere (`escalated`:
    nothing to complete), held for a person (`review_reason`), or completed."""

    quality: dict[str, Any] | None
    review_reason: str | None = None
    escalated: bool = False
    reason: str | None = None
    """Why it was escalated or held (the failed checks)."""


def check_and_decide(
    engine: sa.Engine, settings: Settings, claim: Claim, result: GenerationResult, photo: bytes
) -> Checked:
    """Check the video of `claim` and carry out its group's action: escalate it (the item is
    made again, Checked.escalated) or say why it is held; else it is to be completed with its
    scores. StaleAttempt when the attempt lost the item while escalating."""
    judged = judge(engine, settings, claim, result, photo)
    outcome, why = judged.decision.outcome, judged.decision.reason
    if outcome is QualityAction.escalate:
        held = escalate(engine, settings, claim, result, judged)
        if held is None:
            return Checked(judged.quality, escalated=True, reason=why)
        return Checked(judged.quality, review_reason=held, reason=held)
    if outcome is QualityAction.review:
        return Checked(judged.quality, review_reason=why, reason=why)
    return Checked(judged.quality)
