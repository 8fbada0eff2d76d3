"""SQLModel tables: `groups`, `photos`, `video_items`, and the per-provider count ledger.

The migrations in `models/migrations/` build the same schema (a test checks that autogenerate
finds no difference); they also install the triggers that keep `item_status_counts` current.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models.core.enums import (
    BreakerState,
    BudgetPeriod,
    BudgetScope,
    DeliveryStatus,
    EventType,
    FailureClass,
    FailureCode,
    GroupPriority,
    InferenceProvider,
    ItemStatus,
    Pool,
    QualityAction,
    RoutedBy,
)

# Constraint names that are stable across dialects, so migrations can refer to them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _enum_type(enum: type[StrEnum], name: str, *, native: bool, length: int = 20) -> sa.Enum:
    """Values, not member names, are stored (`runway_veo3.1` is not a Python identifier);
    native types on PostgreSQL where `native`, else VARCHAR(`length`) with a CHECK constraint."""
    sizing = {} if native else {"length": length}  # native: as long as the longest value
    return sa.Enum(
        enum,
        name=name,
        native_enum=native,
        values_callable=lambda members: [member.value for member in members],
        create_constraint=True,
        validate_strings=True,
        **sizing,
    )


# The seed's two PostgreSQL enum types; SQLite gets CHECK constraints for all four.
PROVIDER_TYPE = _enum_type(InferenceProvider, "inference_provider", native=True)
STATUS_TYPE = _enum_type(ItemStatus, "processing_status", native=True)
GROUP_PRIORITY_TYPE = _enum_type(GroupPriority, "group_priority", native=False)
ROUTED_BY_TYPE = _enum_type(RoutedBy, "routed_by", native=False)
FAILURE_CODE_TYPE = _enum_type(FailureCode, "failure_code", native=False, length=100)
BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""An auto-incremented 64-bit id (SQLite's rowid alias must be INTEGER)."""
EVENT_TYPE_TYPE = _enum_type(EventType, "event_type", native=False, length=32)
DELIVERY_STATUS_TYPE = _enum_type(DeliveryStatus, "delivery_status", native=False, length=12)
QUALITY_ACTION_TYPE = _enum_type(QualityAction, "quality_action", native=False, length=12)


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _timestamp(*, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(UTCDateTime(), nullable=nullable)


class Group(SQLModel, table=True):
    """A set of photos an admin works on together, with a priority for routing and ordering."""

    __tablename__ = "groups"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    name_key: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    """The name without case or extra spaces (models.items.groups.name_key): unique per
    installation."""
    priority: GroupPriority = Field(
        default=GroupPriority.normal,
        sa_column=sa.Column(GROUP_PRIORITY_TYPE, nullable=False, server_default="normal"),
    )
    default_provider: InferenceProvider | None = Field(
        default=None, sa_column=sa.Column(PROVIDER_TYPE, nullable=True)
    )
    deadline_seconds: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    """Time-to-video target of the group's items; None: the default of its priority."""
    allowed_providers: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    """Providers the routing policy may choose for its items; None: the default of its priority."""
    webhook_endpoint_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    """The registered webhook endpoint its items' events go to (besides the default ones)."""
    wan_full_quality: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    """Its Wan videos only from a preset that keeps the model card's quality (full, compiled)."""
    quality_action: QualityAction | None = Field(
        default=None, sa_column=sa.Column(QUALITY_ACTION_TYPE, nullable=True)
    )
    """What a failed check of its videos does; None: REELROUTE_QUALITY_ACTION."""
    quality_thresholds: dict[str, float] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON, nullable=True)
    )
    """Its own thresholds of the checks (by name, over the settings'); None: the settings'."""
    review_share: float = Field(
        default=0.0, sa_column=sa.Column(sa.Float, nullable=False, server_default="0")
    )
    """The share of its videos held for a person even when every check passes (1: all)."""
    shadow_rate: float = Field(
        default=0.0, sa_column=sa.Column(sa.Float, nullable=False, server_default="0")
    )
    """The share of its items also made by a second provider for a blind A/B comparison."""
    shadow_provider: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    keep_original_photos: bool = Field(
        default=False,
        sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()),
    )
    """Keep each photo as uploaded too (`photos.original_path`), beside the normalised copy that
    every provider receives; off: only the normalised copy is stored."""
    """Who makes the A/B samples' second videos (an InferenceProvider's value); None: Wan for
    a paid item, the cheapest paid option for a Wan one (models.intake.samples)."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


class Photo(SQLModel, table=True):
    """An uploaded image, stored content-addressed under `photos/<sha256>`.

    The descriptive columns are nullable because photos of an upgraded seed database lack them;
    every photo stored by reelroute has them all.
    """

    __tablename__ = "photos"
    __table_args__ = (sa.UniqueConstraint("group_id", "sha256"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    group_id: uuid.UUID | None = Field(
        default=None, sa_column=sa.Column(sa.Uuid, sa.ForeignKey("groups.id"), nullable=True)
    )
    storage_path: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    original_filename: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))
    content_type: str | None = Field(default=None, sa_column=sa.Column(sa.String(50)))
    width: int | None = None
    height: int | None = None
    bytes: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    sha256: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))
    generated_prompt: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    original_path: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    """The photo as uploaded (`photos/originals/<sha256>`), kept only when its group asks; no
    provider ever receives it."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


