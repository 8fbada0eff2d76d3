"""The one settings object of reelroute: read from the environment and `.env`, checked at start.

The settings are grouped by concern (`settings.wan.steps`, `settings.runway.poll_seconds`, …);
each still comes from the environment variable it always had (`REELROUTE_WAN_STEPS`,
`REELROUTE_RUNWAY_POLL_SECONDS`): every field names its variable (`env`), and `GroupedSource`
reads the flat variables into the groups. `load_settings(wan_steps=3)` and
`settings.replaced(wan_steps=3)` take the same flat names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic.types import JsonValue
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources import EnvSettingsSource

from reelroute.models.core.enums import GroupPriority, InferenceProvider, Pool, QualityAction
from reelroute.models.core.networks import IPNetwork, parse_networks

ENV_PREFIX = "REELROUTE_"
MIN_TOKEN_CHARS = 32


class SettingsError(RuntimeError):
    """A setting has an invalid value; the message names the environment variable."""


def setting(default: Any = ..., *, env: str | tuple[str, ...], **field: Any) -> Any:
    """A field read from `REELROUTE_<env>` (an `env` given as `=NAME` is read as NAME itself,
    without the prefix; several names: the first set wins)."""
    names = (env,) if isinstance(env, str) else env
    variables: list[JsonValue] = [n[1:] if n.startswith("=") else ENV_PREFIX + n for n in names]
    extra: JsonDict = {"env": variables}
    if "default_factory" in field:
        return Field(json_schema_extra=extra, **field)
    return Field(default, json_schema_extra=extra, **field)


def _empty_is_unset(value: object) -> object:
    return None if value == "" else value


def _long_token(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"a token needs {MIN_TOKEN_CHARS} characters or more; make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return value


class Group(BaseModel):
    """A group of settings (the fields say their environment variables)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


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


class RoutingSettings(Group):
    """Who makes an auto-routed item, and by when it is due."""

    default_provider: InferenceProvider = setting(
        InferenceProvider.runway_gen4_turbo,
        env="DEFAULT_PROVIDER",
        description="Provider of items with no explicit choice and no group rule.",
    )
    policy: str = setting(
        "deadline",
        env="ROUTING_POLICY",
        description="deadline (cheapest provider predicted on time) or threshold (the seed's "
        "rules: group priority, default provider, Wan fallback on a queue length).",
    )
    deadline_urgent_seconds: int = setting(
        20 * 60, env="DEADLINE_URGENT_SECONDS", ge=60, description="Target of urgent groups."
    )
    deadline_normal_seconds: int = setting(
        4 * 3600, env="DEADLINE_NORMAL_SECONDS", ge=60, description="Target of normal groups."
    )
    deadline_high_quality_seconds: int = setting(
        3 * 3600,
        env="DEADLINE_HIGH_QUALITY_SECONDS",
        ge=60,
        description="Time-to-video target of high-quality groups.",
    )
    eta_refresh_seconds: float = setting(
        10.0,
        env="ETA_REFRESH_SECONDS",
        gt=0,
        description="How often the dispatcher replays the queues for ETAs.",
    )
    wan_fallback_threshold: int = setting(
        50,
        env="WAN_FALLBACK_THRESHOLD",
        ge=0,
        description="Default-routed Wan items go to Gen-4 Turbo while more than this wait.",
    )
    count_redos: bool = setting(
        True,
        env="ROUTING_COUNT_REDOS",
        description="The deadline policy weighs each option by its expected cost and finish, "
        "counting the chance that its video is made again (docs/routing.md).",
    )

    @field_validator("policy")
    @classmethod
    def _routing_policy(cls, value: str) -> str:
        if value not in {"deadline", "threshold"}:
            raise ValueError("use deadline or threshold")
        return value

    def deadline_seconds(self, priority: GroupPriority) -> int:
        """The default time-to-video target of a group of `priority`."""
        return {
            GroupPriority.urgent: self.deadline_urgent_seconds,
            GroupPriority.normal: self.deadline_normal_seconds,
            GroupPriority.high_quality: self.deadline_high_quality_seconds,
        }[priority]


