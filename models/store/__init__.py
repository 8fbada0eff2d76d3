"""Where things are kept: database engines and sessions (errors translated), typed SQL and the
named queries that matter, the count ledger, the file store for photos and videos, and the
Alembic migrations. It knows tables, not rules: what an item may do is `items`' business."""
