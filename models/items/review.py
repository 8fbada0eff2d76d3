"""Is the video good enough: what a group does with a video whose automatic checks failed (or
that it reviews anyway), the review queue, and a reviewer's accept or reject with a redo.

An item whose video is held (status `review`, models.items.lifecycle.complete_item with a
reason) waits for a person. Accepting it completes it (item.accepted, item.completed). Rejecting
it keeps the rejected video aside, records it (`item_redos`: provider, preset, cost, time,
why), and sends the item back to pending on the redo provider as its next attempt
(item.rejected); the item's `cost_credits` keeps counting every attempt, so it shows what it
really cost. A failed check that the group escalates does the same from the flow run, fenced
by the attempt, without a person and without keeping the video.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from reelroute.models.core.catalogue import info
from reelroute.models.core.enums import (
    EventType,
    FailureCode,
    InferenceProvider,
    ItemStatus,
    QualityAction,
)
from reelroute.models.core.errors import InvalidInput, InvalidTransition, NotFound, StaleAttempt
from reelroute.models.core.tables import Group, ItemRedo, VideoItem, utcnow
from reelroute.models.items.lifecycle import MadeBy, count_gpu_attempt, observe_completion
from reelroute.models.items.settings import ItemsConfig
from reelroute.models.items.tables import AbComparison, AbPair
from reelroute.models.money.budgets import release, reserve
from reelroute.models.outbox.events import record
from reelroute.models.store.files import Storage, video_path
from reelroute.models.store.queries import items as item_sql
from reelroute.models.store.sql import returning_items
from reelroute.models.store.tallies import count_verdict

MAX_REASON = 500


@dataclass(frozen=True)
class QualityPolicy:
    """What a group does with its videos' checks."""

    action: QualityAction
    thresholds: dict[str, float]
    review_share: float


def quality_policy(
    session: Session, group_id: uuid.UUID | None, settings: ItemsConfig
) -> QualityPolicy:
    """The group's action, thresholds and review share, over the settings'."""
    group = session.get(Group, group_id) if group_id is not None else None
    action = (group.quality_action if group else None) or settings.quality.action
    overrides = group.quality_thresholds if group else None
    return QualityPolicy(
        action=QualityAction(action),
        thresholds=settings.quality.thresholds(overrides),
        review_share=group.review_share if group else 0.0,
    )


@dataclass(frozen=True)
class Decision:
    """What to do with one video: complete it, hold it for a person, or make it again."""

    outcome: QualityAction
    """accept: complete; review: hold; escalate: make it again elsewhere."""
    reason: str | None = None


def decide(
    policy: QualityPolicy,
    *,
    passed: bool,
    failed: dict[str, str],
    provider: InferenceProvider,
    draw: float | None = None,
) -> Decision:
    """The fate of a video of `provider` whose checks `passed` (else `failed`: name -> why),
    by the group's `policy`; `draw` (0-1, random when None) samples its review share."""
    draw = random.random() if draw is None else draw  # noqa: S311 (a sample, not a secret)
    if passed:
        if draw < policy.review_share:
            share = (
                "every video"
                if policy.review_share >= 1
                else (f"a {policy.review_share:.0%} sample of its videos")
            )
            return Decision(QualityAction.review, f"the group reviews {share}")
        return Decision(QualityAction.accept)
    why = "; ".join(f"{name}: {detail}" for name, detail in failed.items())
    if policy.action is QualityAction.accept:
        return Decision(QualityAction.accept, f"checks failed, accepted by policy ({why})")
    if policy.action is QualityAction.escalate and not info(provider).paid:
        return Decision(QualityAction.escalate, f"checks failed ({why})")
    if policy.action is QualityAction.escalate:
        return Decision(
            QualityAction.review,
            f"checks failed ({why}); a paid video is not paid again without a person's say",
        )
    return Decision(QualityAction.review, f"checks failed ({why})")


def review_queue(session: Session, *, limit: int = 100) -> list[VideoItem]:
    """The items held for a person, the longest waiting first."""
    return list(
        session.exec(
            select(VideoItem)
            .where(col(VideoItem.status) == ItemStatus.review)
            .order_by(col(VideoItem.updated_at), col(VideoItem.id))
            .limit(limit)
        ).all()
    )


