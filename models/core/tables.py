"""The shared spine of the schema: `groups`, `photos`, `video_items`, and the two tables that
rooms below their writers read (`item_etas`, written by planning, read by the queue;
`item_redos`, written by items, read by money). Every other table lives in the room that writes
it (`models/<room>/tables.py`); `models/assembly/registry.py` names them all, with their owners,
for the migrations and the ownership check.

The migrations in `models/store/migrations/` build the same schema (a test checks that
autogenerate finds no difference); they also install the triggers of the count ledger.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from reelroute.models.core.columns import (
    BIGINT_ID,
    FAILURE_CODE_TYPE,
    GROUP_PRIORITY_TYPE,
    PROVIDER_TYPE,
    QUALITY_ACTION_TYPE,
    ROUTED_BY_TYPE,
    STATUS_TYPE,
    timestamp,
    utcnow,
)
from reelroute.models.core.enums import (
    FailureCode,
    GroupPriority,
    InferenceProvider,
    ItemStatus,
    Pool,
    QualityAction,
    RoutedBy,
)

__all__ = [
    "FINISHED",
    "PENDING",
    "POOL_PREDICATE",
    "RUNWAY_PROVIDERS_SQL",
    "WAN_PROVIDERS_SQL",
    "Group",
    "ItemEta",
    "ItemRedo",
    "Photo",
    "VideoItem",
    "utcnow",
]


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
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))


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
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))


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
        sa_column=sa.Column(STATUS_TYPE, nullable=False, server_default=ItemStatus.pending.value),
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
    leased_until: datetime | None = Field(default=None, sa_column=timestamp())
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
    due_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))
    """When the video should be ready: created_at plus the task's or the group's deadline."""
    rerouted_at: datetime | None = Field(default=None, sa_column=timestamp())
    """When it was moved to another provider while it waited (it moves at most once)."""
    webhook_endpoint_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid))
    """The task's own webhook endpoint (besides its group's and the default ones)."""
    progress_event_at: datetime | None = Field(default=None, sa_column=timestamp())
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
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=timestamp())
    finished_at: datetime | None = Field(default=None, sa_column=timestamp())
    next_attempt_at: datetime | None = Field(default=None, sa_column=timestamp())


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
    at: datetime = Field(default_factory=utcnow, sa_column=timestamp(nullable=False))


class ItemEta(SQLModel, table=True):
    """A waiting item's place and predicted times, as the dispatcher last replayed them."""

    __tablename__ = "item_etas"

    item_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("video_items.id", ondelete="CASCADE"), primary_key=True
        )
    )
    queue_position: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    start_at: datetime = Field(sa_column=timestamp(nullable=False))
    eta: datetime = Field(sa_column=timestamp(nullable=False))
    eta_p90: datetime = Field(sa_column=timestamp(nullable=False))
    late_risk: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
