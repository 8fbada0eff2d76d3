"""The count ledger's SQL (models.store.ledger): its sums, and folding it back."""

# The sums of the count ledger, whatever the size of video_items.
COUNTS = """
SELECT inference_provider, status, sum(items) AS items, sum(credits) AS credits,
       count(*) AS ledger_rows
FROM item_status_counts
GROUP BY inference_provider, status
"""


# Fold the ledger to one row per (provider, status). The CTE deletes and re-adds the same rows in
# one snapshot, so rows that concurrent transactions add meanwhile are kept as they are.
COMPACT_COUNTS_PG = """
WITH folded AS (
    DELETE FROM item_status_counts
    RETURNING inference_provider, status, items, credits
)
INSERT INTO item_status_counts (inference_provider, status, items, credits)
SELECT inference_provider, status, sum(items), sum(credits)
FROM folded
GROUP BY inference_provider, status
HAVING sum(items) <> 0 OR sum(credits) <> 0
"""


# SQLite has one writer at a time: delete (returning the rows) and re-insert their sums.
COMPACT_COUNTS_DELETE_SQLITE = (
    "DELETE FROM item_status_counts RETURNING inference_provider, status, items, credits"
)
INSERT_COUNT = """
INSERT INTO item_status_counts (inference_provider, status, items, credits)
VALUES (:provider, :status, :items, :credits)
"""
