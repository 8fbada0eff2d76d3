"""The item lifecycle's SQL: claims, leases, fenced writes, requeues, dispatch bookkeeping.

Status and provider values are written as literals, never bound: the partial indexes
(`ix_video_items_claim_*`, `ix_video_items_leases`) are only usable when the planner sees the same
literal predicate as the index, which a generic plan over bound parameters does not.
Every fenced write says `retry_count = :attempt AND worker_id = :worker_id`: a write from an older
attempt, or from anyone but the holder of the current one, matches no row.
"""

from __future__ import annotations

from reelroute.models.core.enums import ItemStatus, Pool
from reelroute.models.core.tables import POOL_PREDICATE, VideoItem

# RETURNING names every column in the model's order, so results map to VideoItem by position.
ITEM_COLUMNS = ", ".join(column.name for column in VideoItem.__table__.columns)  # type: ignore[attr-defined]
# What a claim returns: the holder's working set (models.items.lifecycle.Claim), read by column
# name.
CLAIM_RETURNING = (
    "id, retry_count, group_id, photo_id, prompt, inference_provider, frame_num, duration_s, "
    "ratio, seed, provider_task_id, leased_until, worker_id"
)

# Attempts left: the ones that count (the item could have caused their failure) under
# REELROUTE_MAX_ATTEMPTS, the ones outages ended under REELROUTE_MAX_SPARED_ATTEMPTS.
ATTEMPTS_LEFT = "retry_count - spared_attempts < :max_attempts AND spared_attempts < :max_spared"

# A claim of a processing item takes over an expired lease: the attempt that held it died
# with its worker (ours), so it is spared.
_CLAIMED = """
    spared_attempts = spared_attempts + CASE WHEN status = 'processing' THEN 1 ELSE 0 END,
    status = 'processing',
    retry_count = retry_count + 1,
    leased_until = :leased_until,
    worker_id = :worker_id,
    started_at = :now,
    updated_at = :now,
    next_attempt_at = NULL,
    progress = 0
"""


def claim_next(pool: Pool, *, skip_locked: bool) -> str:
    """Claim the next item of one pool in a single statement.

    First an item whose lease ran out (its holder died or hung), served by
    `ix_video_items_leases`: a few rows per worker. Only processing items hold a lease (a CHECK
    constraint makes sure), and leaving `status` out keeps the planner on that index. Else the
    next due pending item, urgent groups first, then oldest, served by
    `ix_video_items_claim_<pool>`. COALESCE evaluates its second sub-select only when the first
    finds nothing. On PostgreSQL, SKIP LOCKED lets concurrent claimers pass a row another one is
    taking; SQLite runs one writer at a time, so the statement is atomic as it is.
    """
    lock = "FOR UPDATE SKIP LOCKED" if skip_locked else ""
    in_pool = POOL_PREDICATE[pool]
    return f"""
UPDATE video_items SET {_CLAIMED}
WHERE id = coalesce(
    (SELECT id FROM video_items
     WHERE leased_until < :now AND {in_pool}
       AND {ATTEMPTS_LEFT}
     ORDER BY leased_until
     LIMIT 1 {lock}),
    (SELECT id FROM video_items
     WHERE status = 'pending' AND {in_pool}
       AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
       AND {ATTEMPTS_LEFT}
     ORDER BY due_at, created_at
     LIMIT 1 {lock})
)
RETURNING {CLAIM_RETURNING}
"""


# Claim one item by id for the flow run made for `attempt` (= retry_count + 1 once claimed).
# Claimable: pending, or processing with an expired lease; an item some other attempt took,
# or one that was cancelled or finished, matches nothing.
CLAIM_BY_ID = f"""
UPDATE video_items SET {_CLAIMED}
WHERE id = :item_id
  AND retry_count = :attempt - 1
  AND {ATTEMPTS_LEFT}
  AND (status = 'pending' OR (status = 'processing' AND leased_until < :now))
RETURNING {CLAIM_RETURNING}
"""
# The same, for a run made for one provider: a waiting item moved to another provider since
# (models.planning.replanning) is no longer this run's.
CLAIM_BY_ID_FOR_PROVIDER = CLAIM_BY_ID.replace(
    "WHERE id = :item_id", "WHERE id = :item_id AND inference_provider = :provider"
)

