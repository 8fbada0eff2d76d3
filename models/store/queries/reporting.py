"""Reporting's SQL: late risks and moves per provider."""

LATE_AND_MOVES = """
SELECT CAST(v.inference_provider AS VARCHAR(32)) AS provider, 'late' AS what, count(*)
FROM item_etas AS e JOIN video_items AS v ON v.id = e.item_id
WHERE e.late_risk AND v.status = 'pending'
GROUP BY v.inference_provider
UNION ALL
SELECT from_provider, 'away', count(*) FROM item_reroutes GROUP BY from_provider
UNION ALL
SELECT to_provider, 'here', count(*) FROM item_reroutes GROUP BY to_provider
"""


# The head of one pool's queue, through its claim index (ix_video_items_claim_gpu / _cloud):
# {pending} and {pool} spell the index's predicate.
QUEUE_HEAD = """
SELECT due_at, created_at FROM video_items
WHERE {pending} AND {pool}
ORDER BY due_at, created_at
LIMIT 1
"""


# The oldest event not yet turned into webhook deliveries (ix_item_events_not_fanned_out).
OUTBOX_HEAD = """
SELECT created_at FROM item_events WHERE NOT fanned_out ORDER BY id LIMIT 1
"""