class ItemSettings(Group):
    """Leases, attempts and retries of items."""

    lease_seconds: int = setting(
        300,
        env="LEASE_SECONDS",
        ge=10,
        le=86_400,
        description="Lease of a claimed item; the holder renews it every third of this.",
    )
    max_attempts: int = setting(
        3,
        env="MAX_ATTEMPTS",
        ge=1,
        le=20,
        description="Attempts per item before it fails, counting only the failures the item "
        "could have caused (docs/reliability.md).",
    )
    max_spared_attempts: int = setting(
        12,
        env="MAX_SPARED_ATTEMPTS",
        ge=1,
        le=1000,
        description="Attempts an outage may end (a provider's, a GPU host's, ours) before the "
        "item fails anyway, with its reason.",
    )
    retry_backoff_seconds: float = setting(
        30.0,
        env="RETRY_BACKOFF_SECONDS",
        ge=0,
        description="Wait before the 2nd attempt after a transient error; doubles each time.",
    )
    run_start_timeout_seconds: float = setting(
        180.0,
        env="RUN_START_TIMEOUT_SECONDS",
        gt=0,
        description="A flow run that started (Pending or Running) this long ago without holding "
        "its item is crashed by the reconciler, freeing its pool slot.",
    )


class ApiSettings(Group):
    """The web app: tokens, body limits, login throttling, idempotency."""

    admin_token: SecretStr | None = setting(
        None,
        env="ADMIN_TOKEN",
        description="Bearer token of the admin API and login of the admin pages (32 characters "
        "or more).",
    )
    worker_token: SecretStr | None = setting(
        None,
        env="WORKER_TOKEN",
        description="Bearer token of the pull-worker API (32 characters or more, not the admin's).",
    )
    metrics_token: SecretStr | None = setting(
        None,
        env="METRICS_TOKEN",
        description="Bearer token of GET /metrics, read-only (32 characters or more, its own). "
        "Without it and without REELROUTE_METRICS_LOOPBACK, /metrics is off.",
    )
    metrics_loopback: bool = setting(
        False,
        env="METRICS_LOOPBACK",
        description="Answer GET /metrics without a token to callers on this host's loopback "
        "address (a Prometheus beside the web app).",
    )
    max_upload_bytes: int = setting(
        20 * 1024 * 1024, env="MAX_UPLOAD_BYTES", ge=1024, description="Largest photo file."
    )
    max_image_pixels: int = setting(
        50_000_000,
        env="MAX_IMAGE_PIXELS",
        ge=1,
        description="Largest accepted photo in pixels (guards against decompression bombs).",
    )
    photo_max_side: int = setting(
        2048,
        env="PHOTO_MAX_SIDE",
        ge=256,
        le=8192,
        description="A photo is stored (and sent to every provider) at most this many pixels "
        "on its long side: Wan uses 1280, Runway's models 1920 at most.",
    )
    max_json_bytes: int = setting(
        1024 * 1024,
        env="MAX_JSON_BYTES",
        ge=1024,
        description="Largest request body of a JSON route (refused by its Content-Length before "
        "it is read).",
    )
    max_video_bytes: int = setting(
        512 * 1024 * 1024,
        env="MAX_VIDEO_BYTES",
        ge=1024,
        description="Largest video a pull worker may upload (streamed to disk, never held whole).",
    )
    public_url: str | None = setting(
        None,
        env="PUBLIC_URL",
        description="This web app's address as callers reach it (for video links in events).",
    )
    allowed_origins: Annotated[list[str], NoDecode] = setting(
        env="ALLOWED_ORIGINS",
        default_factory=list,
        description="Other sites (origins such as https://app.example.com, comma-separated) whose "
        "pages may call this app from a browser (CORS). Empty: none; the admin pages are never "
        "open to another site, whatever is listed.",
    )
    idempotency_hours: float = setting(
        24.0,
        env="IDEMPOTENCY_HOURS",
        ge=1,
        description="How long an Idempotency-Key's first answer is kept.",
    )
    sse_max_streams: int = setting(
        100,
        env="SSE_MAX_STREAMS",
        ge=1,
        description="Open event streams (GET /api/admin/events) per web process; one more is "
        "answered 503.",
    )
    auth_free_failures: int = setting(
        5,
        env="AUTH_FREE_FAILURES",
        ge=1,
        description="Failed logins or bearer checks per client address before it must wait.",
    )
    auth_max_wait_seconds: float = setting(
        300.0,
        env="AUTH_MAX_WAIT_SECONDS",
        gt=0,
        description="Longest wait imposed on a client address that keeps failing (it doubles).",
    )

    _empty = field_validator(
        "admin_token", "worker_token", "metrics_token", "public_url", mode="before"
    )(_empty_is_unset)
    _long = field_validator("admin_token", "worker_token", "metrics_token")(_long_token)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _checked_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
                raise ValueError(
                    f"{origin!r} is not an origin; give scheme://host[:port] with no path, "
                    "e.g. https://app.example.com"
                )
        return [origin.lower() for origin in value]

    @model_validator(mode="after")
    def _distinct_tokens(self) -> Self:
        tokens = [
            ("REELROUTE_ADMIN_TOKEN", self.admin_token),
            ("REELROUTE_WORKER_TOKEN", self.worker_token),
            ("REELROUTE_METRICS_TOKEN", self.metrics_token),
        ]
        for index, (name, token) in enumerate(tokens):
            for other, second in tokens[index + 1 :]:
                if (
                    token is not None
                    and second is not None
                    and token.get_secret_value() == second.get_secret_value()
                ):
                    raise ValueError(
                        f"{name} and {other} are equal: one would hold the other's rights; "
                        "give each its own token"
                    )
        return self