# Literal predicates, so that the planner can use the partial indexes with any bind style.
PENDING = "status = 'pending'"
FINISHED = "status IN ('completed', 'failed', 'cancelled')"


POOL_PREDICATE: dict[Pool, str] = {
    Pool.gpu: "inference_provider = 'wan_local'",
    Pool.cloud: "inference_provider <> 'wan_local'",
}
"""The items of a pool, as the claim indexes and the queries that use them spell it (every
provider but Wan is Runway's: a new Runway model needs no new index)."""
WAN_PROVIDERS_SQL = POOL_PREDICATE[Pool.gpu]
RUNWAY_PROVIDERS_SQL = POOL_PREDICATE[Pool.cloud]


class VideoItem(SQLModel, table=True):
    """One video to make: a photo, a prompt, a provider and where it is in its life."""

    __tablename__ = "video_items"
    __table_args__ = (
        # Claiming and dispatching: the pending item of one pool due first (urgent work is
        # simply due sooner), then the oldest.
        sa.Index(
            "ix_video_items_claim_gpu",
            "due_at",
            "created_at",
            postgresql_where=sa.text(f"{PENDING} AND {WAN_PROVIDERS_SQL}"),
            sqlite_where=sa.text(f"{PENDING} AND {WAN_PROVIDERS_SQL}"),
        ),
        sa.Index(
            "ix_video_items_claim_cloud",
            "due_at",
            "created_at",
            postgresql_where=sa.text(f"{PENDING} AND {RUNWAY_PROVIDERS_SQL}"),
            sqlite_where=sa.text(f"{PENDING} AND {RUNWAY_PROVIDERS_SQL}"),
        ),
        # Service-time estimates: a provider's latest completions (models.planning.estimates).
        sa.Index(
            "ix_video_items_completed_provider",
            "inference_provider",
            "finished_at",
            postgresql_where=sa.text("status = 'completed'"),
            sqlite_where=sa.text("status = 'completed'"),
        ),
        # Expired leases: only items being processed hold one (ck_video_items_lease), a few per
        # worker.
        sa.Index(
            "ix_video_items_leases",
            "leased_until",
            postgresql_where=sa.text("leased_until IS NOT NULL"),
            sqlite_where=sa.text("leased_until IS NOT NULL"),
        ),
        # The queue page: newest first, alone or filtered by one column. Every full index costs
        # each claim an index insert, so filters that keep a large share of the rows (provider,
        # pending) scan ix_video_items_created; finished items, which claims never touch, have a
        # partial index; processing items are found through ix_video_items_leases.
        sa.Index("ix_video_items_created", "created_at", "id"),
        sa.Index("ix_video_items_group_created", "group_id", "created_at", "id"),
        sa.Index(
            "ix_video_items_finished_created",
            "status",
            "created_at",
            "id",
            postgresql_where=sa.text(FINISHED),
            sqlite_where=sa.text(FINISHED),
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        sa.CheckConstraint("retry_count >= 0", name="retry_count"),
        sa.CheckConstraint("leased_until IS NULL OR status = 'processing'", name="lease"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    group_id: uuid.UUID | None = Field(
        default=None, sa_column=sa.Column(sa.Uuid, sa.ForeignKey("groups.id"), nullable=True)
    )
    photo_id: uuid.UUID | None = Field(
        default=None, sa_column=sa.Column(sa.Uuid, sa.ForeignKey("photos.id"), nullable=True)
    )
    prompt: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    frame_num: int | None = None
    duration_s: int | None = None
    ratio: str | None = Field(default=None, sa_column=sa.Column(sa.String(20)))
    seed: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    inference_provider: InferenceProvider = Field(
        default=InferenceProvider.runway_gen4_turbo,
        sa_column=sa.Column(PROVIDER_TYPE, nullable=False, server_default="runway_gen4_turbo"),
    )
    status: ItemStatus = Field(
        default=ItemStatus.pending,
        sa_column=sa.Column(STATUS_TYPE, nullable=False, server_default="pending"),
    )
    priority: int = Field(
        default=1, sa_column=sa.Column(sa.SmallInteger, nullable=False, server_default="1")
    )
    retry_count: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    """Attempts made (the fencing token: attempt n holds retry_count = n)."""
    spared_attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    """Of those, the ones an outage ended (a provider's, a GPU host's, ours): they do not count
    against REELROUTE_MAX_ATTEMPTS, only against REELROUTE_MAX_SPARED_ATTEMPTS."""
    leased_until: datetime | None = Field(default=None, sa_column=_timestamp())
    worker_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    flow_run_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    provider_task_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    progress: float = Field(
        default=0.0, sa_column=sa.Column(sa.Float, nullable=False, server_default="0")
    )
    output_path: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    failure_code: FailureCode | None = Field(default=None, sa_column=sa.Column(FAILURE_CODE_TYPE))
    cost_credits: int | None = None
    routed_by: RoutedBy | None = Field(default=None, sa_column=sa.Column(ROUTED_BY_TYPE))
    route_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    due_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    """When the video should be ready: created_at plus the task's or the group's deadline."""
    rerouted_at: datetime | None = Field(default=None, sa_column=_timestamp())
    """When it was moved to another provider while it waited (it moves at most once)."""
    webhook_endpoint_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    """The task's own webhook endpoint (besides its group's and the default ones)."""
    progress_event_at: datetime | None = Field(default=None, sa_column=_timestamp())
    """When its last `item.progress` event was written (at most one every 30 s)."""
    wan_preset: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    """Wan: the preset that made its video (`fast@1`)."""
    gpu_host: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    """Wan: the GPU host that made its video."""
    gpu_class: str | None = Field(default=None, sa_column=sa.Column(sa.String(100)))
    """Wan: that host's GPU (`NVIDIA H200`, `cpu`): service times are kept per class."""
    gpu_seconds: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    """Wan: GPU seconds its attempts that made a video took, claim to video (models.money.gpu)."""
    gpu_dollars: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    """Wan: what those seconds cost at their GPU class's price (REELROUTE_GPU_HOUR_COST)."""
    wan_full_quality: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    """Its group requires a full-quality Wan preset: only such hosts take it (its own work
    queues in the gpu pool)."""
    quality: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    """The automatic checks of its latest video (providers.quality.Verdict.to_json: passed,
    scores, failed checks with why, seconds) and what was done (`action`)."""
    review_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    """Why its video is (or was last) held for a person."""
    redo_count: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    """Videos of it that were made again (rejected by a reviewer, or escalated by a check)."""
    shadow_of: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, index=True))
    """An A/B sample's second video: the item it is compared with (its events reach no
    webhook, it counts in the acceptance once compared, the shadow budget pays)."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=_timestamp())
    finished_at: datetime | None = Field(default=None, sa_column=_timestamp())
    next_attempt_at: datetime | None = Field(default=None, sa_column=_timestamp())


BREAKER_STATE_TYPE = _enum_type(BreakerState, "breaker_state", native=False)
FAILURE_CLASS_TYPE = _enum_type(FailureClass, "failure_class", native=False, length=30)


class Breaker(SQLModel, table=True):
    """A circuit breaker: one per Runway model (`model:runway_gen4_turbo`), per GPU host
    (`host:gpu-a`) and per pool (`pool:gpu`, for runs that never start). Shared by every process
    through the database (models.health.breakers)."""

    __tablename__ = "breakers"

    name: str = Field(sa_column=sa.Column(sa.String(120), primary_key=True))
    state: BreakerState = Field(
        default=BreakerState.closed,
        sa_column=sa.Column(BREAKER_STATE_TYPE, nullable=False, server_default="closed"),
    )
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    """Why it opened (the last failure, the rate), or how it closed."""
    failure_class: FailureClass | None = Field(
        default=None, sa_column=sa.Column(FAILURE_CLASS_TYPE)
    )
    opened_at: datetime | None = Field(default=None, sa_column=_timestamp())
    next_probe_at: datetime | None = Field(default=None, sa_column=_timestamp())
    """When one item may try it again (half-open)."""
    cooldown_seconds: float = Field(
        default=0.0, sa_column=sa.Column(sa.Float, nullable=False, server_default="0")
    )
    """The wait before the next probe; doubles while probes fail."""
    probe_item_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    probe_started_at: datetime | None = Field(default=None, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


class BreakerOutcome(SQLModel, table=True):
    """One attempt's outcome for a breaker: what its sliding window counts."""

    __tablename__ = "breaker_outcomes"
    __table_args__ = (sa.Index("ix_breaker_outcomes_window", "breaker", "at"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    breaker: str = Field(sa_column=sa.Column(sa.String(120), nullable=False))
    at: datetime = Field(sa_column=_timestamp(nullable=False))
    ok: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    failure_class: FailureClass | None = Field(
        default=None, sa_column=sa.Column(FAILURE_CLASS_TYPE)
    )


class GpuHost(SQLModel, table=True):
    """A GPU host (`reelroute worker --pool gpu`) as it last reported itself: its GPUs, the
    class of GPU, the preset its pipeline processes run, and when it was last seen."""

    __tablename__ = "gpu_hosts"

    name: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    gpu_class: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    preset: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    slots: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    """Its pipeline processes (one per GPU): the items it makes at once."""
    full_quality: bool = Field(
        default=True, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.true())
    )
    """Its preset keeps the model card's quality: it also takes items that require it."""
    loads: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    videos: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    started_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    seen_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


class LoopBeat(SQLModel, table=True):
    """The last pass of one of the background loops (the dispatcher, the reconciler, the webhook
    sender): who ran it, when, how long it took and whether it went through. The metrics and
    the admin read it; an alert fires when it goes silent."""

    __tablename__ = "loop_beats"

    name: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    host: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    beat_at: datetime = Field(sa_column=_timestamp(nullable=False))
    took_seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    ok: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))


