"""Run the Alembic migrations of `models/store/migrations` against a database URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from reelroute.models.store.db import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: sa.Connection) -> Config:
    """An Alembic configuration that migrates over `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _migrate(url: str, action: Callable[[Config], None]) -> None:
    # SQLite migrations rebuild tables (copy, drop, rename), which foreign keys would refuse
    # mid-way; they run with the keys off and the result is checked before it is committed.
    engine = make_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            action(alembic_config(connection))
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
            connection.commit()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (the newest by default)."""
    _migrate(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` back to `revision` ("base" removes everything)."""
    _migrate(url, lambda config: command.downgrade(config, revision))


def head_revision() -> str:
    """The newest revision of the migrations (what `upgrade` brings a database to)."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