class WebhookSettings(Group):
    """Signed webhooks to the receivers of item events."""

    signing_key: SecretStr | None = setting(
        None,
        env="WEBHOOK_SIGNING_KEY",
        description="Key every webhook endpoint's signing secret is derived from (32 characters "
        "or more); unset: no webhooks.",
    )
    url: str | None = setting(
        None,
        env="WEBHOOK_URL",
        description="An endpoint every item's events go to (registered at start).",
    )
    allow_networks: Annotated[list[str], NoDecode] = setting(
        env="WEBHOOK_ALLOW_NETWORKS",
        default_factory=list,
        description="Networks (CIDRs, comma-separated) webhooks may go to although they are not "
        "public, also over plain http: e.g. 127.0.0.0/8 for a receiver on this host. A cloud "
        "metadata range (169.254.0.0/16) is refused.",
    )
    timeout_seconds: float = setting(
        5.0,
        env="WEBHOOK_TIMEOUT_SECONDS",
        gt=0,
        le=60,
        description="A receiver answers within this, or the try fails.",
    )
    retry_hours: float = setting(
        24.0,
        env="WEBHOOK_RETRY_HOURS",
        gt=0,
        description="A delivery is retried this long, then dead-lettered.",
    )

    _empty = field_validator("signing_key", "url", mode="before")(_empty_is_unset)
    _long = field_validator("signing_key")(_long_token)

    @field_validator("allow_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allow_networks")
    @classmethod
    def _checked_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # ValueError names a bad one or a metadata range
        return value

    def networks(self) -> list[IPNetwork]:
        """The allow-listed networks."""
        return parse_networks(self.allow_networks)


class RunwaySettings(Group):
    """Runway's API through the `runwayml` SDK."""

    api_secret: SecretStr | None = setting(
        None,
        env=("RUNWAY_API_SECRET", "=RUNWAYML_API_SECRET"),
        description="Runway API key (RUNWAYML_API_SECRET, as the SDK documents, also works).",
    )
    base_url: str | None = setting(
        None,
        env=("RUNWAY_BASE_URL", "=RUNWAYML_BASE_URL"),
        description="Runway API address; unset means the SDK's default (RUNWAYML_BASE_URL works).",
    )
    poll_seconds: float = setting(
        5.0,
        env="RUNWAY_POLL_SECONDS",
        gt=0,
        description="Seconds between polls of a Runway task (Runway asks ≥ 5).",
    )
    task_timeout_seconds: float = setting(
        1800.0,
        env="RUNWAY_TASK_TIMEOUT_SECONDS",
        gt=0,
        description="Give up on a Runway task that is not done after this.",
    )
    timeout_seconds: float = setting(
        60.0,
        env="RUNWAY_TIMEOUT_SECONDS",
        gt=0,
        description="Give up on one request to Runway (or one download) after this.",
    )
    max_retries: int = setting(
        2,
        env="RUNWAY_MAX_RETRIES",
        ge=0,
        le=10,
        description="The SDK's own retries of 429, 5xx and timeouts.",
    )
    limits_refresh_seconds: float = setting(
        300.0,
        env="RUNWAY_LIMITS_REFRESH_SECONDS",
        gt=0,
        description="How often Runway's limits and balance are read (organization.retrieve()).",
    )

    _empty = field_validator("api_secret", "base_url", mode="before")(_empty_is_unset)