def accept_item(session: Session, *, item_id: uuid.UUID, now: datetime | None = None) -> VideoItem:
    """A reviewer accepts the held video: the item completes."""
    now = now or utcnow()
    items = returning_items(session, item_sql.ACCEPT, item_id=item_id, now=now)
    if not items:
        raise _not_held(session, item_id, "accept")
    item = items[0]
    record(session, [item], EventType.accepted, now=now)
    record(session, [item], EventType.completed, now=now)
    observe_completion(session, item, now)
    return item


def reject_item(
    session: Session,
    storage: Storage,
    *,
    item_id: uuid.UUID,
    reason: str,
    provider: InferenceProvider,
    now: datetime | None = None,
) -> VideoItem:
    """A reviewer rejects the held video: it is kept aside and recorded, and the item is made
    again on `provider` as its next attempt (its cost reserved: BudgetExceeded when a cap says
    no, and then nothing changes)."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput(["reason: is empty; say what is wrong with the video"])
    if len(reason) > MAX_REASON:
        raise InvalidInput([f"reason: is {len(reason)} characters; at most {MAX_REASON}"])
    now = now or utcnow()
    item = session.get(VideoItem, item_id, populate_existing=True)
    if item is None or item.status is not ItemStatus.review:
        raise _not_held(session, item_id, "reject")
    kept = f"videos/{item.group_id or 'ungrouped'}/{item.id}.rejected-{item.retry_count}.mp4"
    current = video_path(item.group_id, item.id) if item.output_path else None
    redone = _redo(
        session,
        item,
        from_status=ItemStatus.review,
        provider=provider,
        reason=f"rejected: {reason}",
        by_check=False,
        video=kept if current else None,
        now=now,
    )
    if current is not None and storage.exists(current):
        storage.move(current, kept)  # the next video is written to the item's path
    return redone


def may_escalate(item: VideoItem, settings: ItemsConfig) -> bool:
    """Whether an escalated attempt leaves the item an attempt to make it again."""
    return item.retry_count - item.spared_attempts < settings.items.max_attempts


def escalate_item(
    session: Session,
    *,
    item_id: uuid.UUID,
    attempt: int,
    worker_id: str,
    provider: InferenceProvider,
    reason: str,
    cost_credits: int,
    quality: dict[str, Any],
    wan_preset: str | None,
    made_by: MadeBy | None = None,
    now: datetime | None = None,
) -> VideoItem:
    """A failed check that the group escalates: attempt `attempt` (fenced) ends without keeping
    its video, and the item is made again on `provider` as its next attempt. A Wan attempt's
    GPU time (`made_by`: its GPU class and price) is counted all the same."""
    now = now or utcnow()
    item = session.get(VideoItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"no item {item_id}")
    if item.retry_count == attempt and item.worker_id == worker_id:
        count_gpu_attempt(session, item, made_by or MadeBy(wan_preset), now)
    release(session, item_id=item_id)  # what this attempt reserved (a Wan one: nothing)
    return _redo(
        session,
        item,
        from_status=ItemStatus.processing,
        provider=provider,
        reason=reason,
        by_check=True,
        video=None,
        now=now,
        fence={"attempt": attempt, "worker_id": worker_id},
        cost_credits=cost_credits,
        quality=quality,
        wan_preset=wan_preset,
    )


def _redo(
    session: Session,
    item: VideoItem,
    *,
    from_status: ItemStatus,
    provider: InferenceProvider,
    reason: str,
    by_check: bool,
    video: str | None,
    now: datetime,
    fence: dict[str, Any] | None = None,
    cost_credits: int = 0,
    quality: dict[str, Any] | None = None,
    wan_preset: str | None = None,
) -> VideoItem:
    redone_before = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(ItemRedo.cost_credits), 0)).where(
            col(ItemRedo.item_id) == item.id
        )
    ).scalar_one()
    spent = (item.cost_credits or 0) + cost_credits - int(redone_before)
    # As they were: the redo below refreshes `item`.
    started, origin, attempt = item.started_at, item.inference_provider, item.retry_count
    preset = wan_preset or item.wan_preset
    with session.begin_nested():  # all of it, or nothing (a cap said no, a stale attempt)
        items = returning_items(
            session,
            item_sql.redo(from_status),
            item_id=item.id,
            provider=provider.value,
            route_reason=f"made again on {info(provider).badge}: {reason}"[:1000],
            error=reason[:1000],
            failure_code=FailureCode.QUALITY_CHECK.value if by_check else None,
            cost_credits=cost_credits,
            spared=0 if by_check else 1,
            now=now,
            **(fence or {}),
        )
        if not items:
            if from_status is ItemStatus.processing:
                raise StaleAttempt(
                    f"attempt {(fence or {}).get('attempt')} no longer holds item {item.id}"
                )
            raise _not_held(session, item.id, "redo")
        redone = items[0]
        session.add(
            ItemRedo(
                item_id=item.id,
                group_id=item.group_id,
                attempt=attempt,
                provider=origin.value,
                wan_preset=preset,
                cost_credits=max(spent, 0),
                seconds=(now - started).total_seconds() if started else None,
                reason=reason[:1000],
                by_check=by_check,
                redo_provider=provider.value,
                video_path=video,
                at=now,
            )
        )
        count_verdict(
            session,
            group_id=item.group_id,
            provider=origin.value,
            wan_preset=preset,
            accepted=False,
        )
        if quality is not None:
            redone.quality = quality
            session.add(redone)
        reserve(
            session,
            item_id=item.id,
            provider=provider,
            group_id=item.group_id,
            credits=info(provider).credits_for(item.duration_s, item.frame_num),
            now=now,
        )
        session.flush()
    record(session, [redone], EventType.rejected, detail=reason[:300], now=now)
    return redone


def _not_held(session: Session, item_id: uuid.UUID, action: str) -> Exception:
    item = session.get(VideoItem, item_id, populate_existing=True)
    if item is None:
        return NotFound(f"no item {item_id}")
    return InvalidTransition(
        f"cannot {action} item {item_id}: it is {item.status.value}, not held for review"
    )


@dataclass(frozen=True)
class RedoStats:
    """Videos made again per provider (and Wan preset) and group: how many, what they cost."""

    provider: str
    wan_preset: str | None
    group_id: uuid.UUID | None
    redos: int
    by_check: int
    credits: int


def redo_stats(session: Session) -> list[RedoStats]:
    """Redone videos by provider, preset and group (a small table: one row per redo)."""
    rows = session.execute(
        sa.select(
            col(ItemRedo.provider),
            col(ItemRedo.wan_preset),
            col(ItemRedo.group_id),
            sa.func.count(),
            sa.func.sum(sa.case((col(ItemRedo.by_check), 1), else_=0)),
            sa.func.coalesce(sa.func.sum(ItemRedo.cost_credits), 0),
        )
        .group_by(col(ItemRedo.provider), col(ItemRedo.wan_preset), col(ItemRedo.group_id))
        .order_by(col(ItemRedo.provider), col(ItemRedo.wan_preset))
    ).all()
    return [
        RedoStats(
            provider=provider,
            wan_preset=preset,
            group_id=group_id,
            redos=int(count),
            by_check=int(checked or 0),
            credits=int(credits),
        )
        for provider, preset, group_id, count, checked, credits in rows
    ]


def redos_of(session: Session, item_id: uuid.UUID) -> list[ItemRedo]:
    """An item's videos that were made again, oldest first."""
    return list(
        session.exec(
            select(ItemRedo).where(col(ItemRedo.item_id) == item_id).order_by(col(ItemRedo.id))
        ).all()
    )


