"""The dispatcher's planner: Runway's limits read at start and every few minutes, kept when the
call fails, followed by the cloud pool's slots; ETAs and moves on their own pace."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from reelroute.flows.planning import Planner
from reelroute.models.core.catalogue import CATALOGUE
from reelroute.models.core.enums import GroupPriority, InferenceProvider, Pool
from reelroute.models.core.tables import ItemEta, utcnow
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.items.lifecycle import claim_item, complete_item
from reelroute.models.money.limits import ModelLimits, RunwayLimits, last_limits, store_limits
from reelroute.models.planning.replanning import eta_of
from reelroute.models.planning.snapshot import build_snapshot
from reelroute.models.planning.tables import GpuDemand
from reelroute.providers.base import TransientError
from tests.models.helpers import add_group_with_photos

TURBO = InferenceProvider.runway_gen4_turbo


def answer(balance: int = 50_000, turbo: int = 2, veo_daily: int | None = None) -> RunwayLimits:
    models = {entry.model: ModelLimits(1, None) for entry in CATALOGUE.values() if entry.paid}
    models["gen4_turbo"] = ModelLimits(turbo, None)
    models["veo3.1"] = ModelLimits(1, veo_daily, used_today=veo_daily or 0)
    return RunwayLimits(credit_balance=balance, max_monthly_credits=100_000, models=models)


class Runway:
    """Answers `organization.retrieve()` as scripted, counting the calls."""

    def __init__(self) -> None:
        self.answers: list[RunwayLimits | Exception] = []
        self.calls = 0

    def __call__(self) -> RunwayLimits:
        self.calls += 1
        next_answer = self.answers.pop(0)
        if isinstance(next_answer, Exception):
            raise next_answer
        return next_answer


@pytest.fixture
def runway() -> Runway:
    return Runway()


@pytest.fixture
def planner(engine, settings, prefect, runway) -> Planner:
    settings = settings.replaced(
        runway_limits_refresh_seconds=300,
        eta_refresh_seconds=10,
        cloud_slots=8,
    )
    return Planner(engine, settings, prefect, runway)


def test_limits_are_read_at_start_kept_and_refreshed_every_few_minutes(
    planner, runway, prefect, engine
):
    runway.answers = [answer(turbo=2), answer(turbo=7)]
    planner.run_due(now=1000.0)
    assert runway.calls == 1
    # Gen-4 Turbo's 2, and one each for Gen-4.5, Veo 3.1 Fast and Veo 3.1.
    assert prefect.pools == {Pool.cloud.value: 5}
    with Session(engine) as session:
        assert last_limits(session).model("gen4_turbo").max_concurrent == 2
    planner.run_due(now=1000.0 + 299)
    assert runway.calls == 1  # the cached answer serves until the refresh is due
    planner.run_due(now=1000.0 + 300)
    assert runway.calls == 2
    # 7 + 3 = 10 at Runway, but never more than REELROUTE_CLOUD_SLOTS.
    assert prefect.pools == {Pool.cloud.value: 8}


def test_a_failed_call_keeps_the_last_answer_and_never_stops_work(
    planner, runway, prefect, engine, caplog
):
    runway.answers = [answer(turbo=2), TransientError("Runway answered 503")]
    planner.run_due(now=0.0)
    with caplog.at_level(logging.WARNING):
        planner.run_due(now=300.0)  # raises nothing
    assert "could not read Runway's limits (keeping the last answer)" in caplog.text
    with Session(engine) as session:
        assert last_limits(session).model("gen4_turbo").max_concurrent == 2
    assert prefect.pools == {Pool.cloud.value: 5}


def test_the_etas_are_refreshed_on_their_own_pace(planner, engine, settings):
    planner.limits_source = None
    with Session(engine, expire_on_commit=False) as session:
        group_id, (photo_id,) = add_group_with_photos(session, 1, GroupPriority.normal)
        [item] = add_batch(
            session,
            group_id=group_id,
            settings=settings,
            tasks=[TaskSpec(photo_id=photo_id, prompt="p")],
        )
        session.commit()
    planner.run_due(now=0.0)
    with Session(engine) as session:
        first = eta_of(session, item.id)
        assert first is not None and first.queue_position == 1
    planner.run_due(now=5.0)  # not due yet: the stored ETA stays as it was
    with Session(engine) as session:
        assert eta_of(session, item.id).eta == first.eta


def test_a_failed_pass_makes_the_next_one_write_every_eta(planner, engine, settings, monkeypatch):
    planner.limits_source = None
    with Session(engine, expire_on_commit=False) as session:
        group_id, (photo_id,) = add_group_with_photos(session, 1, GroupPriority.normal)
        items = add_batch(
            session,
            group_id=group_id,
            settings=settings,
            tasks=[TaskSpec(photo_id=photo_id, prompt=f"p{n}") for n in range(3)],
        )
        session.commit()
    planner.replan()
    assert planner._etas is not None and len(planner._etas.rows) == 3

    def broken(*_args: object) -> list:
        raise RuntimeError("the database went away mid-pass")

    monkeypatch.setattr("reelroute.flows.planning.reroute_waiting", broken)
    with pytest.raises(RuntimeError):
        planner.replan()
    assert planner._etas is None  # what the table holds is not known any more
    monkeypatch.undo()
    with Session(engine) as session:  # rows out of step with what the planner remembered
        session.execute(sa.update(ItemEta).values(queue_position=99))
        session.commit()
    planner.replan()
    with Session(engine) as session:
        assert {eta_of(session, item.id).queue_position for item in items} == {1, 2, 3}


def test_a_model_out_of_daily_generations_and_the_balance_steer_routing(engine, settings):
    with Session(engine, expire_on_commit=False) as session:
        store_limits(session, answer(balance=20, veo_daily=5))
        session.commit()
        snapshot = build_snapshot(session, settings, now=utcnow())
    assert snapshot.limits is not None
    assert snapshot.limits.model("veo3.1").daily_left == 0
    assert snapshot.caps.left(TURBO, None) == 20  # the balance is a cap


def test_runways_monthly_limit_counts_what_we_spent_this_month(engine, settings):
    with Session(engine, expire_on_commit=False) as session:
        group_id, (photo_id,) = add_group_with_photos(session, 1, GroupPriority.normal)
        items = add_batch(
            session,
            group_id=group_id,
            settings=settings,
            tasks=[TaskSpec(photo_id=photo_id, prompt="p", inference_provider=TURBO.value)] * 2,
        )
        session.commit()
        for item in items[:1]:
            claim_item(session, item_id=item.id, attempt=1, worker_id="w", settings=settings)
            complete_item(
                session,
                item_id=item.id,
                attempt=1,
                worker_id="w",
                output_path="v",
                cost_credits=30_000,
            )
        session.commit()
        limits = RunwayLimits(credit_balance=10**9, max_monthly_credits=100_000)
        store_limits(session, limits)
        session.commit()
        stored = last_limits(session)
        assert stored is not None and stored.spent_this_month == 30_000
        # 100,000 - 30,000 spent - 25 reserved by the waiting item.
        snapshot = build_snapshot(session, settings, now=utcnow())
        assert snapshot.caps.left(TURBO, None) == 70_000 - 25
        claim_item(session, item_id=items[1].id, attempt=1, worker_id="w", settings=settings)
        complete_item(
            session,
            item_id=items[1].id,
            attempt=1,
            worker_id="w",
            output_path="v",
            cost_credits=40_000,
        )
        session.commit()
        # Charged after Runway's answer: counted from our own books until the next one.
        later = build_snapshot(session, settings, now=utcnow() + timedelta(seconds=1))
        assert later.caps.left(TURBO, None) == 30_000


def test_each_pass_counts_the_gpus_the_waiting_wan_work_wants(planner, engine, settings):
    planner.limits_source = None
    with Session(engine, expire_on_commit=False) as session:
        group_id, (photo_id,) = add_group_with_photos(session, 1, GroupPriority.normal)
        add_batch(
            session,
            group_id=group_id,
            settings=settings,
            tasks=[
                TaskSpec(photo_id=photo_id, prompt="p", inference_provider="wan_local")
                for _ in range(3)
            ],
        )
        session.commit()
    planner.run_due(now=0.0)
    with Session(engine) as session:
        demand = session.get(GpuDemand, 1)
        assert demand is not None
        # three Wan videos (about 30 minutes each) due in 4 hours fit on one GPU
        assert (demand.slots, demand.hosts, demand.waiting) == (1, 1, 3)
