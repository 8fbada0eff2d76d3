"""The one settings object of reelroute: read from the environment and `.env`, checked at start."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from reelroute.models.enums import GroupPriority, InferenceProvider, Pool

ENV_PREFIX = "REELROUTE_"


MIN_TOKEN_CHARS = 32


class SettingsError(RuntimeError):
    """A setting has an invalid value; the message names the environment variable."""


class Settings(BaseSettings):
    """Every knob of reelroute; each field is the environment variable `REELROUTE_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,  # `REELROUTE_WAN_FPS=` means unset (the model's own)
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
    routing_policy: str = Field(
        default="deadline",
        description="deadline (cheapest provider predicted on time) or threshold (the seed's "
        "rules: group priority, default provider, Wan fallback on a queue length).",
    )
    deadline_urgent_seconds: int = Field(
        default=20 * 60, ge=60, description="Time-to-video target of urgent groups."
    )
    deadline_normal_seconds: int = Field(
        default=4 * 3600, ge=60, description="Time-to-video target of normal groups."
    )
    deadline_high_quality_seconds: int = Field(
        default=3 * 3600, ge=60, description="Time-to-video target of high-quality groups."
    )
    eta_refresh_seconds: float = Field(
        default=10.0, gt=0, description="How often the dispatcher replays the queues for ETAs."
    )
    runway_limits_refresh_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often Runway's limits and balance are read (organization.retrieve()).",
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
        default=None,
        description="Bearer token of the admin API and login of the admin pages (32 characters "
        "or more).",
    )
    worker_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the pull-worker API (32 characters or more, not the admin's).",
    )
    max_json_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body of a JSON route (refused by its Content-Length before "
        "it is read).",
    )
    max_video_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        description="Largest video a pull worker may upload (streamed to disk, never held whole).",
    )
    webhook_signing_key: SecretStr | None = Field(
        default=None,
        description="Key every webhook endpoint's signing secret is derived from (32 characters "
        "or more); unset: no webhooks.",
    )
    webhook_url: str | None = Field(
        default=None, description="An endpoint every item's events go to (registered at start)."
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks go to loopback and private addresses, and over plain http.",
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="A receiver answers within this, or the try fails."
    )
    webhook_retry_hours: float = Field(
        default=24.0, gt=0, description="A delivery is retried this long, then dead-lettered."
    )
    public_url: str | None = Field(
        default=None,
        description="This web app's address as callers reach it (for video links in events).",
    )
    idempotency_hours: float = Field(
        default=24.0, ge=1, description="How long an Idempotency-Key's first answer is kept."
    )
    auth_free_failures: int = Field(
        default=5,
        ge=1,
        description="Failed logins or bearer checks per client address before it must wait.",
    )
    auth_max_wait_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest wait imposed on a client address that keeps failing (it doubles).",
    )

    sandbox: bool | None = Field(
        default=None,
        description="Runway through the bundled emulator, Wan with a tiny random model (offline); "
        "unset: `reelroute up` turns it on when a Runway key or Wan weights are missing.",
    )
    runway_api_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REELROUTE_RUNWAY_API_SECRET", "RUNWAYML_API_SECRET"),
        description="Runway API key (RUNWAYML_API_SECRET, as the SDK documents, also works).",
    )
    runway_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REELROUTE_RUNWAY_BASE_URL", "RUNWAYML_BASE_URL"),
        description="Runway API address; unset means the SDK's default (RUNWAYML_BASE_URL works).",
    )
    runway_poll_seconds: float = Field(
        default=5.0, gt=0, description="Seconds between polls of a Runway task (Runway asks ≥ 5)."
    )
    runway_task_timeout_seconds: float = Field(
        default=1800.0, gt=0, description="Give up on a Runway task that is not done after this."
    )
    runway_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Give up on one request to Runway (or one download) after this.",
    )
    runway_max_retries: int = Field(
        default=2, ge=0, le=10, description="The SDK's own retries of 429, 5xx and timeouts."
    )
    wan_model: str = Field(
        default="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        description="Wan weights: a local folder or a Hugging Face id already in the local cache.",
    )
    wan_device: str = Field(default="auto", description="auto (CUDA when present), cuda, cpu.")
    wan_dtype: str = Field(
        default="auto", description="auto (bfloat16 on CUDA, float32 on CPU), bfloat16, float16."
    )
    wan_offload: bool = Field(default=False, description="Model CPU offload (less GPU memory).")
    wan_vae_tiling: bool = Field(default=False, description="Tiled VAE decode (less GPU memory).")
    wan_max_area: int | None = Field(
        default=None,
        ge=256,
        description="Largest output area in pixels (unset: the model's, 5B 1280x704, 2.1 and "
        "A14B 832x480).",
    )
    wan_fps: float | None = Field(
        default=None, gt=0, description="Frames per second (unset: the model's, 5B 24, else 16)."
    )
    wan_frames: int | None = Field(
        default=None, ge=5, description="Default frame count, 4k+1 (unset: 5B 121, else 81)."
    )
    wan_steps: int | None = Field(
        default=None, ge=1, le=200, description="Denoising steps (unset: 5B 50, else 40)."
    )
    wan_guidance_scale: float | None = Field(
        default=None, ge=0, description="Classifier-free guidance (unset: 5.0, A14B 3.5)."
    )
    wan_guidance_scale_2: float | None = Field(
        default=None, ge=0, description="A14B: the low-noise expert's guidance (unset: 3.5)."
    )
    sandbox_wan_step_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Sandbox mode only: GPU time the tiny pipeline pretends to take per "
        "denoising step of a 121-frame video (in proportion for other lengths).",
    )
    wan_resident: bool = Field(
        default=True,
        description="Keep the pipeline loaded in one process per GPU that serves the flow runs "
        "(false: each flow run loads it in its own process).",
    )
    wan_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Sockets of this host's pipeline processes (set by `reelroute worker --pool "
        "gpu` for its flow runs).",
    )
    wan_wait_seconds: float = Field(
        default=900.0,
        gt=0,
        description="How long a flow run waits for a free pipeline process (one that is loading "
        "or busy) before its attempt fails transiently.",
    )

    gpu_slots: int = Field(
        default=1, ge=1, description="Concurrency of the gpu pool: the number of GPUs in it."
    )
    cloud_slots: int = Field(
        default=5, ge=1, description="Concurrency of the cloud pool: your Runway tier's limit."
    )
    dispatch_lookahead: int = Field(
        default=1,
        ge=0,
        description="Flow runs made per pool beyond its free slots, so a worker never waits.",
    )
    dispatch_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often the dispatcher feeds Prefect."
    )
    reconcile_interval_seconds: float = Field(
        default=15.0, gt=0, description="How often leases, crashed runs and cancels are checked."
    )
    run_start_timeout_seconds: float = Field(
        default=180.0,
        gt=0,
        description="A flow run that started (Pending or Running) this long ago without holding "
        "its item is crashed by the reconciler, freeing its pool slot.",
    )
    prefect_database_url: str | None = Field(
        default=None,
        description="Database of the Prefect server `reelroute up` runs: a PostgreSQL URL "
        "(postgresql://…); unset: SQLite under data/prefect.",
    )
    prefect_port: int = Field(
        default=4200, ge=1, le=65535, description="Port of the Prefect server `reelroute up` runs."
    )
    emulator_port: int = Field(
        default=8181, ge=1, le=65535, description="Port of the Runway emulator in sandbox mode."
    )

    @field_validator(
        "admin_token",
        "worker_token",
        "runway_api_secret",
        "runway_base_url",
        "sandbox",
        "prefect_database_url",
        "webhook_signing_key",
        "webhook_url",
        "public_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("admin_token", "worker_token", "webhook_signing_key")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"a token needs {MIN_TOKEN_CHARS} characters or more; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @model_validator(mode="after")
    def _distinct_tokens(self) -> Settings:
        admin, worker = self.admin_token, self.worker_token
        if (
            admin is not None
            and worker is not None
            and admin.get_secret_value() == worker.get_secret_value()
        ):
            raise ValueError(
                "REELROUTE_ADMIN_TOKEN and REELROUTE_WORKER_TOKEN are equal: a worker would "
                "hold admin rights; give each its own token"
            )
        return self

    @field_validator("routing_policy")
    @classmethod
    def _routing_policy(cls, value: str) -> str:
        if value not in {"deadline", "threshold"}:
            raise ValueError("use deadline or threshold")
        return value

    @field_validator("wan_servers", mode="before")
    @classmethod
    def _wan_servers(cls, value: object) -> object:
        if isinstance(value, str):  # REELROUTE_WAN_SERVERS=/run/a.sock,/run/b.sock
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("wan_frames")
    @classmethod
    def _wan_frames(cls, value: int | None) -> int | None:
        if value is not None and value % 4 != 1:
            raise ValueError("Wan needs 4k+1 frames (e.g. 81 or 121)")
        return value

    @field_validator("wan_device")
    @classmethod
    def _wan_device(cls, value: str) -> str:
        if value != "auto" and not value.startswith(("cuda", "cpu")):
            raise ValueError("use auto, cpu, cuda or cuda:N")
        return value

    @field_validator("wan_dtype")
    @classmethod
    def _wan_dtype(cls, value: str) -> str:
        if value not in {"auto", "bfloat16", "float16", "float32"}:
            raise ValueError("use auto, bfloat16, float16 or float32")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql") and not value.startswith("postgresql+psycopg://"):
            raise ValueError("PostgreSQL URLs must use psycopg 3: postgresql+psycopg://…")
        return value

    @field_validator("prefect_database_url")
    @classmethod
    def _prefect_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("postgresql://", "postgresql+")):
            raise ValueError("must be a PostgreSQL URL (postgresql://user@host/db)")
        # Prefect's server talks to PostgreSQL through asyncpg.
        return "postgresql+asyncpg://" + value.split("://", 1)[1]

    def deadline_seconds(self, priority: GroupPriority) -> int:
        """The default time-to-video target of a group of `priority`."""
        return {
            GroupPriority.urgent: self.deadline_urgent_seconds,
            GroupPriority.normal: self.deadline_normal_seconds,
            GroupPriority.high_quality: self.deadline_high_quality_seconds,
        }[priority]

    def pool_slots(self, pool: Pool) -> int:
        """How many flow runs the pool runs at once (its Prefect concurrency limit)."""
        return self.gpu_slots if pool is Pool.gpu else self.cloud_slots


def load_settings(**overrides: object) -> Settings:
    """Read the settings; an invalid value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = "_".join(str(part) for part in item["loc"]).upper()
            if not name:  # a rule over several settings: its message names them
                problems.append(item["msg"].removeprefix("Value error, "))
                continue
            if not name.startswith((ENV_PREFIX, "RUNWAYML_")):
                name = ENV_PREFIX + name
            problems.append(f"{name}: {item['msg']}{_shown(name, item.get('input'))}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None


SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD")


def _shown(name: str, value: object) -> str:
    """What an error may show of a rejected value: nothing of a secret, a URL without its
    password."""
    if any(word in name for word in SECRET_WORDS) or isinstance(value, dict):
        return ""
    text = str(value)
    if "URL" in name:
        text = re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", text)
    return f" (got {text!r})"


def settings_from_environment(environment: Mapping[str, str]) -> Settings:
    """The settings a process started with `environment` would read (its REELROUTE_ variables
    only, no `.env`): for launchers that build a child's environment and need the same values."""
    return load_settings(
        _env_file=None,
        **{
            name.removeprefix(ENV_PREFIX).lower(): value
            for name, value in environment.items()
            if name.startswith(ENV_PREFIX)
        },
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