# --- blind A/B comparisons -------------------------------------------------------------------

WINNERS = ("item", "shadow", "tie")


@dataclass(frozen=True)
class Pair:
    """An item and its A/B sample's second video, both made, not yet compared; shown as A and
    B under the pair's own random id, in the order drawn when the sample was made (so a reload
    shows the same) that says nothing of who made which."""

    id: uuid.UUID
    item: VideoItem
    shadow: VideoItem
    item_first: bool
    """Whether the item's own video is A."""

    @property
    def a(self) -> VideoItem:
        """The video shown first."""
        return self.item if self.item_first else self.shadow

    @property
    def b(self) -> VideoItem:
        """The video shown second."""
        return self.shadow if self.item_first else self.item


def new_pair(session: Session, shadow: VideoItem, *, now: datetime) -> AbPair:
    """The blind pair of a sample's second video: a random id and a random draw of which video
    is A (a CSPRNG: a reviewer cannot learn it from ids or timing)."""
    pair = AbPair(shadow_id=shadow.id, item_first=secrets.randbelow(2) == 0, created_at=now)
    session.add(pair)
    return pair


def ab_pairs(session: Session, *, limit: int = 50) -> list[Pair]:
    """Pairs waiting for a reviewer's pick, the oldest first: the item completed, its sample's
    second video completed, and no pick yet."""
    original = aliased(VideoItem)
    found = session.exec(
        select(AbPair, original, VideoItem)
        .join(VideoItem, col(VideoItem.id) == col(AbPair.shadow_id))
        .join(original, col(original.id) == col(VideoItem.shadow_of))
        .where(
            col(VideoItem.status) == ItemStatus.completed,
            col(original.status) == ItemStatus.completed,
            ~sa.exists().where(col(AbComparison.shadow_id) == col(VideoItem.id)),
        )
        .order_by(col(VideoItem.finished_at), col(AbPair.id))
        .limit(limit)
    ).all()
    return [Pair(pair.id, item, shadow, pair.item_first) for pair, item, shadow in found]


