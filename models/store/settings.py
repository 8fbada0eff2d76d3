"""The store's settings group: where items, photos and videos are kept.

The composed `Settings` is `reelroute.models.assembly.settings`; this room reads only the groups of
its config Protocol below (or what it is handed).
"""

from __future__ import annotations

from typing import Protocol

from pydantic import field_validator

from reelroute.models.core.settings import (
    Group,
    SharedConfig,
    setting,
)


class StoreSettings(Group):
    """Where items, photos and videos are kept."""

    database_url: str = setting(
        "sqlite:///data/reelroute.db",
        env="DATABASE_URL",
        description="SQLAlchemy URL of the item database (postgresql+psycopg://… in production).",
    )
    storage_url: str = setting(
        "data/storage",
        env="STORAGE_URL",
        description="fsspec URL or local folder for photos and videos (s3://bucket/… with s3fs).",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql") and not value.startswith("postgresql+psycopg://"):
            raise ValueError("PostgreSQL URLs must use psycopg 3: postgresql+psycopg://…")
        return value


class StoreConfig(SharedConfig, Protocol):
    """The settings a function that needs the store's group is typed with."""

    @property
    def store(self) -> StoreSettings: ...
