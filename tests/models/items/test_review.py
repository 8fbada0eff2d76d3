"""Is the video good enough: each group action, a video held for a person, accepted, rejected
and made again (its cost and the budgets counted once), and a failed check escalated, on SQLite
and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from reelroute.models.core.enums import (
    BudgetPeriod,
    BudgetScope,
    EventType,
    FailureCode,
    InferenceProvider,
    ItemStatus,
    Pool,
    QualityAction,
)
from reelroute.models.core.errors import InvalidInput, InvalidTransition, StaleAttempt
from reelroute.models.core.tables import Group, VideoItem
from reelroute.models.items import lifecycle as ops
from reelroute.models.items.review import (
    QualityPolicy,
    accept_item,
    decide,
    escalate_item,
    quality_policy,
    redo_stats,
    redos_of,
    reject_item,
    review_queue,
)
from reelroute.models.items.videos import complete_with_video
from reelroute.models.money.budgets import BudgetExceeded, set_budget, spend
from reelroute.models.outbox.tables import ItemEvent
from reelroute.models.planning.acceptance import Verdicts, read_acceptance
from reelroute.models.store.files import Storage, video_path
from reelroute.models.store.tallies import group_key, verdict_tallies
from tests.models.helpers import add_items, claim_next_item, ledger_counts

WAN, TURBO, VEO = (
    InferenceProvider.wan_local,
    InferenceProvider.runway_gen4_turbo,
    InferenceProvider.runway_veo3_1,
)
FAILED = {"first_frame": "SSIM 0.12 with the photo (below 0.5)"}
QUALITY = {"passed": False, "scores": {"first_frame": 0.12}, "failed": FAILED, "seconds": 0.2}


def policy(action: QualityAction, share: float = 0.0) -> QualityPolicy:
    return QualityPolicy(action=action, thresholds={}, review_share=share)


def events(session, item_id) -> list[str]:
    rows = session.exec(
        select(ItemEvent).where(ItemEvent.item_id == item_id).order_by(col(ItemEvent.id))
    ).all()
    return [row.type.value for row in rows]


# --- what a group does -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "provider", "outcome", "reason"),
    [
        (QualityAction.accept, WAN, QualityAction.accept, "checks failed, accepted by policy"),
        (QualityAction.review, WAN, QualityAction.review, "checks failed (first_frame: SSIM"),
        (QualityAction.escalate, WAN, QualityAction.escalate, "checks failed (first_frame"),
        (QualityAction.escalate, VEO, QualityAction.review, "not paid again without a person"),
        (QualityAction.review, VEO, QualityAction.review, "checks failed (first_frame"),
    ],
)
def test_a_failed_check_does_what_the_group_chose(action, provider, outcome, reason):
    decision = decide(policy(action), passed=False, failed=FAILED, provider=provider, draw=0.9)
    assert decision.outcome is outcome and reason in (decision.reason or "")


def test_a_passed_video_is_reviewed_only_in_the_groups_sample():
    sampled = policy(QualityAction.accept, share=0.1)
    kept = decide(sampled, passed=True, failed={}, provider=WAN, draw=0.5)
    assert kept.outcome is QualityAction.accept and kept.reason is None
    held = decide(sampled, passed=True, failed={}, provider=WAN, draw=0.05)
    assert held.outcome is QualityAction.review
    assert held.reason == "the group reviews a 10% sample of its videos"
    every = decide(policy(QualityAction.accept, 1.0), passed=True, failed={}, provider=VEO)
    assert every.reason == "the group reviews every video"


def test_a_groups_choice_and_thresholds_win_over_the_settings(session, settings):
    (item,) = add_items(session, settings, 1, WAN)
    assert quality_policy(session, item.group_id, settings) == QualityPolicy(
        QualityAction.accept, settings.quality.thresholds(), 0.0
    )
    group = session.get(Group, item.group_id)
    group.quality_action = QualityAction.escalate
    group.quality_thresholds = {"min_first_frame_ssim": 0.8}
    group.review_share = 0.25
    session.commit()
    found = quality_policy(session, item.group_id, settings)
    assert found.action is QualityAction.escalate and found.review_share == 0.25
    assert found.thresholds["min_first_frame_ssim"] == 0.8
    assert found.thresholds["min_motion"] == settings.quality.min_motion
    with pytest.raises(ValueError, match="no threshold 'ssim'; one of min_luma_range"):
        settings.quality.thresholds({"ssim": 0.3})


# --- held, accepted, rejected ------------------------------------------------------------


def hold(session, settings, tmp_path, provider=VEO, cost=240):
    add_items(session, settings, 1, provider)
    pool = Pool.gpu if provider is WAN else Pool.cloud
    claim = claim_next_item(session, settings, pool)
    storage = Storage(str(tmp_path / "storage"))
    held = complete_with_video(
        session,
        storage,
        item_id=claim.item_id,
        group_id=claim.group_id,
        attempt=claim.attempt,
        worker_id=claim.worker_id,
        video=b"the first video",
        cost_credits=cost,
        quality=QUALITY,
        review_reason="checks failed (first_frame)",
    )
    session.commit()
    return held, storage


def test_a_held_video_waits_for_a_person_and_is_paid_for(session, settings, tmp_path):
    set_budget(
        session, scope=BudgetScope.provider, period=BudgetPeriod.day, provider=VEO, cap_dollars=10
    )
    session.commit()
    held, storage = hold(session, settings, tmp_path)
    assert held.status is ItemStatus.review and held.finished_at is None
    assert (held.quality, held.review_reason) == (QUALITY, "checks failed (first_frame)")
    assert storage.read(held.output_path) == b"the first video"
    assert [item.id for item in review_queue(session)] == [held.id]
    assert events(session, held.id)[-1] == "item.review_requested"
    assert ledger_counts(session)[VEO.value]["review"] == 1
    [budget] = spend(session)
    assert (budget.spent, budget.reserved) == (240, 0)  # made, and paid, whatever comes next


def test_accepting_a_held_video_completes_the_item(session, settings, tmp_path):
    held, _ = hold(session, settings, tmp_path)
    accepted = accept_item(session, item_id=held.id)
    session.commit()
    assert accepted.status is ItemStatus.completed and accepted.finished_at is not None
    assert events(session, held.id)[-2:] == ["item.accepted", "item.completed"]
    assert review_queue(session) == []
    with pytest.raises(InvalidTransition, match="it is completed, not held for review"):
        accept_item(session, item_id=held.id)


def test_a_rejected_video_is_kept_aside_and_made_again_elsewhere(session, settings, tmp_path):
    set_budget(session, scope=BudgetScope.total, period=BudgetPeriod.day, cap_dollars=10)
    session.commit()
    held, storage = hold(session, settings, tmp_path, provider=TURBO, cost=50)
    redone = reject_item(
        session, storage, item_id=held.id, reason="the face is garbled", provider=VEO
    )
    session.commit()
    assert redone.status is ItemStatus.pending and redone.inference_provider is VEO
    assert redone.redo_count == 1 and redone.output_path is None and redone.cost_credits == 50
    assert redone.retry_count == 1 and redone.spared_attempts == 1  # it did its job
    assert "rejected: the face is garbled" in (redone.route_reason or "")
    assert events(session, held.id)[-1] == "item.rejected"
    [kept] = redos_of(session, held.id)
    assert (kept.provider, kept.redo_provider, kept.cost_credits) == (
        "runway_gen4_turbo",
        "runway_veo3.1",
        50,
    )
    assert kept.by_check is False and kept.reason == "rejected: the face is garbled"
    assert storage.read(kept.video_path) == b"the first video"
    assert not storage.exists(video_path(held.group_id, held.id))
    [budget] = spend(session)
    assert (budget.spent, budget.reserved) == (50, 240)  # Veo's redo is reserved
    # The redo completes: the budget counts each video once, the item shows both.
    claim = claim_next_item(session, settings, Pool.cloud)
    assert (claim.item_id, claim.attempt, claim.inference_provider) == (held.id, 2, VEO)
    done = complete_with_video(
        session,
        storage,
        item_id=held.id,
        group_id=held.group_id,
        attempt=2,
        worker_id=claim.worker_id,
        video=b"the second video",
        cost_credits=240,
    )
    session.commit()
    assert done.status is ItemStatus.completed and done.cost_credits == 290
    [budget] = spend(session)
    assert (budget.spent, budget.reserved) == (290, 0)
    assert storage.read(done.output_path) == b"the second video"
    [stats] = redo_stats(session)
    assert (stats.provider, stats.redos, stats.by_check, stats.credits) == (
        "runway_gen4_turbo",
        1,
        0,
        50,
    )


def test_a_bad_rejection_changes_nothing(session, settings, tmp_path):
    held, storage = hold(session, settings, tmp_path)
    (pending,) = add_items(session, settings, 1, TURBO)
    with pytest.raises(InvalidInput, match="reason: is empty"):
        reject_item(session, storage, item_id=held.id, reason="  ", provider=TURBO)
    set_budget(
        session,
        scope=BudgetScope.provider,
        period=BudgetPeriod.day,
        provider=TURBO,
        cap_dollars=0.1,
    )
    session.commit()
    with pytest.raises(BudgetExceeded, match=r"has \$0.10 left; this video needs about"):
        reject_item(session, storage, item_id=held.id, reason="blurry", provider=TURBO)
    session.rollback()
    again = session.get(VideoItem, held.id, populate_existing=True)
    assert again.status is ItemStatus.review and again.redo_count == 0
    assert redos_of(session, held.id) == [] and storage.exists(again.output_path)
    with pytest.raises(InvalidTransition, match="it is pending, not held for review"):
        reject_item(session, storage, item_id=pending.id, reason="x", provider=VEO)


def test_an_escalated_check_ends_the_attempt_and_makes_it_again(session, settings):
    (item,) = add_items(session, settings, 1, WAN)
    claim = claim_next_item(session, settings, Pool.gpu)
    with pytest.raises(StaleAttempt):  # fenced: only the attempt's holder escalates
        escalate_item(
            session, item_id=item.id, attempt=claim.attempt, worker_id="someone else",
            provider=TURBO, reason="checks failed", cost_credits=0, quality=QUALITY,
            wan_preset="fast@1",
        )  # fmt: skip
    session.rollback()
    redone = escalate_item(
        session, item_id=item.id, attempt=claim.attempt, worker_id=claim.worker_id,
        provider=TURBO, reason="checks failed (first_frame)", cost_credits=0, quality=QUALITY,
        wan_preset="fast@1",
    )  # fmt: skip
    session.commit()
    assert redone.status is ItemStatus.pending and redone.inference_provider is TURBO
    assert redone.failure_code is FailureCode.QUALITY_CHECK and redone.spared_attempts == 0
    assert redone.quality == QUALITY and redone.redo_count == 1
    [kept] = redos_of(session, item.id)
    assert (kept.provider, kept.wan_preset, kept.by_check, kept.video_path) == (
        "wan_local",
        "fast@1",
        True,
        None,
    )
    assert events(session, item.id)[-1] == EventType.rejected.value
    assert ops.get_item(session, item.id).status is ItemStatus.pending


def test_every_verdict_is_counted_per_group_provider_and_preset(session, settings, tmp_path):
    """Kept: a completion, an acceptance; made again: a rejection, an escalated check."""
    (done,) = add_items(session, settings, 1, TURBO)
    claim = claim_next_item(session, settings, Pool.cloud)
    ops.complete_item(
        session,
        item_id=claim.item_id,
        attempt=claim.attempt,
        worker_id=claim.worker_id,
        output_path="x.mp4",
        cost_credits=25,
    )
    session.commit()
    held, storage = hold(session, settings, tmp_path, provider=TURBO, cost=25)
    accept_item(session, item_id=held.id)
    rejected, _ = hold(session, settings, tmp_path, provider=TURBO, cost=25)
    reject_item(session, storage, item_id=rejected.id, reason="garbled", provider=VEO)
    (wan,) = add_items(session, settings, 1, WAN)
    claim = claim_next_item(session, settings, Pool.gpu)
    escalate_item(
        session, item_id=wan.id, attempt=claim.attempt, worker_id=claim.worker_id,
        provider=TURBO, reason="checks failed", cost_credits=0, quality=QUALITY,
        wan_preset="fast@1",
    )  # fmt: skip
    session.commit()
    counted = {
        (row.group_key, row.provider, row.wan_preset): (row.accepted, row.rejected)
        for row in verdict_tallies(session)
    }
    assert counted == {
        (group_key(done.group_id), "runway_gen4_turbo", ""): (1, 0),
        (group_key(held.group_id), "runway_gen4_turbo", ""): (1, 0),
        (group_key(rejected.group_id), "runway_gen4_turbo", ""): (0, 1),
        (group_key(wan.group_id), "wan_local", "fast@1"): (0, 1),
    }
    seen = read_acceptance(session, settings)
    assert seen.of_group(rejected.group_id, TURBO) == Verdicts(0, 1)
    assert seen.of_provider(TURBO) == Verdicts(2, 1)