class WanSettings(Group):
    """Wan on our GPUs: the weights, how the pipeline is loaded and run, the GPU host."""

    model: str = setting(
        "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        env="WAN_MODEL",
        description="Wan weights: a local folder or a Hugging Face id already in the local cache.",
    )
    device: str = setting(
        "auto", env="WAN_DEVICE", description="auto (CUDA when present), cuda, cpu."
    )
    dtype: str = setting(
        "auto",
        env="WAN_DTYPE",
        description="auto (bfloat16 on CUDA, float32 on CPU), bfloat16, float16.",
    )
    offload: bool = setting(False, env="WAN_OFFLOAD", description="Model CPU offload.")
    vae_tiling: bool = setting(False, env="WAN_VAE_TILING", description="Tiled VAE decode.")
    max_area: int | None = setting(
        None,
        env="WAN_MAX_AREA",
        ge=256,
        description="Largest output area in pixels (unset: the model's, 5B 1280x704, 2.1 and "
        "A14B 832x480).",
    )
    fps: float | None = setting(
        None,
        env="WAN_FPS",
        gt=0,
        description="Frames per second (unset: the model's, 5B 24, else 16).",
    )
    frames: int | None = setting(
        None,
        env="WAN_FRAMES",
        ge=5,
        description="Default frame count, 4k+1 (unset: 5B 121, else 81).",
    )
    steps: int | None = setting(
        None,
        env="WAN_STEPS",
        ge=1,
        le=200,
        description="Denoising steps (unset: 5B 50, else 40).",
    )
    guidance_scale: float | None = setting(
        None,
        env="WAN_GUIDANCE_SCALE",
        ge=0,
        description="Classifier-free guidance (unset: 5.0, A14B 3.5).",
    )
    guidance_scale_2: float | None = setting(
        None,
        env="WAN_GUIDANCE_SCALE_2",
        ge=0,
        description="A14B: the low-noise expert's guidance (unset: 3.5).",
    )
    preset: str = setting(
        "full",
        env="WAN_PRESET",
        description="The preset the pipeline processes load with: full, fast, cached, "
        "compiled, fast-compiled, fast-fp8, fast-fp8-compute, fast-light, and the distilled "
        "families lightx2v (Wan2.1-I2V-14B), lightning (A14B), fastwan (TI2V-5B) "
        "(docs/operations.md; `reelroute worker --preset`).",
    )
    lora: str | None = setting(
        None,
        env="WAN_LORA",
        description="The distilled LoRA (.safetensors) the fast presets fuse.",
    )
    lora_2: str | None = setting(
        None,
        env="WAN_LORA_2",
        description="A14B: the LoRA of the second (low-noise) expert; unset: REELROUTE_WAN_LORA.",
    )
    checkpoint: str | None = setting(
        None,
        env="WAN_CHECKPOINT",
        description="A distilled transformer published whole (the fastwan preset): its local "
        "folder, diffusers layout (a pipeline folder, or its transformer/ folder).",
    )
    decoder: str | None = setting(
        None,
        env="WAN_DECODER",
        description="A light VAE decoder (the fast-light preset): a local diffusers "
        "AutoencoderKLWan folder with the model's latent layout.",
    )
    attention: str | None = setting(
        None,
        env="WAN_ATTENTION",
        description="An attention backend for every preset of this host (flash, _flash_3, sage, "
        "_native_cudnn, native, …); unset: the preset's (auto: the fastest this GPU has).",
    )
    compile_backend: str = setting(
        "inductor",
        env="WAN_COMPILE_BACKEND",
        description="torch.compile's backend for the compiled presets (inductor; aot_eager "
        "traces the same graphs without generating kernels, to check a model compiles).",
    )
    host: str | None = setting(
        None,
        env="WAN_HOST",
        description="This GPU host's name, recorded on the items it makes (set by `reelroute "
        "worker --pool gpu --name`; unset: the machine's host name).",
    )
    resident: bool = setting(
        True,
        env="WAN_RESIDENT",
        description="Keep the pipeline loaded in one process per GPU that serves the flow runs "
        "(false: each flow run loads it in its own process).",
    )
    servers: Annotated[list[str], NoDecode] = setting(
        env="WAN_SERVERS",
        default_factory=list,
        description="Sockets of this host's pipeline processes (set by `reelroute worker --pool "
        "gpu` for its flow runs).",
    )
    wait_seconds: float = setting(
        900.0,
        env="WAN_WAIT_SECONDS",
        gt=0,
        description="How long a flow run waits for a free pipeline process (one that is loading "
        "or busy) before its attempt fails transiently.",
    )

    _empty_wan = field_validator(
        "lora", "lora_2", "checkpoint", "decoder", "host", "attention", mode="before"
    )(_empty_is_unset)

    @field_validator("servers", mode="before")
    @classmethod
    def _servers(cls, value: object) -> object:
        if isinstance(value, str):  # REELROUTE_WAN_SERVERS=/run/a.sock,/run/b.sock
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("frames")
    @classmethod
    def _frames(cls, value: int | None) -> int | None:
        if value is not None and value % 4 != 1:
            raise ValueError("Wan needs 4k+1 frames (e.g. 81 or 121)")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value != "auto" and not value.startswith(("cuda", "cpu")):
            raise ValueError("use auto, cpu, cuda or cuda:N")
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str) -> str:
        if value not in {"auto", "bfloat16", "float16", "float32"}:
            raise ValueError("use auto, bfloat16, float16 or float32")
        return value


