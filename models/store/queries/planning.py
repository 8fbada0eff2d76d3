"""Planning's SQL: recent service times, the lanes' items, ETAs copied in, moves."""

RECENT = """
SELECT started_at, finished_at, frame_num, duration_s, wan_preset, gpu_class FROM video_items
WHERE status = 'completed' AND inference_provider = :provider
  AND started_at IS NOT NULL AND finished_at IS NOT NULL
ORDER BY finished_at DESC
LIMIT :limit
"""


# PostgreSQL: the predictions that changed are copied in as seconds from `now` (binary COPY),
# and the timestamps made by the server.
ETA_STAGE = """
CREATE TEMPORARY TABLE eta_stage (
    item_id uuid, queue_position integer, start_s float8, finish_s float8, p90_s float8,
    late_risk boolean
) ON COMMIT DROP
"""


ETA_STAGE_COPY = "COPY eta_stage (item_id, queue_position, start_s, finish_s, p90_s, late_risk)"


ETA_FROM_STAGE = """
INSERT INTO item_etas (item_id, queue_position, start_at, eta, eta_p90, late_risk)
SELECT item_id, queue_position, :now + make_interval(secs => start_s),
       :now + make_interval(secs => finish_s), :now + make_interval(secs => p90_s),
       late_risk
FROM eta_stage
ON CONFLICT (item_id) DO UPDATE
SET queue_position = excluded.queue_position, start_at = excluded.start_at, eta = excluded.eta,
    eta_p90 = excluded.eta_p90, late_risk = excluded.late_risk
"""


# A run already made for the item but not started (its worker is down, say) stays behind: the
# claim is fenced on the provider, so it can no longer take the item; the planner cancels it.
# An item with an A/B sample stays where it is (ix_video_items_shadow_of): its sample was drawn
# on another provider, and a move could make the pair one provider's twice.
ITEMS_IN_LANES = """
SELECT id, inference_provider, status, due_at, started_at, frame_num, duration_s,
       CASE WHEN routed_by <> 'explicit' AND rerouted_at IS NULL
                 AND provider_task_id IS NULL
            THEN 1 ELSE 0 END AS movable,
       CASE WHEN status = 'processing' THEN worker_id END AS worker_id
FROM video_items
WHERE status = 'pending' OR leased_until IS NOT NULL
ORDER BY due_at, created_at
"""


# PostgreSQL's fast path: every waiting item, in the dispatcher's order, packed into one bytea
# (models.store.copy.columns): its id (16 bytes), its due time (timestamptz_send: 8 bytes,
# microseconds from 2000-01-01 UTC), its kind (8 bytes: (frame_num + 1) << 24 | (duration_s +
# 1) << 1 | movable) and its provider (2 bytes: its place in {providers}, 0: unknown).
WAITING_PACKED = """
SELECT string_agg(
         uuid_send(id)
         || timestamptz_send(due_at)
         || int8send(((coalesce(frame_num, -1) + 1)::int8 << 24)
                     | ((coalesce(duration_s, -1) + 1)::int8 << 1)
                     | CASE WHEN routed_by <> 'explicit' AND rerouted_at IS NULL
                                 AND provider_task_id IS NULL
                            THEN 1 ELSE 0 END)
         || int2send((CASE inference_provider::text {providers} ELSE 0 END)::int2),
         ''::bytea ORDER BY due_at, created_at)
FROM video_items
WHERE {pending}
"""
WAITING_WIDTHS = (16, 8, 8, 2)


ITEMS_AT_WORK = """
SELECT id, inference_provider, started_at, frame_num, duration_s, worker_id
FROM video_items
WHERE leased_until IS NOT NULL
"""


# The A/B samples' second videos that wait (few: a share of some groups' items), left out of
# the routing's harm test (ix_video_items_shadow_of).
WAITING_SAMPLES = """
SELECT id FROM video_items WHERE shadow_of IS NOT NULL AND status = 'pending'
"""