def pair_of(session: Session, pair_id: uuid.UUID) -> Pair:
    """The pair `pair_id`, both videos made (NotFound: no such pair; InvalidTransition: a video
    is not made yet)."""
    pair = session.get(AbPair, pair_id)
    shadow = session.get(VideoItem, pair.shadow_id) if pair is not None else None
    if pair is None or shadow is None or shadow.shadow_of is None:
        raise NotFound(f"no A/B pair {pair_id}")
    item = session.get(VideoItem, shadow.shadow_of)
    if item is None:
        raise NotFound(f"no A/B pair {pair_id}: its item is gone")
    if item.status is not ItemStatus.completed or shadow.status is not ItemStatus.completed:
        raise InvalidTransition(f"A/B pair {pair_id} is not ready: both videos are not made yet")
    return Pair(pair.id, item, shadow, pair.item_first)


def blind_ids(session: Session, items: Sequence[VideoItem]) -> set[uuid.UUID]:
    """Those of `items` that are A/B samples' second videos not compared yet: who makes them
    is kept from the pages and the API until the pick."""
    samples = {item.id for item in items if item.shadow_of is not None}
    if not samples:
        return set()
    judged = session.exec(
        select(AbComparison.shadow_id).where(col(AbComparison.shadow_id).in_(samples))
    ).all()
    return samples - set(judged)


def judge_pair(
    session: Session, *, pair_id: uuid.UUID, better: str, now: datetime | None = None
) -> AbComparison:
    """A reviewer's pick for the pair `pair_id`: `a`, `b` (the better one as shown) or `both`
    (both fine). InvalidInput for another word, NotFound for no such pair, InvalidTransition
    when it is not ready or was already judged."""
    if better not in ("a", "b", "both"):
        raise InvalidInput([f"better: {better!r}; use a, b or both"])
    pair = pair_of(session, pair_id)
    item, shadow = pair.item, pair.shadow
    winner = "tie"
    if better != "both":
        item_won = (better == "a") == pair.item_first
        winner = "item" if item_won else "shadow"
    comparison = AbComparison(
        item_id=item.id,
        shadow_id=shadow.id,
        group_id=item.group_id,
        item_provider=item.inference_provider.value,
        item_preset=item.wan_preset,
        shadow_provider=shadow.inference_provider.value,
        shadow_preset=shadow.wan_preset,
        winner=winner,
        at=now or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(comparison)
            session.flush()
    except sa.exc.IntegrityError:
        raise InvalidTransition(f"A/B pair {pair_id} was already compared") from None
    # The sample's video is judged now (the item's was counted when it completed): as good or
    # better is kept, worse is not; so a group that routing keeps from Wan still tells it how
    # Wan's videos of its photos do.
    count_verdict(
        session,
        group_id=shadow.group_id,
        provider=shadow.inference_provider.value,
        wan_preset=shadow.wan_preset,
        accepted=winner != "item",
    )
    return comparison