class LoopMember(SQLModel, table=True):
    """A process that runs, or stands by to run, one of the led roles ("dispatcher": the
    dispatcher with its reconciler; "webhooks": the sender): whether it leads, since when (its
    term, or when it joined as a standby), and when it last checked in. Written by
    models.health.leadership; the metrics and the Providers page read it."""

    __tablename__ = "loop_members"

    role: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    holder: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    leading: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    since: datetime = Field(sa_column=_timestamp(nullable=False))
    seen_at: datetime = Field(sa_column=_timestamp(nullable=False))


class ItemRedo(SQLModel, table=True):
    """A video of an item that was made again: who made it, what it cost, how long it took, and
    why it was not kept (a reviewer's rejection, or a failed check escalated). The item's
    `cost_credits` counts every attempt; these rows say which share each redone one had, for
    the redo rate and the cost of redos per provider, preset and group (models.items.review)."""

    __tablename__ = "item_redos"

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    item_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    group_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    attempt: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    provider: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    """The provider that made the video not kept (an InferenceProvider's value)."""
    wan_preset: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    cost_credits: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    seconds: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    """From its attempt's claim to its video."""
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    by_check: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    """Escalated by a failed check (else rejected by a reviewer)."""
    redo_provider: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    video_path: str | None = Field(default=None, sa_column=sa.Column(sa.String(500)))
    """Where the rejected video was kept (None: an escalated check's, never stored)."""
    at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


