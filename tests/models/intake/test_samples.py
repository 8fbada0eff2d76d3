"""Blind A/B samples on SQLite and PostgreSQL: who makes the second video, sampling within the
shadow budget, a sample's second video kept out of webhooks, acceptance and its group's other
budgets, and the reviewer's blind pick counted in the A/B table."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import Session, col, select

from reelroute.models.core.enums import (
    BudgetPeriod,
    BudgetScope,
    GroupPriority,
    InferenceProvider,
    ItemStatus,
    Pool,
)
from reelroute.models.core.errors import InvalidInput, InvalidTransition, NotFound
from reelroute.models.core.tables import Group, VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.intake.samples import SAMPLE_RANK, shadow_provider
from reelroute.models.items import lifecycle as ops
from reelroute.models.items.lifecycle import cancel_item, retry_item
from reelroute.models.items.review import ab_pairs, judge_pair
from reelroute.models.items.tables import AbPair
from reelroute.models.money.budgets import set_budget, spend
from reelroute.models.outbox.tables import WebhookDelivery, WebhookEndpoint
from reelroute.models.outbox.webhooks import fan_out
from reelroute.models.reporting.acceptance import acceptance_table
from reelroute.models.store.tallies import verdict_tallies
from tests.models.helpers import add_group_with_photos, claim_next_item

WAN, TURBO, GEN45, VEO, FAST = (
    InferenceProvider.wan_local,
    InferenceProvider.runway_gen4_turbo,
    InferenceProvider.runway_gen4_5,
    InferenceProvider.runway_veo3_1,
    InferenceProvider.runway_veo3_1_fast,
)


def sampled_group(session: Session, rate: float = 1.0, **changes) -> tuple[Group, uuid.UUID]:
    priority = changes.pop("priority", GroupPriority.normal)
    group_id, (photo,) = add_group_with_photos(session, 1, priority)
    group = session.get(Group, group_id)
    assert group is not None
    group.shadow_rate = rate
    for name, value in changes.items():
        setattr(group, name, value)
    session.commit()
    return group, photo


def add(session, settings, group, photo, provider, count=1) -> list[VideoItem]:
    tasks = [
        TaskSpec(photo_id=photo, prompt=f"task {n}", inference_provider=provider)
        for n in range(count)
    ]
    items = add_batch(session, group_id=group.id, tasks=tasks, settings=settings)
    session.commit()
    return items


def samples(session) -> list[VideoItem]:
    return list(
        session.exec(
            select(VideoItem)
            .where(col(VideoItem.shadow_of).is_not(None))
            .order_by(col(VideoItem.created_at))
        ).all()
    )


# --- who makes the second video --------------------------------------------------------------


def item_of(provider: InferenceProvider) -> VideoItem:
    return VideoItem(prompt="p", inference_provider=provider, duration_s=5)


@pytest.mark.parametrize(
    ("group", "made_by", "expected"),
    [
        (Group(name="g", name_key="g"), TURBO, WAN),  # a paid item: Wan, free
        (Group(name="g", name_key="g"), WAN, TURBO),  # a Wan item: the cheapest paid option
        (
            Group(name="g", name_key="g", priority=GroupPriority.high_quality),
            VEO,
            FAST,
        ),  # Veo family only
        (Group(name="g", name_key="g", allowed_providers=["wan_local", "runway_veo3.1"]), WAN, VEO),
        (Group(name="g", name_key="g", allowed_providers=["wan_local"]), WAN, None),
        (
            Group(name="g", name_key="g", shadow_provider="runway_gen4.5"),
            WAN,
            GEN45,
        ),  # the group's choice
        (Group(name="g", name_key="g", shadow_provider="wan_local"), WAN, None),  # not itself
    ],
)
def test_who_makes_the_second_video(group, made_by, expected):
    assert shadow_provider(group, item_of(made_by)) is expected


# --- sampling ----------------------------------------------------------------------------


def test_a_paid_sample_is_made_only_within_the_shadow_budget(session, settings):
    group, photo = sampled_group(session)
    # Without a shadow budget no paid sample is made.
    add(session, settings, group, photo, WAN)
    assert samples(session) == []
    # $0.30 pays one Gen-4 Turbo sample of 5 s (25 credits), not two.
    set_budget(session, scope=BudgetScope.shadow, period=BudgetPeriod.day, cap_dollars=0.3)
    total = set_budget(session, scope=BudgetScope.total, period=BudgetPeriod.day, cap_dollars=5)
    session.commit()
    items = add(session, settings, group, photo, WAN, count=2)
    (made,) = samples(session)
    assert made.shadow_of == items[0].id and made.inference_provider is TURBO
    assert (made.priority, made.routed_by.value) == (SAMPLE_RANK, "explicit")
    assert made.due_at > items[0].due_at
    assert "A/B sample of item" in (made.route_reason or "")
    reserved = {entry.budget.scope: entry.reserved for entry in spend(session)}
    # the shadow budget pays it, and it counts toward the cap on all paid spending (it was
    # left out of it before, so samples could pass that cap)
    assert reserved == {BudgetScope.shadow: 25, BudgetScope.total: 25}
    assert total.cap_credits == 500
    # An admin's retry of the sample reserves on the same budgets, never on the normal ones.
    turbo_cap = set_budget(
        session, scope=BudgetScope.provider, provider=TURBO, period=BudgetPeriod.day, cap_dollars=5
    )
    cancel_item(session, item_id=made.id)
    retry_item(session, item_id=made.id)
    session.commit()
    reserved = {entry.budget.scope: entry.reserved for entry in spend(session)}
    assert reserved == {BudgetScope.shadow: 25, BudgetScope.total: 25, BudgetScope.provider: 0}
    assert turbo_cap.cap_credits == 500


def test_a_wan_sample_of_a_paid_item_needs_no_budget(session, settings):
    group, photo = sampled_group(session)
    (item,) = add(session, settings, group, photo, TURBO)
    (made,) = samples(session)
    assert (made.shadow_of, made.inference_provider) == (item.id, WAN)


def test_no_rate_no_sample(session, settings):
    group, photo = sampled_group(session, rate=0.0)
    add(session, settings, group, photo, TURBO, count=3)
    assert samples(session) == []


# --- the second video, made and compared ----------------------------------------------------


def make(session, settings, pool: Pool, video: str = "v.mp4") -> VideoItem:
    claim = claim_next_item(session, settings, pool)
    assert claim is not None
    done = ops.complete_item(
        session,
        item_id=claim.item_id,
        attempt=claim.attempt,
        worker_id=claim.worker_id,
        output_path=video,
    )
    session.commit()
    return done


def test_a_sample_reaches_no_webhook_and_is_not_counted_as_made(session, settings):
    session.add(WebhookEndpoint(url="https://example.com/hook", is_default=True))
    session.commit()
    group, photo = sampled_group(session)
    (item,) = add(session, settings, group, photo, TURBO)
    first = make(session, settings, Pool.cloud)
    second = make(session, settings, Pool.gpu)
    assert (first.id, second.shadow_of) == (item.id, item.id)
    fan_out(session)
    session.commit()
    delivered = {row.item_id for row in session.exec(select(WebhookDelivery)).all()}
    assert delivered == {item.id}
    assert [(row.provider, row.accepted) for row in verdict_tallies(session)] == [
        ("runway_gen4_turbo", 1)
    ]


def test_the_reviewer_picks_blind_and_the_table_counts_it(session, settings):
    group, photo = sampled_group(session)
    items = add(session, settings, group, photo, TURBO, count=2)
    waiting = session.exec(select(AbPair).where(AbPair.shadow_id == samples(session)[0].id)).one()
    with pytest.raises(InvalidTransition, match="is not ready"):
        judge_pair(session, pair_id=waiting.id, better="a")
    for _ in items:
        make(session, settings, Pool.cloud)
    assert ab_pairs(session) == []  # the samples are not made yet
    for _ in items:
        make(session, settings, Pool.gpu)
    pairs = ab_pairs(session)
    assert [pair.item.id for pair in pairs] == [item.id for item in items]
    first, second = pairs
    # A is the item's video or the sample's, as the pair's stored draw says; its id names neither
    assert first.a.id == (first.item.id if first.item_first else first.shadow.id)
    assert first.id not in {first.item.id, first.shadow.id} and waiting.id == first.id
    won = judge_pair(session, pair_id=first.id, better="a")
    assert won.winner == ("item" if first.item_first else "shadow")
    tied = judge_pair(session, pair_id=second.id, better="both")
    session.commit()
    assert tied.winner == "tie" and (tied.item_provider, tied.shadow_provider) == (
        "runway_gen4_turbo",
        "wan_local",
    )
    assert ab_pairs(session) == []
    with pytest.raises(InvalidTransition, match="was already compared"):
        judge_pair(session, pair_id=first.id, better="b")
    with pytest.raises(InvalidInput, match="better: 'c'; use a, b or both"):
        judge_pair(session, pair_id=first.id, better="c")
    with pytest.raises(NotFound):
        judge_pair(session, pair_id=first.shadow.id, better="a")  # a sample's id is no pair's
    rows = {(row.provider.value, row.group_id): row for row in acceptance_table(session, settings)}
    turbo, wan = rows[("runway_gen4_turbo", None)], rows[("wan_local", None)]
    item_won = won.winner == "item"
    assert (turbo.ab_wins, turbo.ab_losses, turbo.ab_ties) == (int(item_won), int(not item_won), 1)
    assert (wan.ab_wins, wan.ab_losses, wan.ab_ties) == (int(not item_won), int(item_won), 1)
    # a sample's video is judged by its comparison: a tie or a win keeps it, a loss does not
    assert (wan.kept, wan.judged) == (1 + int(not item_won), 2)
    assert (turbo.kept, turbo.judged) == (2, 2)  # as the items completed
    assert 0 < turbo.ab_low < turbo.ab_high <= 1
    assert rows[("wan_local", group.id)].ab_ties == 1


def test_a_sample_that_fails_is_not_compared(session, settings):
    group, photo = sampled_group(session)
    add(session, settings, group, photo, TURBO)
    make(session, settings, Pool.cloud)
    claim = claim_next_item(session, settings, Pool.gpu)
    ops.fail_item(
        session,
        item_id=claim.item_id,
        attempt=claim.attempt,
        worker_id=claim.worker_id,
        error="bad input",
        permanent=True,
        settings=settings,
    )
    session.commit()
    assert session.get(VideoItem, claim.item_id).status is ItemStatus.failed
    assert ab_pairs(session) == []
