"""The one settings object of reelroute: read from the environment and `.env`, checked at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.enums import InferenceProvider

ENV_PREFIX = "REELROUTE_"


class SettingsError(RuntimeError):
    """A setting has an invalid value; the message names the environment variable."""


class Settings(BaseSettings):
    """Every knob of reelroute; each field is the environment variable `REELROUTE_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///data/reelroute.db",
        description="SQLAlchemy URL of the item database (postgresql+psycopg://… in production).",
    )
    storage_url: str = Field(
        default="data/storage",
        description="fsspec URL or local folder for photos and videos (s3://bucket/… with s3fs).",
    )
    default_provider: InferenceProvider = Field(
        default=InferenceProvider.runway_gen4_turbo,
        description="Provider of items with no explicit choice and no group rule.",
    )
    wan_fallback_threshold: int = Field(
        default=50,
        ge=0,
        description="Default-routed Wan items go to Gen-4 Turbo while more than this wait.",
    )
    lease_seconds: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="Lease of a claimed item; the holder renews it every third of this.",
    )
    max_attempts: int = Field(
        default=3, ge=1, le=20, description="Claims per item before it fails."
    )
    retry_backoff_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Wait before the 2nd attempt after a transient error; doubles each time.",
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest accepted photo file."
    )
    max_image_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="Largest accepted photo in pixels (guards against decompression bombs).",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the admin API and login of the admin pages."
    )
    worker_token: SecretStr | None = Field(
        default=None, description="Bearer token of the pull-worker API."
    )
    sandbox: bool = Field(
        default=False,
        description="Run Runway against the bundled emulator and Wan with a tiny random model.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql") and not value.startswith("postgresql+psycopg://"):
            raise ValueError("PostgreSQL URLs must use psycopg 3: postgresql+psycopg://…")
        return value

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL (None for PostgreSQL or in-memory SQLite)."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix) or self.database_url == "sqlite://":
            return None
        path = self.database_url[len(prefix) :].split("?", 1)[0]
        return Path(path) if path and path != ":memory:" else None


def load_settings(**overrides: object) -> Settings:
    """Read the settings; an invalid value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = ENV_PREFIX + "_".join(str(part) for part in item["loc"]).upper()
            shown = "" if "TOKEN" in name else f" (got {item.get('input')!r})"
            problems.append(f"{name}: {item['msg']}{shown}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