# The holder's heartbeat: extend the lease, report progress.
RENEW_LEASE = """
UPDATE video_items
SET leased_until = :leased_until, progress = coalesce(:progress, progress), updated_at = :now
WHERE id = :item_id AND retry_count = :attempt AND worker_id = :worker_id
  AND status = 'processing'
"""

SET_PROVIDER_TASK = """
UPDATE video_items SET provider_task_id = :task_id, updated_at = :now
WHERE id = :item_id AND retry_count = :attempt AND worker_id = :worker_id
  AND status = 'processing'
"""

# Whether `worker_id` still holds `attempt` as COMPLETE would accept it (a read, before a video
# is copied and checked outside any transaction).
HOLDS = """
SELECT 1 FROM video_items
WHERE id = :item_id AND retry_count = :attempt AND worker_id = :worker_id
  AND status IN ('processing', 'pending')
"""

# A finished video is kept even when its lease ran out, as long as no other attempt has
# claimed the item since (status pending with the same retry_count after requeue_expired).
COMPLETE = f"""
UPDATE video_items
SET status = 'completed', output_path = :output_path,
    cost_credits = coalesce(cost_credits + :cost_credits, cost_credits, :cost_credits),
    progress = 1, leased_until = NULL, finished_at = :now, updated_at = :now,
    error = NULL, failure_code = NULL, next_attempt_at = NULL,
    wan_preset = :wan_preset, gpu_host = :gpu_host, gpu_class = :gpu_class, quality = :quality
WHERE id = :item_id AND retry_count = :attempt AND worker_id = :worker_id
  AND status IN ('processing', 'pending')
RETURNING {ITEM_COLUMNS}
"""

# The same fence as COMPLETE: the video is made (and paid for), a person decides.
HOLD_FOR_REVIEW = f"""
UPDATE video_items
SET status = 'review', output_path = :output_path,
    cost_credits = coalesce(cost_credits + :cost_credits, cost_credits, :cost_credits),
    progress = 1, leased_until = NULL, updated_at = :now,
    error = NULL, failure_code = NULL, next_attempt_at = NULL,
    wan_preset = :wan_preset, gpu_host = :gpu_host, gpu_class = :gpu_class, quality = :quality,
    review_reason = :reason
WHERE id = :item_id AND retry_count = :attempt AND worker_id = :worker_id
  AND status IN ('processing', 'pending')
RETURNING {ITEM_COLUMNS}
"""

ACCEPT = f"""
UPDATE video_items SET status = 'completed', finished_at = :now, updated_at = :now
WHERE id = :item_id AND status = 'review'
RETURNING {ITEM_COLUMNS}
"""


# A video not kept: made again on `provider` as the next attempt (its cost stays counted).
# From review (a reviewer rejected it: the attempt that made it is spared, it did its job), or
# from processing (a failed check escalated, fenced: the attempt counts, as a failure would).
def redo(from_status: ItemStatus) -> str:
    """Send an item back to pending, on `:provider`, for its video to be made again."""
    assert from_status in {ItemStatus.review, ItemStatus.processing}
    fence = (
        "status = 'review'"
        if from_status is ItemStatus.review
        else "retry_count = :attempt AND worker_id = :worker_id AND status = 'processing'"
    )
    return f"""
UPDATE video_items
SET status = 'pending', inference_provider = :provider, routed_by = 'explicit',
    route_reason = :route_reason, redo_count = redo_count + 1, output_path = NULL,
    spared_attempts = spared_attempts + :spared,
    provider_task_id = NULL, flow_run_id = NULL, worker_id = NULL, leased_until = NULL,
    progress = 0, next_attempt_at = NULL, finished_at = NULL, wan_preset = NULL,
    gpu_host = NULL, gpu_class = NULL, error = :error, failure_code = :failure_code,
    cost_credits = coalesce(cost_credits + :cost_credits, cost_credits, :cost_credits),
    updated_at = :now
WHERE id = :item_id AND {fence}
RETURNING {ITEM_COLUMNS}
"""