class AbComparison(SQLModel, table=True):
    """A reviewer's blind pick between an item's video and its A/B sample's (models.items.
    review): which was better, or both fine; with who made each, for the A/B table."""

    __tablename__ = "ab_comparisons"

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    item_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    shadow_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, unique=True))
    group_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    item_provider: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    item_preset: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    shadow_provider: str = Field(sa_column=sa.Column(sa.String(40), nullable=False))
    shadow_preset: str | None = Field(default=None, sa_column=sa.Column(sa.String(40)))
    winner: str = Field(sa_column=sa.Column(sa.String(10), nullable=False))
    """`item`, `shadow` or `tie` (both fine)."""
    at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


class AbPair(SQLModel, table=True):
    """A blind A/B pair as reviewers see it: an id of its own (random, naming neither item) and
    which video is A (a random draw, stored so that a reload shows the same)."""

    __tablename__ = "ab_pairs"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    shadow_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, unique=True))
    item_first: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    """Whether the item's own video is A (else its sample's)."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


class FailureTally(SQLModel, table=True):
    """Failed attempts per provider and failure class, counted by the writer in the failing
    transaction (models.store.tallies): the metrics' failures by class, at any size."""

    __tablename__ = "failure_tallies"

    provider: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    failure_class: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class VerdictTally(SQLModel, table=True):
    """Videos kept and videos made again per group, provider and Wan preset, counted by the
    writer in the transaction that decides (models.store.tallies): a completed item's video is
    `accepted`, a video rejected by a reviewer or escalated by a failed check is `rejected`.
    Routing learns each option's acceptance from these few rows (models.planning.acceptance)."""

    __tablename__ = "verdict_tallies"

    group_key: str = Field(sa_column=sa.Column(sa.String(36), primary_key=True))
    """The group's id as text ('' for items without a group)."""
    provider: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    wan_preset: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    """The Wan preset that made the videos ('' for Runway's, or Wan's of no known preset)."""
    accepted: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    rejected: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class GpuTally(SQLModel, table=True):
    """Wan videos made, GPU seconds and what they cost per GPU class, counted by the writer in
    the transaction that ends the attempt (models.store.tallies): the metrics' GPU spend, at
    any size."""

    __tablename__ = "gpu_tallies"

    gpu_class: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    videos: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    dollars: float = Field(sa_column=sa.Column(sa.Float, nullable=False))


