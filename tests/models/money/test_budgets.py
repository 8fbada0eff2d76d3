"""Spending caps: reservations when routed, settlement at the end, and no overspend under
concurrent batches (PostgreSQL: the budget rows' locks; SQLite: one writer)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from reelroute.models.core.catalogue import CATALOGUE
from reelroute.models.core.enums import BudgetPeriod, BudgetScope, GroupPriority, InferenceProvider
from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.items.lifecycle import cancel_item, claim_item, complete_item, fail_item
from reelroute.models.money.budgets import BudgetExceeded, set_budget, spend
from reelroute.models.money.tables import BudgetReservation
from tests.models.helpers import add_group_with_photos

TURBO, VEO, WAN = (
    InferenceProvider.runway_gen4_turbo,
    InferenceProvider.runway_veo3_1,
    InferenceProvider.wan_local,
)
TURBO_COST = CATALOGUE[TURBO].credits_for(5, None)  # 25 credits: $0.25


def cap(session: Session, provider=TURBO, dollars: float = 1.0, **kw) -> None:
    scope = kw.pop("scope", BudgetScope.provider)
    set_budget(
        session,
        scope=scope,
        period=kw.pop("period", BudgetPeriod.day),
        cap_dollars=dollars,
        provider=provider if scope is BudgetScope.provider else None,
        **kw,
    )
    session.commit()


def add(session, settings, count=1, provider=TURBO, priority=GroupPriority.normal, group=None):
    group_id, (photo_id,) = group or add_group_with_photos(session, 1, priority)
    tasks = [
        TaskSpec(
            photo_id=photo_id,
            prompt=f"task {n}",
            inference_provider=provider.value if provider else None,
            duration_s=5,
        )
        for n in range(count)
    ]
    items = add_batch(session, group_id=group_id, tasks=tasks, settings=settings)
    session.commit()
    return items


def usage(session: Session) -> tuple[int, int]:
    [entry] = spend(session)
    return entry.reserved, entry.spent


def test_a_paid_item_reserves_then_completion_settles_what_it_cost(session, settings):
    cap(session, dollars=1.0)
    [item] = add(session, settings)
    assert usage(session) == (TURBO_COST, 0)
    claim_item(session, item_id=item.id, attempt=1, worker_id="w", settings=settings)
    complete_item(
        session, item_id=item.id, attempt=1, worker_id="w", output_path="v.mp4", cost_credits=30
    )
    session.commit()
    assert usage(session) == (0, 30)
    assert session.exec(select(BudgetReservation)).all() == []


def test_a_cancel_and_an_uncharged_failure_release_the_reservation(session, settings):
    cap(session, dollars=1.0)
    first, second = add(session, settings, 2)
    cancel_item(session, item_id=first.id)
    session.commit()
    assert usage(session) == (TURBO_COST, 0)
    claim_item(session, item_id=second.id, attempt=1, worker_id="w", settings=settings)
    fail_item(
        session,
        item_id=second.id,
        attempt=1,
        worker_id="w",
        error="moderation",
        permanent=True,
        settings=settings,
    )
    session.commit()
    assert usage(session) == (0, 0)


def test_an_explicit_paid_task_past_the_cap_is_refused_saying_what_is_left(session, settings):
    cap(session, dollars=0.60)  # room for two Gen-4 Turbo videos
    add(session, settings, 2)
    with pytest.raises(BudgetExceeded) as refused:
        add(session, settings, 1)
    session.rollback()
    assert "runway_gen4_turbo per day ($0.60) has $0.10 left" in str(refused.value)
    assert "this video needs about $0.25" in str(refused.value)
    assert session.exec(sa.select(sa.func.count()).select_from(VideoItem)).one()[0] == 2
    assert usage(session) == (2 * TURBO_COST, 0)


def test_a_batch_whose_last_task_passes_the_cap_inserts_nothing(session, settings):
    cap(session, dollars=0.50)
    with pytest.raises(BudgetExceeded) as refused:
        add(session, settings, 3)
    session.rollback()
    assert refused.value.problems == [
        "tasks[2].inference_provider: the budget runway_gen4_turbo per day ($0.50) has $0.00 "
        "left; this video needs about $0.25"
    ]
    assert session.exec(select(VideoItem)).all() == []
    assert usage(session) == (0, 0)


def test_an_auto_routed_urgent_item_at_a_cap_takes_the_next_option(session, settings):
    cap(session, dollars=0.25)
    first, second = add(session, settings, 2, provider=None, priority=GroupPriority.urgent)
    assert first.inference_provider is TURBO  # Wan cannot make 20 minutes
    assert second.inference_provider is InferenceProvider.runway_gen4_5
    assert "Gen-4 skipped: at a cap" in second.route_reason


def test_with_every_paid_option_capped_an_auto_routed_item_goes_to_wan(session, settings):
    cap(session, provider=None, dollars=0, scope=BudgetScope.total)
    [item] = add(session, settings, 1, provider=None, priority=GroupPriority.urgent)
    assert item.inference_provider is WAN


def test_a_group_budget_applies_to_its_group_only(session, settings):
    group = add_group_with_photos(session, 1)
    cap(session, provider=None, dollars=0.25, scope=BudgetScope.group, group_id=group[0])
    add(session, settings, 1, group=group)
    with pytest.raises(BudgetExceeded, match=r"has \$0\.00 left"):
        add(session, settings, 1, group=group)
    session.rollback()
    assert len(add(session, settings, 3)) == 3  # another group: no cap


def test_a_monthly_cap_counts_the_whole_month(session, settings):
    cap(session, dollars=0.50, period=BudgetPeriod.month)
    add(session, settings, 2)
    [entry] = spend(session)
    assert entry.period_start == utcnow().date().replace(day=1)
    assert entry.reserved == 2 * TURBO_COST
    with pytest.raises(BudgetExceeded, match="per month"):
        add(session, settings, 1)
    session.rollback()
    [next_month] = spend(session, now=utcnow() + timedelta(days=32))
    assert (next_month.reserved, next_month.left) == (0, 50)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"cap_dollars": -1}, "cap: -1 is negative"),
        ({"provider": WAN}, "wan_local costs no credits"),
        ({"provider": None}, "a provider budget needs the provider"),
        ({"scope": BudgetScope.group, "provider": None}, "a group budget needs the group"),
    ],
)
def test_a_bad_budget_is_refused_with_what_to_fix(session, change, problem):
    fields = {
        "scope": BudgetScope.provider,
        "period": BudgetPeriod.day,
        "cap_dollars": 5.0,
        "provider": TURBO,
    }
    with pytest.raises(InvalidInput, match=problem):
        set_budget(session, **(fields | change))


def test_setting_a_cap_again_changes_it(session):
    cap(session, dollars=1.0)
    cap(session, dollars=3.5)
    [entry] = spend(session)
    assert entry.budget.cap_credits == 350


CREATORS = 16
BATCHES_EACH = 6


@pytest.mark.timeout(240)
@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_sixteen_concurrent_creators_never_pass_a_cap(engine, settings):
    """16 threads add batches of 1-3 paid items at once against a provider cap, a total cap and
    their group's cap: every batch is all-or-nothing, and no total ever passes its cap."""
    with Session(engine) as session:
        cap(session, dollars=20.0)  # 80 Gen-4 Turbo videos
        cap(session, provider=None, dollars=40.0, scope=BudgetScope.total)
        groups = [add_group_with_photos(session, 1) for _ in range(CREATORS)]
        cap(session, provider=None, dollars=1.5, scope=BudgetScope.group, group_id=groups[0][0])
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(CREATORS)

    def creator(number: int) -> None:
        group_id, (photo_id,) = groups[number]
        start.wait()
        for batch in range(BATCHES_EACH):
            size = 1 + (number + batch) % 3
            tasks = [
                TaskSpec(photo_id=photo_id, prompt="p", inference_provider=TURBO.value)
                for _ in range(size)
            ]
            with Session(engine) as session:
                try:
                    add_batch(session, group_id=group_id, tasks=tasks, settings=settings)
                    session.commit()
                    result = "added"
                except BudgetExceeded:
                    session.rollback()
                    result = "refused"
                except BaseException as error:
                    with lock:
                        errors.append(error)
                    return
            with lock:
                outcomes[result] += size

    threads = [threading.Thread(target=creator, args=(n,)) for n in range(CREATORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(engine) as session:
        items = session.exec(select(VideoItem)).all()
        entries = {(e.budget.scope, e.budget.group_id): e for e in spend(session)}
        reservations = session.exec(select(BudgetReservation)).all()
    assert len(items) == outcomes["added"] and outcomes["refused"] > 0
    provider_cap = entries[(BudgetScope.provider, None)]
    assert provider_cap.reserved == len(items) * TURBO_COST <= provider_cap.budget.cap_credits
    assert provider_cap.left < 3 * TURBO_COST  # filled up to what a batch could not fit in
    group_cap = entries[(BudgetScope.group, groups[0][0])]
    in_group = sum(1 for item in items if item.group_id == groups[0][0])
    assert group_cap.reserved == in_group * TURBO_COST <= group_cap.budget.cap_credits
    assert len(reservations) == len(items) * 2 + in_group  # provider + total (+ group)