# `new_status` is decided by the caller from the fenced attempt: pending (retry later) or failed.

# What fail_item decides with: the attempts outages ended so far (fenced as the write is).
FAILING = """
SELECT spared_attempts FROM video_items
WHERE id = :item_id AND retry_count = :attempt AND worker_id = :worker_id
  AND status = 'processing'
"""


# The literal is chosen in Python to avoid casting text to the enum type on PostgreSQL.
def fail(new_status: ItemStatus) -> str:
    """Record a failed attempt: back to pending with a backoff, or failed for good."""
    assert new_status in {ItemStatus.pending, ItemStatus.failed}
    finished = ":now" if new_status is ItemStatus.failed else "NULL"
    # Back to pending: forget the flow run, so the dispatcher sends the next attempt.
    flow_run = "flow_run_id" if new_status is ItemStatus.failed else "NULL"
    return f"""
UPDATE video_items
SET status = '{new_status.value}', error = :error, failure_code = :failure_code,
    spared_attempts = spared_attempts + :spared,
    cost_credits = coalesce(cost_credits + :cost_credits, cost_credits, :cost_credits),
    provider_task_id = CASE WHEN :keep_task THEN provider_task_id ELSE NULL END,
    flow_run_id = {flow_run}, next_attempt_at = :next_attempt_at, leased_until = NULL,
    finished_at = {finished}, updated_at = :now
WHERE id = :item_id AND retry_count = :attempt AND worker_id = :worker_id
  AND status = 'processing'
RETURNING {ITEM_COLUMNS}
"""


CANCEL = f"""
UPDATE video_items
SET status = 'cancelled', leased_until = NULL, finished_at = :now, updated_at = :now,
    next_attempt_at = NULL
WHERE id = :item_id AND status IN ('pending', 'processing')
RETURNING {ITEM_COLUMNS}
"""

# An admin's retry: a fresh start, with the attempts counted from zero. The Runway task of the
# failed or cancelled run is forgotten (it ended), so the next attempt submits a new one.
ADMIN_RETRY = f"""
UPDATE video_items
SET status = 'pending', retry_count = 0, spared_attempts = 0, next_attempt_at = NULL,
    leased_until = NULL,
    worker_id = NULL, flow_run_id = NULL, provider_task_id = NULL, output_path = NULL,
    error = NULL, failure_code = NULL, progress = 0, started_at = NULL, finished_at = NULL,
    updated_at = :now
WHERE id = :item_id AND status IN ('failed', 'cancelled')
RETURNING {ITEM_COLUMNS}
"""

# Expired leases (ix_video_items_leases; only processing items hold one): the holder died
# (ours: the attempt is spared). Back to pending while spared attempts remain ...
REQUEUE_EXPIRED = """
UPDATE video_items
SET status = 'pending', leased_until = NULL, updated_at = :now, flow_run_id = NULL,
    spared_attempts = spared_attempts + 1, failure_code = 'LEASE_EXPIRED',
    error = 'lease expired: the worker stopped renewing it (attempt ' || retry_count || ')'
WHERE leased_until < :now AND spared_attempts + 1 < :max_spared
"""
# ... and failed after the last one.
FAIL_EXPIRED = """
UPDATE video_items
SET status = 'failed', leased_until = NULL, finished_at = :now, updated_at = :now,
    spared_attempts = spared_attempts + 1, failure_code = 'LEASE_EXPIRED',
    error = 'lease expired: ' || (spared_attempts + 1) || ' attempts ended by outages'
WHERE leased_until < :now AND spared_attempts + 1 >= :max_spared
"""

