"""The outbox's SQL: the claim's `item.started` event, fan-out, due deliveries."""

# The claim writes its `item.started` in the same statement on PostgreSQL (a data-modifying
# CTE): the claim stays one round trip.
STARTED_CTE = """
WITH claimed AS ({claim}),
started AS (
    INSERT INTO item_events (item_id, group_id, type, status, provider, attempt, created_at,
                             fanned_out)
    SELECT id, group_id, 'item.started', 'processing', CAST(inference_provider AS VARCHAR),
           retry_count, :now, false
    FROM claimed
)
SELECT * FROM claimed
"""


STARTED_ROW = """
INSERT INTO item_events (item_id, group_id, type, status, provider, attempt, created_at,
                         fanned_out)
VALUES (:item_id, :group_id, 'item.started', 'processing', :provider, :attempt, :now, false)
"""


NEW_EVENTS = """
SELECT e.id, e.item_id, e.type, g.webhook_endpoint_id AS group_endpoint,
       v.webhook_endpoint_id AS item_endpoint, v.shadow_of IS NOT NULL AS sample
FROM item_events AS e
LEFT JOIN video_items AS v ON v.id = e.item_id
LEFT JOIN groups AS g ON g.id = e.group_id
WHERE NOT e.fanned_out
ORDER BY e.id
LIMIT :limit
"""


# The due deliveries of enabled endpoints that are first in line for their item and endpoint,
# at most :per_endpoint of each endpoint (oldest first), so that no endpoint's backlog (a
# receiver that never answers, with thousands due) hides another's rows from the window.
# PostgreSQL walks each enabled endpoint's due rows in order (ix_webhook_deliveries_endpoint_due,
# then ix_webhook_deliveries_order for the earlier ones) and stops at :per_endpoint of them.
DUE_POSTGRESQL = """
SELECT due.id FROM webhook_endpoints AS endpoint
CROSS JOIN LATERAL (
    SELECT d.id, d.next_attempt_at FROM webhook_deliveries AS d
    WHERE d.endpoint_id = endpoint.id AND d.status = 'pending' AND d.next_attempt_at <= :now
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries AS earlier
          WHERE earlier.endpoint_id = d.endpoint_id AND earlier.item_id = d.item_id
            AND earlier.event_id < d.event_id AND earlier.status = 'pending'
      )
    ORDER BY d.next_attempt_at, d.id
    LIMIT :per_endpoint
) AS due
WHERE endpoint.enabled
ORDER BY due.next_attempt_at, due.id
LIMIT :limit
"""

# The same on SQLite (no LATERAL): each endpoint's due rows ranked, the first :per_endpoint kept.
DUE_SQLITE = """
SELECT id FROM (
    SELECT d.id, d.next_attempt_at,
           ROW_NUMBER() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS place
    FROM webhook_deliveries AS d
    JOIN webhook_endpoints AS endpoint ON endpoint.id = d.endpoint_id AND endpoint.enabled
    WHERE d.status = 'pending' AND d.next_attempt_at <= :now
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries AS earlier
          WHERE earlier.endpoint_id = d.endpoint_id AND earlier.item_id = d.item_id
            AND earlier.event_id < d.event_id AND earlier.status = 'pending'
      )
) AS ranked
WHERE place <= :per_endpoint
ORDER BY next_attempt_at, id
LIMIT :limit
"""
