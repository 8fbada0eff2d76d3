"""Alembic environment: migrates the database of the connection handed over by
models.store.migrate."""

from __future__ import annotations

from alembic import context

from reelroute.models.assembly import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `reelroute migrate` (models.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