# Who held the items whose lease ran out (the reconciler stops their flow runs first).
EXPIRED_LEASES = """
SELECT id, retry_count, worker_id FROM video_items
WHERE leased_until < :now
ORDER BY leased_until
LIMIT :limit
"""


# --- dispatching to Prefect (flows.dispatch) ----------------------------------------------


def in_flight(pool: Pool) -> str:
    """Items of a pool that hold or await a worker slot (processing, or sent to Prefect), per
    provider."""
    return f"""
SELECT inference_provider, count(*) FROM video_items
WHERE {POOL_PREDICATE[pool]}
  AND (leased_until IS NOT NULL OR (status = 'pending' AND flow_run_id IS NOT NULL))
GROUP BY inference_provider
"""


def next_to_dispatch(pool: Pool, *, one_provider: bool = False) -> str:
    """The next due pending items of a pool (or of one of its providers) not yet sent to
    Prefect, in claim order: earliest due first (served by ix_video_items_claim_<pool>)."""
    provider = "AND inference_provider = :provider" if one_provider else ""
    return f"""
SELECT id, retry_count, priority, inference_provider, group_id, due_at, wan_full_quality
FROM video_items
WHERE status = 'pending' AND {POOL_PREDICATE[pool]} {provider}
  AND flow_run_id IS NULL
  AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
  AND {ATTEMPTS_LEFT}
ORDER BY due_at, created_at
LIMIT :limit
"""


# Record the flow run made for the next attempt of a pending item (fenced by its retry_count).
MARK_DISPATCHED = """
UPDATE video_items SET flow_run_id = :flow_run_id, updated_at = :now
WHERE id = :item_id AND status = 'pending' AND retry_count = :retry_count
  AND flow_run_id IS NULL AND inference_provider = :provider
"""

# A flow run that ended without claiming its item used up that attempt (ours: spared), and
# the dispatcher sends the next one (or the item fails after the last spared attempt).
RUN_LOST_BEFORE_CLAIM = """
UPDATE video_items
SET retry_count = retry_count + 1, spared_attempts = spared_attempts + 1, flow_run_id = NULL,
    updated_at = :now, error = :error, failure_code = :failure_code,
    status = CASE WHEN spared_attempts + 1 >= :max_spared THEN 'failed' ELSE status END,
    finished_at = CASE WHEN spared_attempts + 1 >= :max_spared THEN :now ELSE NULL END
WHERE id = :item_id AND status = 'pending' AND flow_run_id = :flow_run_id
"""

# A cancelled item's provider task was deleted at the provider: forget it, say so.
FORGET_TASK = """
UPDATE video_items
SET provider_task_id = NULL, updated_at = :now,
    error = 'cancelled; provider task ' || :task_id || ' deleted'
WHERE id = :item_id AND status = 'cancelled' AND provider_task_id = :task_id
"""


# A waiting item moved to another provider by the planner (at most once; never an item the
# admin chose, one whose provider task exists, or one with an A/B sample).
MOVE = """
UPDATE video_items
SET inference_provider = :to_provider, routed_by = 'rerouted', route_reason = :reason,
    rerouted_at = :now, updated_at = :now, flow_run_id = NULL
WHERE id = :item_id AND status = 'pending' AND inference_provider = :from_provider
  AND provider_task_id IS NULL AND rerouted_at IS NULL AND routed_by <> 'explicit'
  AND NOT EXISTS (SELECT 1 FROM video_items AS sample WHERE sample.shadow_of = :item_id)
"""


# The item's `item.progress` is due (at most one every PROGRESS_EVERY): mark it, in one statement.
PROGRESS_DUE = """
UPDATE video_items SET progress_event_at = :now
WHERE id = :item_id AND (progress_event_at IS NULL OR progress_event_at <= :since)
"""