class GpuDemand(SQLModel, table=True):
    """The GPU slots and hosts the waiting Wan work wants to meet its due times, as the
    dispatcher's planner last computed them (one row; `reelroute_gpu_hosts_wanted`)."""

    __tablename__ = "gpu_demand"

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    slots: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    hosts: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    waiting: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    """Wan items waiting or at work when it was computed."""
    computed_at: datetime = Field(sa_column=_timestamp(nullable=False))


class DeliveryTally(SQLModel, table=True):
    """Webhook delivery attempts by outcome (`delivered`, `failed`: to be tried again, `dead`:
    given up), counted by the sender in the transaction that records them
    (models.store.tallies): the metrics' delivery counter, at any size."""

    __tablename__ = "delivery_tallies"

    outcome: str = Field(sa_column=sa.Column(sa.String(20), primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class LatencyBucket(SQLModel, table=True):
    """Completed items per provider, measure (`created` or `claimed` to completed) and latency
    bucket (its upper bound in seconds, `inf` for the last), with the seconds they took: a
    histogram kept by the writer in the completing transaction (models.store.tallies)."""

    __tablename__ = "latency_buckets"

    provider: str = Field(sa_column=sa.Column(sa.String(40), primary_key=True))
    measure: str = Field(sa_column=sa.Column(sa.String(20), primary_key=True))
    le: str = Field(sa_column=sa.Column(sa.String(20), primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sum_seconds: float = Field(sa_column=sa.Column(sa.Float, nullable=False))


class ItemStatusCount(SQLModel, table=True):
    """A ledger of changes to the number (and credits) of items per provider and status.

    Triggers on `video_items` append one row per (provider, status) a statement changed; the
    statistics are the sums, and `compact_counts` folds the ledger back to one row per pair. So
    statistics cost the same for a thousand items or ten million, and no writer waits on a shared
    counter row.
    """

    __tablename__ = "item_status_counts"

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    )
    inference_provider: InferenceProvider = Field(
        sa_column=sa.Column(PROVIDER_TYPE, nullable=False)
    )
    status: ItemStatus = Field(sa_column=sa.Column(STATUS_TYPE, nullable=False))
    items: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    credits: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


BUDGET_SCOPE_TYPE = _enum_type(BudgetScope, "budget_scope", native=False)
BUDGET_PERIOD_TYPE = _enum_type(BudgetPeriod, "budget_period", native=False)


class Budget(SQLModel, table=True):
    """A spending cap in credits: for one paid provider, one group, or all paid providers,
    per UTC day or calendar month (models.money.budgets)."""

    __tablename__ = "budgets"
    __table_args__ = (sa.UniqueConstraint("scope", "period", "provider", "group_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    scope: BudgetScope = Field(sa_column=sa.Column(BUDGET_SCOPE_TYPE, nullable=False))
    period: BudgetPeriod = Field(sa_column=sa.Column(BUDGET_PERIOD_TYPE, nullable=False))
    provider: InferenceProvider | None = Field(
        default=None, sa_column=sa.Column(PROVIDER_TYPE, nullable=True)
    )
    group_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(sa.Uuid, sa.ForeignKey("groups.id", ondelete="CASCADE")),
    )
    cap_credits: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


class BudgetUsage(SQLModel, table=True):
    """What one budget has reserved and spent in one period."""

    __tablename__ = "budget_usage"

    budget_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
        )
    )
    period_start: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    reserved: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    spent: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))


