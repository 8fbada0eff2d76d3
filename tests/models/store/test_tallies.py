"""Counters kept by the writers: failed attempts per class and latency histograms, on both
databases, and kept by the item lifecycle in its own transactions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reelroute.models.core.enums import FailureCode, InferenceProvider
from reelroute.models.core.tables import utcnow
from reelroute.models.items.lifecycle import (
    claim_item,
    complete_item,
    fail_item,
    requeue_expired,
)
from reelroute.models.store.tallies import (
    LATENCY_BUCKETS,
    bucket_of,
    count_failure,
    failure_tallies,
    latency_histograms,
    observe_latency,
)
from tests.models.helpers import add_items


def test_a_latency_falls_in_the_first_bucket_at_or_above_it():
    assert bucket_of(0.0) == "10" and bucket_of(10.0) == "10" and bucket_of(10.5) == "30"
    assert bucket_of(1800.0) == "1800" and bucket_of(86_400.1) == "inf"


def test_tallies_add_up_and_histograms_are_cumulative(session):
    count_failure(session, provider="wan_local", failure_class="gpu_host")
    count_failure(session, provider="wan_local", failure_class="gpu_host", times=2)
    count_failure(session, provider="runway_gen4_turbo", failure_class="input")
    for seconds in (5.0, 200.0, 250.0, 100_000.0):
        observe_latency(session, provider="runway_gen4_turbo", measure="created", seconds=seconds)
    session.commit()
    assert failure_tallies(session) == {
        ("wan_local", "gpu_host"): 3,
        ("runway_gen4_turbo", "input"): 1,
    }
    histogram = latency_histograms(session)[("runway_gen4_turbo", "created")]
    bounds = dict(histogram.buckets)
    assert len(histogram.buckets) == len(LATENCY_BUCKETS) + 1
    assert (bounds[10.0], bounds[120.0], bounds[300.0], bounds[86_400.0]) == (1, 1, 3, 3)
    assert bounds[float("inf")] == histogram.count == 4
    assert histogram.sum_seconds == pytest.approx(100_455.0)
    with pytest.raises(ValueError, match="unknown measure"):
        observe_latency(session, provider="wan_local", measure="queued", seconds=1.0)


def test_the_lifecycle_counts_completions_failures_and_lost_attempts(session, settings):
    settings = settings.replaced(max_attempts=3)
    made, failing, lost = add_items(
        session, settings, 3, provider=InferenceProvider.runway_gen4_turbo
    )
    session.commit()
    start = utcnow()
    for item in (made, failing, lost):
        assert claim_item(session, item_id=item.id, attempt=1, worker_id="w:1", settings=settings)
    session.commit()
    complete_item(
        session, item_id=made.id, attempt=1, worker_id="w:1", output_path="v.mp4",
        now=start + timedelta(seconds=200),
    )  # fmt: skip
    fail_item(
        session, item_id=failing.id, attempt=1, worker_id="w:1", error="503", permanent=False,
        settings=settings, failure_code=FailureCode.HTTP_5XX,
    )  # fmt: skip
    requeue_expired(session, settings=settings, now=start + timedelta(days=1), item_ids=[lost.id])
    session.commit()
    assert failure_tallies(session) == {
        ("runway_gen4_turbo", "provider_transient"): 1,
        ("runway_gen4_turbo", "infra"): 1,
    }
    histograms = latency_histograms(session)
    assert histograms[("runway_gen4_turbo", "created")].count == 1
    claimed = histograms[("runway_gen4_turbo", "claimed")]
    assert claimed.count == 1 and dict(claimed.buckets)[120.0] == 0
    assert dict(claimed.buckets)[300.0] == 1


# --- the ledgers /metrics reads instead of counting rows ---------------------------------------


def deliveries_by_status(session) -> dict[str, int]:
    import sqlalchemy as sa

    rows = session.execute(
        sa.text("SELECT status, count(*) FROM webhook_deliveries GROUP BY status")
    ).all()
    return {status: int(n) for status, n in rows}


def test_the_delivery_ledger_follows_every_change_of_the_deliveries(session, settings):
    """Kept by triggers on webhook_deliveries: fan-out, delivered, given up, resent, and the
    cascade of a deleted endpoint all leave it equal to a count of the rows."""
    import sqlalchemy as sa

    from reelroute.models.outbox import endpoints
    from reelroute.models.outbox import webhooks as hooks
    from reelroute.models.store.tallies import delivery_counts

    settings = settings.replaced(webhook_signing_key="k" * 32)
    endpoint, _ = endpoints.register(
        session, settings, url="https://hooks.example.com/in", resolver=lambda *_: ["93.184.216.34"]
    )
    endpoint.is_default = True
    session.add(endpoint)
    session.commit()
    add_items(session, settings, 4)
    session.commit()

    def check() -> dict[str, int]:
        session.commit()
        ledger = {k: v for k, v in delivery_counts(session).items() if v}
        assert ledger == deliveries_by_status(session)
        return ledger

    assert check() == {}
    hooks.fan_out(session)
    assert check() == {"pending": 4}
    ids = sorted(
        int(row.id) for row in session.execute(sa.text("SELECT id FROM webhook_deliveries")).all()
    )
    hooks.delivered(session, ids[:2], now=utcnow())
    assert check() == {"pending": 2, "delivered": 2}
    hooks.attempt_failed(
        session, ids[2], error="503", status=503, now=utcnow(), retry_hours=0.0
    )  # given up at once
    assert check() == {"pending": 1, "delivered": 2, "dead": 1}
    hooks.resend(session, ids[2])
    assert check() == {"pending": 2, "delivered": 2}
    endpoints.delete(session, endpoint.id)  # its deliveries go with it (a cascade)
    assert check() == {}


def test_moves_are_counted_as_made_and_their_rows_pruned_by_age(session, settings):
    from reelroute.models.planning.replanning import MOVES_KEPT, prune_moves
    from reelroute.models.planning.tables import Reroute
    from reelroute.models.store.tallies import count_move, move_tallies

    (item,) = add_items(session, settings, 1)
    count_move(session, "wan_local", "runway_gen4_turbo")
    count_move(session, "wan_local", "runway_gen4_turbo")
    now = utcnow()
    for age in (MOVES_KEPT + timedelta(days=1), timedelta(days=1)):
        session.add(
            Reroute(
                item_id=item.id,
                from_provider=InferenceProvider.wan_local,
                to_provider=InferenceProvider.runway_gen4_turbo,
                reason="moved",
                moved_at=now - age,
            )
        )
    session.commit()
    assert move_tallies(session) == {("wan_local", "runway_gen4_turbo"): 2}
    assert prune_moves(session, now=now) == 1  # the old row; the tally keeps counting it
    session.commit()
    assert move_tallies(session) == {("wan_local", "runway_gen4_turbo"): 2}
