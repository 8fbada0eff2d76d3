"""Reporting's SQL: the queues' heads, the outbox's head."""

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
