"""The lease keeper: renewals, progress, and noticing that the attempt lost its item."""

from __future__ import annotations

import time

import pytest

from reelroute.flows.lease import LeaseKeeper, Throttle
from reelroute.models.core.enums import Pool
from reelroute.models.core.errors import StaleAttempt
from reelroute.models.items import lifecycle as ops
from tests.conftest import database_outage
from tests.models.helpers import add_items


def test_renewal_extends_the_lease_and_stores_progress(engine, session, settings):
    (item,) = add_items(session, settings, 1)
    claim = ops.claim_next(session, pool=Pool.cloud, worker_id="w", settings=settings)
    session.commit()
    keeper = LeaseKeeper(
        engine, item_id=item.id, attempt=claim.attempt, worker_id="w", lease_seconds=900
    )
    keeper.report(0.25)
    keeper.renew()
    stored = ops.get_item(session, item.id)
    assert stored.progress == pytest.approx(0.25)
    assert stored.leased_until > claim.leased_until


def test_a_lost_lease_stops_the_provider_at_its_next_report(engine, session, settings):
    (item,) = add_items(session, settings, 1)
    claim = ops.claim_next(session, pool=Pool.cloud, worker_id="w", settings=settings)
    ops.cancel_item(session, item_id=item.id)
    session.commit()
    keeper = LeaseKeeper(
        engine, item_id=item.id, attempt=claim.attempt, worker_id="w", lease_seconds=60
    )
    keeper.renew()
    assert keeper.lost.is_set()
    with pytest.raises(StaleAttempt):
        keeper.report(0.5)


def test_the_keeper_renews_in_the_background(engine, session, settings):
    (item,) = add_items(session, settings, 1)
    claim = ops.claim_next(session, pool=Pool.cloud, worker_id="w", settings=settings)
    session.commit()
    with LeaseKeeper(
        engine, item_id=item.id, attempt=claim.attempt, worker_id="w", lease_seconds=1
    ) as keeper:
        keeper.report(0.5)
        time.sleep(1.2)
    assert ops.get_item(session, item.id).progress == pytest.approx(0.5)


def test_throttle_passes_the_first_and_the_last_value():
    seen: list[float] = []
    throttle = Throttle(seen.append, seconds=60)
    for value in (0.1, 0.2, 0.3, 1.0):
        throttle(value)
    assert seen == [0.1, 1.0]


def test_throttle_skips_a_value_already_shown():
    seen: list[float] = []
    throttle = Throttle(seen.append, seconds=0, initial=0.0)
    for value in (0.0, 0.0, 0.4, 0.4, 0.5, 1.0, 1.0):
        throttle(value)
    assert seen == [0.4, 0.5, 1.0]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_keeper_rides_out_a_database_outage(db_url, engine, session, settings):
    (item,) = add_items(session, settings, 1)
    claim = ops.claim_next(session, pool=Pool.cloud, worker_id="w", settings=settings)
    session.commit()
    keeper = LeaseKeeper(
        engine, item_id=item.id, attempt=claim.attempt, worker_id="w", lease_seconds=600
    )
    with database_outage(db_url):
        keeper.report(0.3)
        keeper.renew()  # logged, not raised: the lease has slack
    assert not keeper.lost.is_set()
    keeper.renew()
    session.expire_all()
    assert ops.get_item(session, item.id).progress == pytest.approx(0.3)
