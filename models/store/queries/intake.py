"""Intake's SQL: taking an Idempotency-Key (and taking back an expired one)."""

CLAIM_KEY = """
INSERT INTO idempotency_keys (key, scope, request_hash, created_at, expires_at)
VALUES (:key, :scope, :request_hash, :now, :expires_at)
ON CONFLICT (key) DO NOTHING
"""

DROP_EXPIRED_KEY = """
DELETE FROM idempotency_keys WHERE key = :key AND expires_at <= :now
"""
