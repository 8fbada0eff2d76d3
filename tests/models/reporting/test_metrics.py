"""The figures of /metrics, read from the database: items by status, spend, budgets, Runway's
last answer, breakers, GPU hosts and the webhook backlog."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr
from sqlmodel import Session

from reelroute.models.core.enums import (
    BreakerState,
    BudgetPeriod,
    BudgetScope,
    FailureClass,
    InferenceProvider,
)
from reelroute.models.core.tables import utcnow
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.health.breakers import host_breaker, label, model_breaker
from reelroute.models.health.loops import beat
from reelroute.models.health.tables import Breaker
from reelroute.models.intake.batches import add_batch
from reelroute.models.money.budgets import set_budget, spend
from reelroute.models.money.limits import ModelLimits, RunwayLimits, store_limits
from reelroute.models.outbox import endpoints
from reelroute.models.outbox import webhooks as hooks
from reelroute.models.planning.hosts import report_host
from reelroute.models.reporting.metrics import Family, HistogramFamily, read_metrics
from tests.models.helpers import add_group_with_photos
from tests.ui.helpers import populate


def values(families: list[Family | HistogramFamily]) -> dict[str, dict[tuple[str, ...], float]]:
    found: dict[str, dict[tuple[str, ...], float]] = {}
    for family in families:
        if isinstance(family, HistogramFamily):  # count and sum per labels
            found[family.name + "_count"] = {
                labels: float(buckets[-1][1]) for labels, buckets, _ in family.series
            }
            found[family.name + "_sum"] = {labels: total for labels, _, total in family.series}
        else:
            found[family.name] = dict(family.samples)
    return found


def test_an_empty_database_gives_every_family_and_zero_items(session):
    found = values(read_metrics(session))
    assert set(found) >= {
        "reelroute_items",
        "reelroute_spent_credits",
        "reelroute_items_predicted_late",
        "reelroute_budget_cap_credits",
        "reelroute_breaker_state",
        "reelroute_gpu_host_up",
        "reelroute_webhook_deliveries",
        "reelroute_runway_credit_balance",
    }
    assert sum(found["reelroute_items"].values()) == 0
    assert found["reelroute_webhook_deliveries"] == {("pending",): 0.0, ("dead",): 0.0}
    assert found["reelroute_webhook_attempts"] == {
        ("delivered",): 0.0,
        ("failed",): 0.0,
        ("dead",): 0.0,
    }
    assert found["reelroute_loop_members"][("dispatcher", "leader")] == 0.0
    assert found["reelroute_outbox_lag_seconds"] == {(): 0.0}
    assert found["reelroute_runway_credit_balance"] == {}  # Runway not asked yet


def test_the_figures_follow_the_database(engine, settings):
    settings = settings.replaced(
        webhook_signing_key=SecretStr("k" * 40), webhook_allow_networks="127.0.0.0/8"
    )
    now = utcnow()
    with Session(engine) as session:
        endpoint, _ = endpoints.register(session, settings, url="http://127.0.0.1:9/hooks")
        endpoint.is_default = True  # every event goes to it
        set_budget(
            session,
            scope=BudgetScope.provider,
            period=BudgetPeriod.day,
            provider=InferenceProvider.runway_veo3_1,
            cap_dollars=5,
        )
        session.commit()
    populate(engine, settings)
    with Session(engine) as session:
        lag_before = values(read_metrics(session))["reelroute_outbox_lag_seconds"][()]
        hooks.fan_out(session)
        pending_deliveries = hooks.counts(session)["pending"]
        store_limits(
            session,
            RunwayLimits(
                credit_balance=12_345,
                max_monthly_credits=100_000,
                models={"gen4_turbo": ModelLimits(3, 50, used_today=20)},
                fetched_at=now - timedelta(seconds=90),
            ),
        )
        name = model_breaker(InferenceProvider.runway_gen4_turbo)
        breaker = session.get(Breaker, name) or Breaker(name=name)  # the failed item made it
        breaker.state, breaker.reason = BreakerState.open, "5 of 6 attempts failed"
        breaker.failure_class = FailureClass.provider_transient
        breaker.opened_at = now - timedelta(minutes=4)
        breaker.next_probe_at = now + timedelta(minutes=1)
        session.add(breaker)
        report_host(
            session, name="gpu-a", gpu_class="NVIDIA H200", preset="fast@1", slots=2, videos=7,
            loads=2, now=now - timedelta(seconds=10),
        )  # fmt: skip
        report_host(
            session, name="gpu-b", gpu_class="cpu", preset="full@1", slots=1,
            now=now - timedelta(minutes=10),
        )  # fmt: skip
        session.commit()
        found = values(read_metrics(session, now=now))
        [veo_budget] = spend(session, now=now)

    items = found["reelroute_items"]
    assert items[("wan_local", "completed")] == 1 and items[("wan_local", "processing")] == 1
    assert items[("runway_gen4_turbo", "failed")] == 1
    assert items[("runway_veo3.1", "pending")] == 1 and items[("runway_veo3.1", "completed")] == 1
    assert sum(items.values()) == 6
    spent = found["reelroute_spent_credits"]
    assert spent[("runway_veo3.1",)] == 240 and spent[("runway_gen4_turbo",)] == 25
    cap = found["reelroute_budget_cap_credits"]
    assert cap == {("runway_veo3.1 per day", "provider", "day"): 500.0}
    # The completed Veo item spent 240 today, the pending one reserved its cost.
    used = found["reelroute_budget_used_credits"][("runway_veo3.1 per day", "provider", "day")]
    assert used == veo_budget.spent + veo_budget.reserved and veo_budget.spent == 240
    assert found["reelroute_runway_concurrency_limit"] == {("gen4_turbo",): 3.0}
    assert found["reelroute_runway_daily_generations_left"] == {("gen4_turbo",): 30.0}
    assert found["reelroute_runway_credit_balance"] == {(): 12_345.0}
    assert found["reelroute_runway_limits_age_seconds"][()] == 90.0
    state = found["reelroute_breaker_state"]
    assert state[(name, label(name))] == 2.0
    assert found["reelroute_breaker_open_seconds"][(name, label(name))] == 240.0
    assert found["reelroute_gpu_host_up"] == {("gpu-a",): 1.0, ("gpu-b",): 0.0}
    assert found["reelroute_gpu_host_heartbeat_age_seconds"][("gpu-b",)] == 600.0
    assert found["reelroute_gpu_host_videos"][("gpu-a",)] == 7.0
    assert found["reelroute_gpu_host_pipeline_loads"][("gpu-a",)] == 2.0
    assert found["reelroute_gpu_host_slots"] == {("gpu-a",): 2.0, ("gpu-b",): 1.0}
    assert pending_deliveries > 0
    assert lag_before > 0 and found["reelroute_outbox_lag_seconds"] == {(): 0.0}
    assert found["reelroute_webhook_deliveries"][("pending",)] == pending_deliveries
    assert host_breaker("gpu-a") not in {key[0] for key in state}
    # Counted by the writers: the moderation failure, and each completion's latencies.
    assert found["reelroute_failed_attempts"] == {("runway_gen4_turbo", "input"): 1.0}
    created = found["reelroute_created_to_completed_seconds_count"]
    assert created == {("runway_gen4_turbo",): 1.0, ("runway_veo3.1",): 1.0, ("wan_local",): 1.0}
    assert found["reelroute_claimed_to_completed_seconds_count"] == created
    assert all(
        seconds >= 0 for seconds in found["reelroute_created_to_completed_seconds_sum"].values()
    )


def test_the_loops_heartbeats_show_their_age_duration_and_outcome(session):
    now = utcnow()
    beat(session, "dispatcher", took_seconds=0.5, ok=True, host="a", now=now - timedelta(seconds=7))
    beat(session, "webhooks", took_seconds=1.5, ok=False, host="b", now=now - timedelta(minutes=9))
    session.commit()
    found = values(read_metrics(session, now=now))
    assert found["reelroute_loop_last_pass_age_seconds"] == {
        ("dispatcher", "a"): 7.0,
        ("webhooks", "b"): 540.0,
    }
    assert found["reelroute_loop_pass_duration_seconds"][("webhooks", "b")] == 1.5
    assert found["reelroute_loop_last_pass_ok"] == {
        ("dispatcher", "a"): 1.0,
        ("webhooks", "b"): 0.0,
    }


def test_the_head_of_each_queue_shows_how_late_and_how_old_it_is(session, settings):
    group_id, (photo_id,) = add_group_with_photos(session, 1)
    created = utcnow() - timedelta(minutes=30)
    add_batch(
        session,
        group_id=group_id,
        tasks=[
            TaskSpec(photo_id=photo_id, prompt="soon", inference_provider="wan_local",
                     deadline_seconds=600),
            TaskSpec(photo_id=photo_id, prompt="later", inference_provider="wan_local",
                     deadline_seconds=7200),
        ],
        settings=settings,
        now=created,
    )  # fmt: skip
    session.commit()
    now = created + timedelta(minutes=30)
    found = values(read_metrics(session, now=now))
    # The Wan queue's head was due 10 minutes after it was made: 20 minutes overdue now.
    assert found["reelroute_queue_head_overdue_seconds"] == {("gpu",): 1200.0}
    assert found["reelroute_queue_head_age_seconds"] == {("gpu",): 1800.0}  # no cloud items
