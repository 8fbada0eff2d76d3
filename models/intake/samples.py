"""Blind A/B samples: a share of a group's items (`shadow_rate`) is also made by a second
provider, so that a reviewer can compare the two videos without knowing who made which
(models.items.review: `ab_pairs`, `judge_pair`).

The second video is an item of its own (`shadow_of`: the item it is compared with) that goes
through dispatch, its provider and the checks like any other, with these differences:
- it is paid from the shadow budgets only (`BudgetScope.shadow`); without one, no paid sample
  is made (nobody pays for samples they did not cap); a Wan sample costs nothing;
- it is taken after every real item (the last queue rank) and never moved;
- its events reach no webhook, its checks never hold or redo it, and its video counts in the
  acceptance when it is compared, not when it is made.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from reelroute.models.core.catalogue import info
from reelroute.models.core.enums import BudgetScope, InferenceProvider, RoutedBy
from reelroute.models.core.tables import Group, VideoItem
from reelroute.models.items.lifecycle import create_items
from reelroute.models.items.review import new_pair
from reelroute.models.money.budgets import BudgetExceeded, reserve
from reelroute.models.money.tables import Budget
from reelroute.models.planning.routing import allowed_for

log = logging.getLogger(__name__)

WAN = InferenceProvider.wan_local
SAMPLE_RANK = 2
"""The queue rank of a sample's second video: after urgent (0) and every other item (1)."""


def shadow_provider(group: Group, item: VideoItem) -> InferenceProvider | None:
    """Who makes the sample's second video: the group's choice, else Wan for a paid item and
    the cheapest paid option the group allows for a Wan one (None: nobody else may)."""
    made_by = item.inference_provider
    if group.shadow_provider is not None:
        chosen = InferenceProvider(group.shadow_provider)
        return chosen if chosen is not made_by else None
    allowed = allowed_for(group)
    if made_by is not WAN and WAN in allowed:
        return WAN
    paid = [p for p in allowed if p is not made_by and info(p).paid]
    if not paid:
        return None
    return min(paid, key=lambda p: info(p).credits_for(item.duration_s, item.frame_num))


def _has_shadow_budget(session: Session) -> bool:
    found = session.execute(
        sa.select(col(Budget.id)).where(col(Budget.scope) == BudgetScope.shadow).limit(1)
    ).first()
    return found is not None


def add_samples(
    session: Session,
    group: Group,
    items: Sequence[VideoItem],
    *,
    now: datetime,
) -> list[VideoItem]:
    """Sample the group's new `items` at its shadow rate and create each sample's second
    video, reserved on the shadow budget; a sample the budget cannot pay is not made. Returns
    the second videos."""
    if group.shadow_rate <= 0:
        return []
    paid_allowed: bool | None = None
    made = []
    for index, item in enumerate(items):
        if random.random() >= group.shadow_rate:  # noqa: S311 (a sample, not a secret)
            continue
        provider = shadow_provider(group, item)
        if provider is None:
            continue
        credits = info(provider).credits_for(item.duration_s, item.frame_num)
        if info(provider).paid:
            if paid_allowed is None:
                paid_allowed = _has_shadow_budget(session)
            if not paid_allowed:
                continue
        row = {
            "group_id": item.group_id,
            "photo_id": item.photo_id,
            "prompt": item.prompt,
            "frame_num": item.frame_num,
            "duration_s": item.duration_s,
            "seed": item.seed,
            "inference_provider": provider,
            "routed_by": RoutedBy.explicit,
            "route_reason": (
                f"A/B sample of item {item.id} ({info(item.inference_provider).badge}): made by "
                f"{info(provider).badge} too, for a blind comparison"
            ),
            "priority": SAMPLE_RANK,
            "wan_full_quality": item.wan_full_quality,
            "due_at": max(item.due_at, now + timedelta(days=1)),
            "shadow_of": item.id,
            "created_at": now + timedelta(microseconds=len(items) + index),
            "updated_at": now,
        }
        try:
            with session.begin_nested():
                (second,) = create_items(session, [row])
                new_pair(session, second, now=now)
                reserve(
                    session,
                    item_id=second.id,
                    provider=provider,
                    group_id=item.group_id,
                    credits=credits,
                    now=now,
                    shadow=True,
                )
        except BudgetExceeded as error:
            log.info("no A/B sample of item %s: %s", item.id, error)
            continue
        made.append(second)
    return made