class BudgetReservation(SQLModel, table=True):
    """Credits an unfinished item holds on one budget until it is settled."""

    __tablename__ = "budget_reservations"

    item_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("video_items.id", ondelete="CASCADE"), primary_key=True
        )
    )
    budget_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
        )
    )
    period_start: date = Field(sa_column=sa.Column(sa.Date, nullable=False))
    credits: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class RunwayLimitsRow(SQLModel, table=True):
    """Runway's latest answer about our organisation (models.money.limits), one row."""

    __tablename__ = "runway_limits"

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    payload: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    fetched_at: datetime = Field(sa_column=_timestamp(nullable=False))


class ItemEta(SQLModel, table=True):
    """A waiting item's place and predicted times, as the dispatcher last replayed them."""

    __tablename__ = "item_etas"

    item_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("video_items.id", ondelete="CASCADE"), primary_key=True
        )
    )
    queue_position: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    start_at: datetime = Field(sa_column=_timestamp(nullable=False))
    eta: datetime = Field(sa_column=_timestamp(nullable=False))
    eta_p90: datetime = Field(sa_column=_timestamp(nullable=False))
    late_risk: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))


class Reroute(SQLModel, table=True):
    """One move of a waiting item to another provider, and why."""

    __tablename__ = "item_reroutes"

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    )
    item_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("video_items.id", ondelete="CASCADE"), nullable=False
        )
    )
    from_provider: InferenceProvider = Field(
        sa_column=sa.Column(
            _enum_type(InferenceProvider, "from_provider", native=False), nullable=False
        )
    )
    to_provider: InferenceProvider = Field(
        sa_column=sa.Column(
            _enum_type(InferenceProvider, "to_provider", native=False), nullable=False
        )
    )
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    moved_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


