"""The item lifecycle after creation: every transition, fencing, leases and attempts, on SQLite
and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from reelroute.models.core.enums import FailureCode, InferenceProvider, ItemStatus, Pool
from reelroute.models.core.errors import InvalidTransition, NotFound, StaleAttempt
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.items import lifecycle as ops
from tests.models.helpers import add_items, claim_next_item

WAN, TURBO, VEO = (
    InferenceProvider.wan_local,
    InferenceProvider.runway_gen4_turbo,
    InferenceProvider.runway_veo3_1,
)


def item_count(session) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(VideoItem)).scalar_one()


# --- claiming -----------------------------------------------------------------------------


def test_worker_types_only_get_their_providers(session, settings):
    wan = add_items(session, settings, 2, WAN)
    turbo = add_items(session, settings, 2, TURBO)
    veo = add_items(session, settings, 2, VEO)
    wan_claims = [claim_next_item(session, settings, Pool.gpu) for _ in range(3)]
    runway_claims = [claim_next_item(session, settings, Pool.cloud) for _ in range(5)]
    assert [c.item_id for c in wan_claims[:2]] == [i.id for i in wan] and wan_claims[2] is None
    assert [c.item_id for c in runway_claims[:4]] == [i.id for i in turbo + veo]
    assert runway_claims[4] is None


def test_claim_leases_and_counts_the_attempt(session, settings):
    (item,) = add_items(session, settings, 1)
    before = utcnow()
    claimed = claim_next_item(session, settings)
    assert (claimed.item_id, claimed.attempt, claimed.worker_id) == (item.id, 1, "w1")
    assert (claimed.prompt, claimed.photo_id) == (item.prompt, item.photo_id)
    stored = ops.get_item(session, item.id)
    assert stored.status is ItemStatus.processing and stored.retry_count == 1
    assert stored.started_at >= before and stored.leased_until == claimed.leased_until
    assert claimed.leased_until == pytest.approx(
        stored.started_at + timedelta(seconds=settings.items.lease_seconds),
        abs=timedelta(seconds=1),
    )
    assert claimed.leased_until.tzinfo is not None


def test_claim_by_id_is_fenced_by_the_attempt(session, settings):
    (item,) = add_items(session, settings, 1)
    assert (
        ops.claim_item(session, item_id=item.id, attempt=2, worker_id="w", settings=settings)
        is None
    )
    claimed = ops.claim_item(session, item_id=item.id, attempt=1, worker_id="w", settings=settings)
    assert claimed is not None and claimed.attempt == 1
    # A second run for the same attempt finds it taken.
    assert (
        ops.claim_item(session, item_id=item.id, attempt=1, worker_id="w2", settings=settings)
        is None
    )


def test_an_expired_lease_makes_the_item_claimable_again(session, settings):
    add_items(session, settings, 1)
    first = claim_next_item(session, settings)
    assert claim_next_item(session, settings) is None  # leased
    later = utcnow() + timedelta(seconds=settings.items.lease_seconds + 1)
    second = claim_next_item(session, settings, now=later)
    assert second.item_id == first.item_id and second.attempt == 2
    # The first attempt is now stale: it can neither complete, fail nor renew.
    with pytest.raises(StaleAttempt):
        ops.complete_item(
            session, item_id=first.item_id, attempt=1, worker_id="w1", output_path="x.mp4"
        )
    with pytest.raises(StaleAttempt):
        ops.fail_item(
            session,
            item_id=first.item_id,
            attempt=1,
            worker_id="w1",
            error="boom",
            permanent=True,
            settings=settings,
        )
    with pytest.raises(StaleAttempt):
        ops.renew_lease(session, item_id=first.item_id, attempt=1, worker_id="w1", lease_seconds=60)
    session.rollback()
    current = ops.get_item(session, first.item_id)
    assert current.status is ItemStatus.processing and current.retry_count == 2


def test_claim_by_id_takes_an_expired_item(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    later = utcnow() + timedelta(seconds=settings.items.lease_seconds + 1)
    again = ops.claim_item(
        session, item_id=item.id, attempt=2, worker_id="w2", settings=settings, now=later
    )
    assert again is not None and again.worker_id == "w2"


def test_renewal_keeps_the_item_from_expiring(session, settings):
    (item,) = add_items(session, settings, 1)
    claimed = claim_next_item(session, settings)
    soon = utcnow() + timedelta(seconds=settings.items.lease_seconds - 5)
    until = ops.renew_lease(
        session,
        item_id=item.id,
        attempt=1,
        worker_id="w1",
        lease_seconds=600,
        progress=0.4,
        now=soon,
    )
    session.commit()
    assert until > claimed.leased_until
    assert claim_next_item(session, settings, now=soon + timedelta(seconds=10)) is None
    assert ops.get_item(session, item.id).progress == pytest.approx(0.4)


def test_items_waiting_for_their_backoff_are_not_claimed(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    failed = ops.fail_item(
        session,
        item_id=item.id,
        attempt=1,
        worker_id="w1",
        error="503",
        permanent=False,
        settings=settings,
    )
    session.commit()
    assert failed.status is ItemStatus.pending
    assert failed.next_attempt_at - utcnow() > timedelta(seconds=25)
    assert claim_next_item(session, settings) is None
    assert failed.next_attempt_at is not None
    retried = claim_next_item(session, settings, now=failed.next_attempt_at + timedelta(seconds=1))
    assert retried.item_id == item.id and retried.attempt == 2


# --- finishing ----------------------------------------------------------------------------


def test_complete_records_output_and_cost(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    done = ops.complete_item(
        session,
        item_id=item.id,
        attempt=1,
        worker_id="w1",
        output_path="videos/g/i.mp4",
        cost_credits=25,
    )
    session.commit()
    assert done.status is ItemStatus.completed and done.progress == 1
    assert (done.output_path, done.cost_credits) == ("videos/g/i.mp4", 25)
    assert done.finished_at is not None and done.leased_until is None
    with pytest.raises(StaleAttempt):
        ops.complete_item(
            session, item_id=item.id, attempt=1, worker_id="w1", output_path="again.mp4"
        )


def test_a_finished_video_is_kept_after_its_lease_expired_if_nobody_took_over(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    later = utcnow() + timedelta(seconds=settings.items.lease_seconds + 1)
    assert ops.requeue_expired(session, settings=settings, now=later).requeued == 1
    done = ops.complete_item(
        session, item_id=item.id, attempt=1, worker_id="w1", output_path="v.mp4"
    )
    assert done.status is ItemStatus.completed


def fail_attempts(session, settings, item, code, attempts, now):
    """Claim and fail `item` `attempts` times with `code`; the delays and the last state."""
    delays = []
    failed = None
    for attempt in range(1, attempts + 1):
        claimed = claim_next_item(session, settings, now=now)
        assert claimed is not None and claimed.attempt == attempt
        failed = ops.fail_item(
            session,
            item_id=item.id,
            attempt=attempt,
            worker_id="w1",
            error=f"attempt {attempt}: {code.value}",
            failure_code=code,
            permanent=False,
            settings=settings,
            now=now,
        )
        session.commit()
        if failed.next_attempt_at:
            delays.append(round((failed.next_attempt_at - now).total_seconds()))
            now = failed.next_attempt_at + timedelta(seconds=1)
    return delays, failed, now


def test_failures_the_item_may_cause_back_off_exponentially_then_fail_at_max_attempts(
    session, settings
):
    (item,) = add_items(session, settings, 1)
    delays, failed, now = fail_attempts(session, settings, item, FailureCode.OTHER, 3, utcnow())
    assert delays == [30, 60]
    assert failed.status is ItemStatus.failed and failed.failure_code is FailureCode.OTHER
    assert (failed.retry_count, failed.spared_attempts) == (3, 0)
    assert claim_next_item(session, settings, now=now + timedelta(hours=1)) is None


def test_a_providers_outage_spares_the_items_attempts_up_to_their_own_cap(session, settings):
    """A 503 is not the item's doing: it does not count against REELROUTE_MAX_ATTEMPTS (3),
    only against REELROUTE_MAX_SPARED_ATTEMPTS (here 5), and the backoff still grows."""
    settings = settings.replaced(max_spared_attempts=5, breaker_min_failures=1000)
    (item,) = add_items(session, settings, 1)
    delays, failed, _ = fail_attempts(session, settings, item, FailureCode.HTTP_5XX, 5, utcnow())
    assert delays == [30, 60, 120, 240]
    assert failed.status is ItemStatus.failed and failed.spared_attempts == 5
    assert failed.failure_code is FailureCode.HTTP_5XX


def test_a_daily_cap_spends_no_attempt_and_waits_for_no_backoff(session, settings):
    (item,) = add_items(session, settings, 1)
    delays, failed, _ = fail_attempts(session, settings, item, FailureCode.HTTP_429, 1, utcnow())
    assert failed.status is ItemStatus.pending and failed.next_attempt_at is None
    assert (failed.retry_count, failed.spared_attempts) == (1, 1) and delays == []


def test_permanent_failure_fails_at_once_and_keeps_the_code(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    ops.set_provider_task(session, item_id=item.id, attempt=1, worker_id="w1", task_id="task-1")
    failed = ops.fail_item(
        session,
        item_id=item.id,
        attempt=1,
        worker_id="w1",
        permanent=True,
        error="moderation",
        failure_code=FailureCode.SAFETY_INPUT,
        cost_credits=5,
        settings=settings,
    )
    assert failed.status is ItemStatus.failed and failed.failure_code is FailureCode.SAFETY_INPUT
    assert failed.cost_credits == 5 and failed.provider_task_id is None


def test_provider_task_is_kept_for_the_next_attempt_when_asked(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    ops.set_provider_task(session, item_id=item.id, attempt=1, worker_id="w1", task_id="task-1")
    failed = ops.fail_item(
        session,
        item_id=item.id,
        attempt=1,
        worker_id="w1",
        permanent=False,
        error="poll timed out",
        keep_provider_task=True,
        settings=settings,
    )
    assert failed.provider_task_id == "task-1"
    with pytest.raises(StaleAttempt):
        ops.set_provider_task(session, item_id=item.id, attempt=1, worker_id="w1", task_id="task-2")


def test_requeue_expired_requeues_then_fails_after_the_last_attempt(session, settings):
    """A lease that runs out is our worker's death: spared, up to REELROUTE_MAX_SPARED_ATTEMPTS
    (more than REELROUTE_MAX_ATTEMPTS)."""
    settings = settings.replaced(max_spared_attempts=5)
    (item,) = add_items(session, settings, 1)
    now = utcnow()
    for attempt in range(1, 6):
        assert claim_next_item(session, settings, now=now).attempt == attempt
        now += timedelta(seconds=settings.items.lease_seconds + 1)
        result = ops.requeue_expired(session, settings=settings, now=now)
        session.commit()
    assert result == ops.RequeueResult(requeued=0, failed=1)
    final = ops.get_item(session, item.id)
    assert final.status is ItemStatus.failed and final.failure_code == "LEASE_EXPIRED"
    assert "lease expired" in final.error and final.spared_attempts == 5


def test_cancel_and_retry(session, settings):
    pending, processing = add_items(session, settings, 2)
    claim_next_item(session, settings)
    for item in (pending, processing):
        cancelled = ops.cancel_item(session, item_id=item.id)
        assert cancelled.status is ItemStatus.cancelled and cancelled.finished_at is not None
    session.commit()
    with pytest.raises(StaleAttempt):
        ops.complete_item(
            session, item_id=processing.id, attempt=1, worker_id="w1", output_path="v.mp4"
        )
    with pytest.raises(InvalidTransition, match=r"cannot cancel .* it is cancelled"):
        ops.cancel_item(session, item_id=pending.id)
    retried = ops.retry_item(session, item_id=processing.id)
    assert retried.status is ItemStatus.pending and retried.retry_count == 0
    assert retried.worker_id is None and retried.error is None
    with pytest.raises(InvalidTransition, match=r"cannot retry .* it is pending"):
        ops.retry_item(session, item_id=processing.id)
    with pytest.raises(NotFound):
        ops.cancel_item(session, item_id=uuid.uuid4())


def test_retry_a_failed_item_starts_its_attempts_again(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    ops.fail_item(
        session,
        item_id=item.id,
        attempt=1,
        worker_id="w1",
        permanent=True,
        error="x",
        settings=settings,
    )
    ops.retry_item(session, item_id=item.id)
    session.commit()
    assert claim_next_item(session, settings).attempt == 1


def test_completed_items_cannot_be_cancelled(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    ops.complete_item(session, item_id=item.id, attempt=1, worker_id="w1", output_path="v.mp4")
    with pytest.raises(InvalidTransition):
        ops.cancel_item(session, item_id=item.id)


def test_every_fenced_write_needs_the_holder_as_well_as_the_attempt(session, settings):
    (item,) = add_items(session, settings, 1)
    claim_next_item(session, settings)
    writes = {
        "renew_lease": lambda who: ops.renew_lease(
            session, item_id=item.id, attempt=1, worker_id=who, lease_seconds=60
        ),
        "set_provider_task": lambda who: ops.set_provider_task(
            session, item_id=item.id, attempt=1, worker_id=who, task_id="t"
        ),
        "complete_item": lambda who: ops.complete_item(
            session, item_id=item.id, attempt=1, worker_id=who, output_path="v.mp4"
        ),
        "fail_item": lambda who: ops.fail_item(
            session,
            item_id=item.id,
            attempt=1,
            worker_id=who,
            error="x",
            permanent=True,
            settings=settings,
        ),
    }
    for name, write in writes.items():
        for intruder in ("w2", ""):
            with pytest.raises(StaleAttempt):
                write(intruder)
        assert ops.get_item(session, item.id).status is ItemStatus.processing, name
    ops.renew_lease(session, item_id=item.id, attempt=1, worker_id="w1", lease_seconds=60)


def test_a_failure_never_stores_a_signed_urls_query(session, settings):
    """httpx's error names the whole signed output URL: the item, its event and its webhooks
    keep the provider's words and the URL without its query."""
    from sqlmodel import select

    from reelroute.models.outbox.tables import ItemEvent

    (item,) = add_items(session, settings, 1)
    claim = claim_next_item(session, settings)
    assert claim is not None
    signed = "https://cdn.example.net/out/v.mp4?_jwt=eyJ.secret.sig&Expires=1"
    done = ops.fail_item(
        session,
        item_id=item.id,
        attempt=claim.attempt,
        worker_id=claim.worker_id,
        error=f"Client error '403 Forbidden' for url '{signed}'",
        permanent=True,
        failure_code=FailureCode.SAFETY_INPUT,
        settings=settings,
    )
    assert (
        done.error == "Client error '403 Forbidden' for url 'https://cdn.example.net/out/v.mp4?…'"
    )
    events = session.exec(select(ItemEvent).where(ItemEvent.item_id == item.id)).all()
    assert events and all("secret" not in (event.detail or "") for event in events)