class DispatchSettings(Group):
    """The dispatcher and the reconciler: pools' slots and their loops' pace."""

    gpu_slots: int = setting(
        1, env="GPU_SLOTS", ge=1, description="Concurrency of the gpu pool: its GPUs."
    )
    cloud_slots: int = setting(
        5,
        env="CLOUD_SLOTS",
        ge=1,
        description="Concurrency of the cloud pool: your Runway tier's limit.",
    )
    lookahead: int = setting(
        1,
        env="DISPATCH_LOOKAHEAD",
        ge=0,
        description="Flow runs made per pool beyond its free slots, so a worker never waits.",
    )
    interval_seconds: float = setting(
        2.0, env="DISPATCH_INTERVAL_SECONDS", gt=0, description="How often Prefect is fed."
    )
    reconcile_interval_seconds: float = setting(
        15.0,
        env="RECONCILE_INTERVAL_SECONDS",
        gt=0,
        description="How often leases, crashed runs and cancels are checked.",
    )
    leader_poll_seconds: float = setting(
        2.0,
        env="LEADER_POLL_SECONDS",
        gt=0,
        le=10,
        description="PostgreSQL: how often the leader of the dispatcher (or of the webhook "
        "sender) checks its lock connection, and a standby tries to take over.",
    )
    leader_lease_seconds: float = setting(
        15.0,
        env="LEADER_LEASE_SECONDS",
        ge=5,
        le=300,
        description="PostgreSQL: a leader not heard of this long (its host gone, its network "
        "down) loses its lock to a standby; at least three polls.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_polls(self) -> Self:
        if self.leader_lease_seconds < 3 * self.leader_poll_seconds:
            raise ValueError(
                "REELROUTE_LEADER_LEASE_SECONDS must be at least three "
                "REELROUTE_LEADER_POLL_SECONDS (a live leader pings at every poll)"
            )
        return self

    def pool_slots(self, pool: Pool) -> int:
        """How many flow runs the pool runs at once (its Prefect concurrency limit)."""
        return self.gpu_slots if pool is Pool.gpu else self.cloud_slots


GPU_BILLING = ("always-on", "per-second")


def parse_gpu_prices(text: str) -> dict[str, float]:
    """`REELROUTE_GPU_HOUR_COST` as {GPU class key: dollars per hour}: `2.5` (every class),
    `h100=2.10,h200=3.20`, or both (`h100=2.10,*=1.80`: `*` is every class not named).
    ValueError says how to write it."""
    prices: dict[str, float] = {}
    how = "write dollars per GPU-hour: 2.5, or per GPU class: h100=2.10,h200=3.20 (* = the rest)"
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, equals, value = part.rpartition("=")
        key = key.strip().lower() if equals else "*"
        try:
            price = float(value)
        except ValueError:
            raise ValueError(f"{part!r} is not a price; {how}") from None
        if not key or price < 0 or price != price or price == float("inf"):
            raise ValueError(f"{part!r}: a class and a price of 0 or more; {how}")
        if key in prices:
            raise ValueError(f"{key!r} is priced twice; {how}")
        prices[key] = price
    return prices


class GpuSettings(Group):
    """What the GPU hosts cost (docs/routing.md, "What a video really costs")."""

    hour_cost: str = setting(
        "0",
        env="GPU_HOUR_COST",
        description="Dollars per GPU-hour: one price (2.5) or per GPU class "
        "(h100=2.10,h200=3.20; * for the rest). A class key matches a host's GPU class when the "
        "class names it (h100 matches 'NVIDIA H100 80GB HBM3'). 0: owned GPUs, no cost.",
    )
    billing: Literal["always-on", "per-second"] = setting(
        "always-on",
        env="GPU_BILLING",
        description="always-on: the hosts cost their hours whether busy or idle, a Wan video "
        "adds nothing (routing treats it as free); per-second: hosts bill only while making "
        "videos (serverless GPUs), so each Wan video costs its GPU seconds and routing "
        "weighs that against the paid models.",
    )

    @field_validator("hour_cost")
    @classmethod
    def _prices(cls, value: str) -> str:
        parse_gpu_prices(value)
        return value

    @property
    def prices(self) -> dict[str, float]:
        """Dollars per hour per GPU class key (`*`: every class not named)."""
        return parse_gpu_prices(self.hour_cost)


class HealthSettings(Group):
    """Circuit breakers per Runway model, GPU host and pool (docs/reliability.md)."""

    window_seconds: float = setting(
        300.0,
        env="BREAKER_WINDOW_SECONDS",
        gt=0,
        description="The sliding window whose failure rate opens a breaker.",
    )
    min_failures: int = setting(
        3,
        env="BREAKER_MIN_FAILURES",
        ge=1,
        description="Failures in the window before the rate can open a breaker.",
    )
    failure_rate: float = setting(
        0.5,
        env="BREAKER_FAILURE_RATE",
        gt=0,
        le=1,
        description="The share of failed attempts in the window that opens a breaker.",
    )
    cooldown_seconds: float = setting(
        60.0,
        env="BREAKER_COOLDOWN_SECONDS",
        gt=0,
        description="Wait before the first probe of an open breaker; doubles while probes fail.",
    )
    max_cooldown_seconds: float = setting(
        1800.0,
        env="BREAKER_MAX_COOLDOWN_SECONDS",
        gt=0,
        description="The longest wait between probes.",
    )
    exhausted_seconds: float = setting(
        3600.0,
        env="BREAKER_EXHAUSTED_SECONDS",
        gt=0,
        description="A model closed by a daily cap or the balance waits this long for its "
        "probe when Runway gives no Retry-After.",
    )
    runs_not_started: int = setting(
        5,
        env="BREAKER_RUNS_NOT_STARTED",
        ge=1,
        description="Flow runs of a pool in a row that never start before its breaker opens.",
    )


class QualitySettings(Group):
    """The automatic checks of every produced video (providers.quality), and what a failed one
    does; a group may choose its own action and thresholds (docs/quality.md)."""

    checks: bool = setting(
        True,
        env="QUALITY_CHECKS",
        description="Check every produced video before it counts as completed.",
    )
    action: QualityAction = setting(
        QualityAction.accept,
        env="QUALITY_ACTION",
        description="What a failed check does when the group chooses nothing: accept (record "
        "the scores only), review (hold the video for a person) or escalate (make it again on "
        "the group's next option; a paid video is held for review instead).",
    )
    min_luma_range: float = setting(
        24.0,
        env="QUALITY_MIN_LUMA_RANGE",
        ge=0,
        le=255,
        description="blank: the spread of brightness over the clip (1st to 99th percentile, "
        "0-255) at least this.",
    )
    min_motion: float = setting(
        0.3,
        env="QUALITY_MIN_MOTION",
        ge=0,
        le=255,
        description="frozen: the mean change between consecutive frames (0-255) at least this.",
    )
    max_flicker: float = setting(
        40.0,
        env="QUALITY_MAX_FLICKER",
        ge=0,
        le=255,
        description="flicker: no jump of mean brightness between frames (0-255) above this.",
    )
    min_first_frame_ssim: float = setting(
        0.5,
        env="QUALITY_MIN_FIRST_FRAME_SSIM",
        ge=-1,
        le=1,
        description="first_frame: the structural similarity of the first frame and the photo "
        "at least this (the image-to-video contract).",
    )

    prior_acceptance: float = setting(
        0.9,
        env="QUALITY_PRIOR_ACCEPTANCE",
        ge=0,
        le=1,
        description="Routing: the share of an option's videos taken to be kept before any is "
        "judged (each group's own count weighs in over it, models.planning.acceptance).",
    )
    prior_weight: float = setting(
        10.0,
        env="QUALITY_PRIOR_WEIGHT",
        ge=0,
        description="Routing: how many judged videos the prior acceptance is worth.",
    )
    max_wan_rejection: float = setting(
        0.5,
        env="QUALITY_MAX_WAN_REJECTION",
        ge=0,
        le=1,
        description="Routing: a group whose Wan videos are made again more often than this "
        "share goes to a paid option (once it has QUALITY_MIN_VERDICTS judged Wan videos).",
    )
    min_verdicts: int = setting(
        10,
        env="QUALITY_MIN_VERDICTS",
        ge=1,
        description="Routing: judged Wan videos of a group before QUALITY_MAX_WAN_REJECTION "
        "applies to it.",
    )

    def thresholds(self, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
        """The thresholds by name, a group's `overrides` over these settings."""
        found = {name: float(getattr(self, name)) for name in THRESHOLDS}
        for name, value in (overrides or {}).items():
            if name not in THRESHOLDS:
                raise ValueError(f"no threshold {name!r}; one of {', '.join(THRESHOLDS)}")
            found[name] = float(value)
        return found


THRESHOLDS = ("min_luma_range", "min_motion", "max_flicker", "min_first_frame_ssim")
"""The checks' thresholds a group may override (QualitySettings' fields of those names)."""


class LocalSettings(Group):
    """What `reelroute up` starts on one machine: sandbox mode, the Prefect server, the
    emulator; and how every process logs."""

    log_format: Literal["text", "json"] = setting(
        "text",
        env="LOG_FORMAT",
        description="`text`: a line per record; `json`: one JSON object per line with the "
        "item's context (item_id, attempt, provider, flow_run_id, worker_id) where known.",
    )

    sandbox: bool | None = setting(
        None,
        env="SANDBOX",
        description="Runway through the bundled emulator, Wan with a tiny random model "
        "(offline); unset: `reelroute up` turns it on when a Runway key or Wan weights are "
        "missing.",
    )
    sandbox_wan_step_seconds: float = setting(
        0.0,
        env="SANDBOX_WAN_STEP_SECONDS",
        ge=0,
        description="Sandbox mode only: GPU time the tiny pipeline pretends to take per "
        "denoising step of a 121-frame video (in proportion for other lengths).",
    )
    prefect_database_url: str | None = setting(
        None,
        env="PREFECT_DATABASE_URL",
        description="Database of the Prefect server `reelroute up` runs: a PostgreSQL URL "
        "(postgresql://…); unset: SQLite under data/prefect.",
    )
    prefect_port: int = setting(
        4200, env="PREFECT_PORT", ge=1, le=65535, description="Port of `up`'s Prefect server."
    )
    emulator_port: int = setting(
        8181, env="EMULATOR_PORT", ge=1, le=65535, description="Port of the Runway emulator."
    )

    _empty = field_validator("sandbox", "prefect_database_url", mode="before")(_empty_is_unset)

    @field_validator("prefect_database_url")
    @classmethod
    def _prefect_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("postgresql://", "postgresql+")):
            raise ValueError("must be a PostgreSQL URL (postgresql://user@host/db)")
        # Prefect's server talks to PostgreSQL through asyncpg.
        return "postgresql+asyncpg://" + value.split("://", 1)[1]


GROUPS: dict[str, type[Group]] = {
    "store": StoreSettings,
    "routing": RoutingSettings,
    "items": ItemSettings,
    "api": ApiSettings,
    "webhooks": WebhookSettings,
    "runway": RunwaySettings,
    "wan": WanSettings,
    "dispatch": DispatchSettings,
    "gpu": GpuSettings,
    "health": HealthSettings,
    "quality": QualitySettings,
    "local": LocalSettings,
}


def _env_names(field: FieldInfo) -> list[str]:
    extra = field.json_schema_extra
    assert isinstance(extra, dict), "every setting names its environment variable"
    names = extra["env"]
    assert isinstance(names, list)
    return [str(name) for name in names]


ENV_OF: dict[tuple[str, str], list[str]] = {
    (group, name): _env_names(field)
    for group, model in GROUPS.items()
    for name, field in model.model_fields.items()
}
"""(group, field) -> its environment variables, the first one the main one."""
FLAT: dict[str, tuple[str, str]] = {
    names[0].removeprefix(ENV_PREFIX).lower(): key for key, names in ENV_OF.items()
}
"""A setting's flat name (its variable without the prefix, lower case) -> (group, field)."""


def nested(flat: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """Values by flat name (`wan_steps=3`) as groups (`{"wan": {"steps": 3}}`)."""
    grouped: dict[str, dict[str, object]] = {}
    for name, value in flat.items():
        if name not in FLAT:
            raise SettingsError(f"no setting {ENV_PREFIX}{name.upper()}")
        group, field = FLAT[name]
        grouped.setdefault(group, {})[field] = value
    return grouped


RETIRED = {
    "REELROUTE_WEBHOOK_ALLOW_PRIVATE": "REELROUTE_WEBHOOK_ALLOW_PRIVATE is gone: list the "
    "networks webhooks may reach in REELROUTE_WEBHOOK_ALLOW_NETWORKS (e.g. 127.0.0.0/8)",
}
"""Variables that no longer exist, and what replaced them (a set one stops the start)."""


class GroupedSource(PydanticBaseSettingsSource):
    """The variables of `inner` (the environment, or `.env`) read into the groups."""

    def __init__(self, settings_cls: type[BaseSettings], inner: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: `__call__` reads every group at once."""
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        found: dict[str, dict[str, Any]] = {}
        variables = self.inner.env_vars
        for name, instead in RETIRED.items():
            if variables.get(name if self.inner.case_sensitive else name.lower()):
                raise SettingsError(f"invalid settings:\n  {instead}")
        for (group, field), names in ENV_OF.items():
            for name in names:
                value = variables.get(name if self.inner.case_sensitive else name.lower())
                if value is not None and value != "":  # `REELROUTE_WAN_FPS=` means unset
                    found.setdefault(group, {})[field] = value
                    break
        return found


class Settings(BaseSettings):
    """Every knob of reelroute, by concern; each field says its `REELROUTE_` variable."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    store: StoreSettings = Field(default_factory=StoreSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    items: ItemSettings = Field(default_factory=ItemSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    runway: RunwaySettings = Field(default_factory=RunwaySettings)
    wan: WanSettings = Field(default_factory=WanSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    gpu: GpuSettings = Field(default_factory=GpuSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    local: LocalSettings = Field(default_factory=LocalSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments first, then the environment, then `.env`, each read into the groups."""
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, EnvSettingsSource)
        return (
            init_settings,
            GroupedSource(settings_cls, env_settings),
            GroupedSource(settings_cls, dotenv_settings),
        )

    @model_validator(mode="after")
    def _key_is_not_a_token(self) -> Self:
        key = self.webhooks.signing_key
        if key is None:
            return self
        for name, token in (
            ("REELROUTE_ADMIN_TOKEN", self.api.admin_token),
            ("REELROUTE_WORKER_TOKEN", self.api.worker_token),
            ("REELROUTE_METRICS_TOKEN", self.api.metrics_token),
        ):
            if token is not None and key.get_secret_value() == token.get_secret_value():
                raise ValueError(
                    f"REELROUTE_WEBHOOK_SIGNING_KEY equals {name}: whoever holds the token "
                    "could read every endpoint's secret; give the key its own value"
                )
        return self

    @property
    def sandbox(self) -> bool | None:
        """Sandbox mode (REELROUTE_SANDBOX): Runway's emulator and the tiny Wan."""
        return self.local.sandbox

    def replaced(self, **flat: object) -> Settings:
        """These settings with some values changed, by flat name (`routing_policy="threshold"`),
        checked as when read."""
        changes = nested(flat)
        groups: dict[str, object] = {}
        for group, values in changes.items():
            current: Group = getattr(self, group)
            try:
                groups[group] = type(current).model_validate({**current.model_dump(), **values})
            except ValidationError as error:
                raise SettingsError(_problems(error, group)) from None
        return self.model_copy(update=groups)


def load_settings(**overrides: object) -> Settings:
    """Read the settings; values given here (by flat name: `lease_seconds=10`) win over the
    environment. An invalid value raises SettingsError naming the variable. `_env_file=None`
    reads no `.env`."""
    options = {name: overrides.pop(name) for name in list(overrides) if name.startswith("_")}
    try:
        return Settings(**options, **nested(overrides))  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(_problems(error)) from None


def _problems(error: ValidationError, group: str | None = None) -> str:
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if group is not None:
            loc = [group, *loc]
        names = ENV_OF.get((loc[0], loc[1])) if len(loc) >= 2 else None
        if names is None:  # a rule over several settings: its message names them
            problems.append(item["msg"].removeprefix("Value error, "))
            continue
        problems.append(f"{names[0]}: {item['msg']}{_shown(names[0], item.get('input'))}")
    return "invalid settings:\n  " + "\n  ".join(problems)


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
            and name.removeprefix(ENV_PREFIX).lower() in FLAT
            and value != ""
        },
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