class IdempotencyKey(SQLModel, table=True):
    """The first answer to a request sent with an `Idempotency-Key`, to answer its repeats."""

    __tablename__ = "idempotency_keys"

    key: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    scope: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    """What the key was used for (`tasks/add`, `photos:<group>`, `cli add`)."""
    request_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    status_code: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    response: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    expires_at: datetime = Field(
        sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True)
    )


class WebhookEndpoint(SQLModel, table=True):
    """A receiver of item events (models.outbox.endpoints): its URL, the events it wants, its
    signing secret (random, encrypted with REELROUTE_WEBHOOK_SIGNING_KEY; NULL for an endpoint
    of before, whose secret is derived from the key and its URL), whether it is enabled, and
    its receiver's latest answers."""

    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(
        default_factory=uuid.uuid4, sa_column=sa.Column(sa.Uuid, primary_key=True)
    )
    url: str = Field(sa_column=sa.Column(sa.Text, nullable=False, unique=True))
    events: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    """The event types it wants; None: all but `item.progress`."""
    is_default: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    """Every item's events go to it (REELROUTE_WEBHOOK_URL)."""
    enabled: bool = Field(
        default=True, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.true())
    )
    """A disabled endpoint gets no new deliveries; its pending ones wait."""
    secret_encrypted: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    previous_secret_encrypted: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    """The secret a rotation replaced, still signing until `previous_secret_until`."""
    previous_secret_until: datetime | None = Field(default=None, sa_column=_timestamp())
    last_answers: list[dict[str, Any]] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    """The receiver's latest answers, newest first: at, status, error, ms."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))


class ItemEvent(SQLModel, table=True):
    """The outbox: one row per change of an item that callers hear about, written in the same
    transaction as the change. Webhooks and the SSE stream are fed from it."""

    __tablename__ = "item_events"
    __table_args__ = (
        sa.Index(
            "ix_item_events_not_fanned_out",
            "id",
            postgresql_where=sa.text("NOT fanned_out"),
            sqlite_where=sa.text("NOT fanned_out"),
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    item_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    group_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    type: EventType = Field(sa_column=sa.Column(EVENT_TYPE_TYPE, nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    provider: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    attempt: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    progress: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    detail: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    """Why: the routing reason, the move's reason, the failure."""
    subject: str | None = Field(default=None, sa_column=sa.Column(sa.String(120)))
    """provider.* events: the breaker's name (`model:runway_gen4_turbo`); `item_id` is then
    that breaker's fixed id (models.health.breakers.breaker_id)."""
    cost_credits: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    fanned_out: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    """Its webhook deliveries were made (by the sender)."""


class WebhookDelivery(SQLModel, table=True):
    """One event on its way to one endpoint: pending, delivered, or dead (given up after
    REELROUTE_WEBHOOK_RETRY_HOURS; resend from the admin)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_webhook_deliveries_endpoint_due",
            "endpoint_id",
            "next_attempt_at",
            "id",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_webhook_deliveries_order", "endpoint_id", "item_id", "event_id"),
        sa.Index("ix_webhook_deliveries_status", "status", "id"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BIGINT_ID, primary_key=True))
    event_id: int = Field(
        sa_column=sa.Column(
            BIGINT_ID, sa.ForeignKey("item_events.id", ondelete="CASCADE"), nullable=False
        )
    )
    endpoint_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
        )
    )
    item_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    status: DeliveryStatus = Field(
        default=DeliveryStatus.pending,
        sa_column=sa.Column(DELIVERY_STATUS_TYPE, nullable=False),
    )
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    first_attempt_at: datetime | None = Field(default=None, sa_column=_timestamp())
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp(nullable=False))
    last_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    delivered_at: datetime | None = Field(default=None, sa_column=_timestamp())
