"""Budgets' and Runway's spend SQL: reservations under a row lock, our own books."""

ENSURE_USAGE = """
INSERT INTO budget_usage (budget_id, period_start, reserved, spent)
VALUES (:budget_id, :period_start, 0, 0)
ON CONFLICT (budget_id, period_start) DO NOTHING
"""


LOCK_USAGE = """
SELECT reserved FROM budget_usage WHERE budget_id = :budget_id AND period_start = :period_start
FOR UPDATE
"""


# The check and the reservation in one statement: the row lock serialises concurrent callers.
RESERVE = """
UPDATE budget_usage SET reserved = reserved + :credits
WHERE budget_id = :budget_id AND period_start = :period_start
  AND reserved + spent + :credits <= :cap
"""


UNRESERVE = """
UPDATE budget_usage SET reserved = reserved - :reserved, spent = spent + :spent
WHERE budget_id = :budget_id AND period_start = :period_start
"""


MONTH_SPEND = """
SELECT coalesce(sum(cost_credits), 0) FROM video_items
WHERE inference_provider <> 'wan_local' AND finished_at >= :month_start
"""


UNSETTLED = """
SELECT inference_provider, duration_s, frame_num, count(*) FROM video_items
WHERE status IN ('pending', 'processing') AND inference_provider <> 'wan_local'
GROUP BY inference_provider, duration_s, frame_num
"""
