"""The one settings object of reelroute: read from the environment and `.env`, checked at start.

The settings are grouped by concern (`settings.wan.steps`, `settings.runway.poll_seconds`, …);
each still comes from the environment variable it always had (`REELROUTE_WAN_STEPS`,
`REELROUTE_RUNWAY_POLL_SECONDS`): every field names its variable (`env`), and `GroupedSource`
reads the flat variables into the groups. `load_settings(wan_steps=3)` and
`settings.replaced(wan_steps=3)` take the same flat names.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Protocol, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.types import JsonValue
from pydantic_settings import (
    NoDecode,
)

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


class SharedConfig(Protocol):
    """The groups every room may read (the shared ones of this module): what a function of
    `core` or `outbox` is typed with. The composed `reelroute.models.assembly.settings.Settings`
    satisfies it, and each room's config Protocol adds its own groups."""

    @property
    def api(self) -> ApiSettings: ...

    @property
    def items(self) -> ItemSettings: ...

    @property
    def local(self) -> LocalSettings: ...

    @property
    def runway(self) -> RunwaySettings: ...

    @property
    def wan(self) -> WanSettings: ...

    @property
    def webhooks(self) -> WebhookSettings: ...
