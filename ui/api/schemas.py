"""Request and answer bodies of the REST API (the seed's field names where the seed has them)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reelroute.models.core import (
    BreakerState,
    BudgetPeriod,
    BudgetScope,
    DeliveryStatus,
    EventType,
    FailureCode,
    Group,
    GroupPriority,
    InferenceProvider,
    ItemEta,
    ItemStatus,
    Photo,
    QualityAction,
    RoutedBy,
    TaskSpec,
    VideoItem,
    WorkerType,
    check_text,
)
from reelroute.models.intake import MAX_BATCH
from reelroute.models.money import Spend
from reelroute.models.outbox import DeadLetter, WebhookEndpoint


class AddTasksIn(BaseModel):
    """`POST /api/admin/tasks/add`."""

    model_config = ConfigDict(extra="forbid")

    group_id: uuid.UUID
    tasks: list[TaskSpec] = Field(max_length=MAX_BATCH)


BLIND_REASON = "A/B sample: who makes it is shown once its pair is compared"


class ItemOut(BaseModel):
    """A video item as the API shows it, with where it stands: queue position, ETA, due time
    and late risk (from the dispatcher's last replay of its provider's queue)."""

    id: uuid.UUID
    group_id: uuid.UUID | None
    photo_id: uuid.UUID | None
    prompt: str
    frame_num: int | None
    duration_s: int | None
    inference_provider: InferenceProvider | None = Field(
        description="Who makes it; null for a blind A/B sample not compared yet (ab_sample)."
    )
    status: ItemStatus
    retry_count: int
    progress: float
    worker_id: str | None
    flow_run_id: uuid.UUID | None
    output_path: str | None
    error: str | None
    failure_code: FailureCode | None
    cost_credits: int | None
    routed_by: RoutedBy | None
    route_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    due_at: datetime
    rerouted_at: datetime | None
    queue_position: int | None = Field(
        default=None, description="1 for the next to start; 0 while it is being made."
    )
    eta: datetime | None = Field(default=None, description="Predicted finish (median).")
    late_risk: bool | None = Field(
        default=None, description="Predicted (at p90) to finish after due_at."
    )
    spared_attempts: int = Field(
        default=0,
        description="Attempts an outage ended (a provider's, a GPU host's, ours): they do not "
        "count against REELROUTE_MAX_ATTEMPTS.",
    )
    waiting_reason: str | None = Field(
        default=None,
        description="Why a waiting item does not go ahead: its model is unavailable (its "
        "breaker is open), since when, and the next probe.",
    )
    quality: dict[str, Any] | None = Field(
        default=None,
        description="The automatic checks of its latest video: passed, scores by check "
        "(decodes, length, fps, resolution, blank, frozen, flicker, first_frame), the failed "
        "ones with why, the seconds they took, and the action taken (accept, review, escalate).",
    )
    review_reason: str | None = Field(
        default=None, description="Why its video is (or was last) held for a person."
    )
    redo_count: int = Field(
        default=0, description="Videos of it made again (rejected, or escalated by a check)."
    )
    ab_sample: bool = Field(
        default=False,
        description="A blind A/B sample's second video: until its pair is compared, who makes "
        "it (provider, reason, cost, worker, flow run, file) is not shown.",
    )

    @classmethod
    def of(
        cls,
        item: VideoItem,
        eta: ItemEta | None = None,
        waiting: Mapping[InferenceProvider, str] | None = None,
        *,
        blind: bool = False,
    ) -> ItemOut:
        """The API view of an item (and its stored ETA, if it has one; `waiting`: the models
        that are unavailable, with why; `blind`: an A/B sample not compared yet, shown without
        who makes it)."""
        out = cls.model_validate(item, from_attributes=True)
        out.ab_sample = item.shadow_of is not None
        if blind:
            out.inference_provider = out.worker_id = out.flow_run_id = out.output_path = None
            out.route_reason, out.routed_by, out.cost_credits = BLIND_REASON, None, None
            out.error, out.quality = None, None
            return out
        if eta is not None and item.status in (ItemStatus.pending, ItemStatus.processing):
            out.queue_position, out.eta, out.late_risk = eta.queue_position, eta.eta, eta.late_risk
        if waiting and item.status is ItemStatus.pending:
            out.waiting_reason = waiting.get(item.inference_provider)
        return out


class ItemDetailOut(ItemOut):
    """`GET /api/admin/items/{id}`: the item, its video's address, and how it was routed."""

    video_url: str | None = Field(
        default=None, description="Where to download the finished video (this API)."
    )
    moves: list[str] = Field(default_factory=list, description="Its moves while it waited.")


class QueueOut(BaseModel):
    """One page of the queue; pass `next_cursor` as `cursor` for the next one."""

    items: list[ItemOut]
    next_cursor: str | None


class GroupIn(BaseModel):
    """`POST /api/admin/groups`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    priority: GroupPriority = GroupPriority.normal
    default_provider: InferenceProvider | None = None
    deadline_seconds: int | None = Field(
        default=None,
        ge=60,
        le=30 * 86400,
        description="Time-to-video target of its items; unset: the default of its priority.",
    )
    webhook_url: str | None = Field(
        default=None, max_length=2000, description="A registered webhook endpoint of the group."
    )
    allowed_providers: list[InferenceProvider] | None = Field(
        default=None,
        min_length=1,
        description="Who the routing policy may choose; unset: the Veo family for "
        "high_quality, everyone otherwise.",
    )
    wan_full_quality: bool = Field(
        default=False,
        description="Its Wan videos only from GPU hosts whose preset keeps the model card's "
        "quality (full, compiled), never from a distilled or cached one.",
    )
    quality_action: QualityAction | None = Field(
        default=None,
        description="What a failed check of its videos does: accept, review (hold for a "
        "person) or escalate (make it again on its next option); unset: "
        "REELROUTE_QUALITY_ACTION.",
    )
    quality_thresholds: dict[str, float] | None = Field(
        default=None,
        description="Its own thresholds, by name (min_luma_range, min_motion, max_flicker, "
        "min_first_frame_ssim); unset: the settings'.",
    )
    review_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="The share of its videos held for a person even when every check passes "
        "(1: every video).",
    )
    shadow_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="The share of its items also made by a second provider for a blind A/B "
        "comparison on the Review page (0.05: 5 %); a paid sample is paid from the shadow "
        "budget only, and without one there are no paid samples.",
    )
    keep_original_photos: bool = Field(
        default=False,
        description="Keep each photo as uploaded too (with its metadata: where it was taken, "
        "the camera), beside the normalised copy (upright, sRGB, no metadata) that every "
        "provider receives; off: only the normalised copy is stored.",
    )
    shadow_provider: InferenceProvider | None = Field(
        default=None,
        description="Who makes the samples' second videos; unset: Wan for a paid item, the "
        "cheapest paid option it allows for a Wan one.",
    )


class BudgetIn(BaseModel):
    """`PUT /api/admin/budgets`: create or change one cap."""

    model_config = ConfigDict(extra="forbid")

    scope: BudgetScope
    period: BudgetPeriod
    cap_dollars: float = Field(ge=0, le=10_000_000)
    provider: InferenceProvider | None = None
    group_id: uuid.UUID | None = None


class BudgetOut(BaseModel):
    """A cap and what its current period has used."""

    id: uuid.UUID
    scope: BudgetScope
    period: BudgetPeriod
    provider: InferenceProvider | None
    group_id: uuid.UUID | None
    cap_dollars: float
    reserved_dollars: float
    spent_dollars: float
    left_dollars: float
    period_start: date

    @classmethod
    def of(cls, entry: Spend) -> BudgetOut:
        """The API view of a budget's current period."""
        budget = entry.budget
        return cls(
            id=budget.id,
            scope=budget.scope,
            period=budget.period,
            provider=budget.provider,
            group_id=budget.group_id,
            cap_dollars=budget.cap_credits / 100,
            reserved_dollars=entry.reserved / 100,
            spent_dollars=entry.spent / 100,
            left_dollars=entry.left / 100,
            period_start=entry.period_start,
        )


class GroupOut(BaseModel):
    """A group."""

    id: uuid.UUID
    name: str
    priority: GroupPriority
    default_provider: InferenceProvider | None
    deadline_seconds: int | None
    allowed_providers: list[InferenceProvider] | None
    wan_full_quality: bool
    quality_action: QualityAction | None = None
    quality_thresholds: dict[str, float] | None = None
    review_share: float = 0.0
    shadow_rate: float = 0.0
    shadow_provider: InferenceProvider | None = None
    keep_original_photos: bool = False
    created_at: datetime

    @classmethod
    def of(cls, group: Group) -> GroupOut:
        """The API view of a group."""
        return cls.model_validate(group, from_attributes=True)


class PhotoOut(BaseModel):
    """A stored photo."""

    id: uuid.UUID
    group_id: uuid.UUID | None
    original_filename: str | None
    content_type: str | None
    width: int | None
    height: int | None
    bytes: int | None
    sha256: str | None

    @classmethod
    def of(cls, photo: Photo) -> PhotoOut:
        """The API view of a photo."""
        return cls.model_validate(photo, from_attributes=True)


class NextTaskIn(BaseModel):
    """`POST /api/worker/next-task` (SEED.md §2.2)."""

    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(min_length=1, max_length=200)
    worker_type: WorkerType
    lease_duration_seconds: int = Field(default=600, ge=10, le=86_400)

    @field_validator("worker_id")
    @classmethod
    def _plain(cls, value: str) -> str:
        return check_text(value)


class NextTaskOut(BaseModel):
    """The seed's answer fields, plus `attempt`: the fencing token of every later call."""

    item_id: uuid.UUID
    group_id: uuid.UUID | None
    photo_id: uuid.UUID | None
    prompt: str
    leased_until: datetime
    photo_storage_path: str | None
    frame_num: int | None
    inference_provider: InferenceProvider
    attempt: int


class HeartbeatIn(BaseModel):
    """`POST /api/worker/tasks/{id}/heartbeat`."""

    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1, le=1000)
    worker_id: str = Field(
        min_length=1, max_length=200, description="The worker_id that claimed the item."
    )
    lease_duration_seconds: int = Field(default=600, ge=10, le=86_400)
    progress: float | None = Field(default=None, ge=0, le=1)

    @field_validator("worker_id")
    @classmethod
    def _plain(cls, value: str) -> str:
        return check_text(value)


class FailIn(BaseModel):
    """`POST /api/worker/tasks/{id}/fail`."""

    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1, le=1000)
    worker_id: str = Field(
        min_length=1, max_length=200, description="The worker_id that claimed the item."
    )
    error: str = Field(min_length=1, max_length=5000)
    permanent: bool = False
    failure_code: FailureCode | None = Field(
        default=None,
        description="Why it failed: one of reelroute's codes, or a Runway task's failureCode "
        "(SAFETY.INPUT.TEXT is taken as its family, SAFETY.INPUT).",
    )
    cost_credits: int | None = Field(default=None, ge=0, le=10**9)

    @field_validator("error")
    @classmethod
    def _error_text(cls, value: str) -> str:
        return check_text(value, free_text=True)

    @field_validator("worker_id")
    @classmethod
    def _plain(cls, value: str) -> str:
        return check_text(value)

    @field_validator("failure_code", mode="before")
    @classmethod
    def _failure_code(cls, value: object) -> object:
        return FailureCode.parse(value) if isinstance(value, str) else value


EVENTS_HELP = (
    "Event types it wants (item.created, item.started, item.progress, item.rerouted, "
    "item.completed, item.failed, item.cancelled); unset: all but item.progress."
)


class WebhookIn(BaseModel):
    """`POST /api/admin/webhooks`: register an endpoint."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, description="https:// URL of the receiver.")
    events: list[str] | None = Field(default=None, description=EVENTS_HELP)


class WebhookChange(BaseModel):
    """`PATCH /api/admin/webhooks/{id}`: what it wants, and whether it gets anything."""

    model_config = ConfigDict(extra="forbid")

    events: list[str] | None = Field(default=None, description=EVENTS_HELP)
    all_events: bool = Field(default=False, description="Back to the default set of events.")
    enabled: bool | None = Field(
        default=None,
        description="false: no new deliveries, and pending ones wait; true: sending again.",
    )


class WebhookRotate(BaseModel):
    """`POST /api/admin/webhooks/{id}/rotate`."""

    model_config = ConfigDict(extra="forbid")

    overlap_hours: float = Field(
        default=24.0,
        ge=0,
        le=168,
        description="How long the old secret keeps signing too (both signatures are sent).",
    )


class AnswerOut(BaseModel):
    """One answer of a receiver."""

    at: datetime
    status: int | None
    error: str
    ms: int


class WebhookOut(BaseModel):
    """An endpoint. `secret` (its Standard Webhooks signing secret) only in the answer to its
    registration or rotation."""

    id: uuid.UUID
    url: str
    events: list[str] | None
    is_default: bool
    enabled: bool
    rotating_until: datetime | None = Field(
        default=None, description="While the old secret still signs too (after a rotation)."
    )
    last_answers: list[AnswerOut] = Field(default_factory=list, description="Newest first.")
    secret: str | None = None

    @classmethod
    def of(cls, endpoint: WebhookEndpoint, secret: str | None = None) -> WebhookOut:
        """An endpoint as the API shows it."""
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            events=endpoint.events,
            is_default=endpoint.is_default,
            enabled=endpoint.enabled,
            rotating_until=endpoint.previous_secret_until,
            last_answers=[AnswerOut.model_validate(a) for a in endpoint.last_answers or []],
            secret=secret,
        )


class DeliveryOut(BaseModel):
    """A webhook delivery (the dead-letter list)."""

    id: int
    event_id: int
    event_type: EventType
    endpoint_url: str
    item_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    last_status: int | None
    last_error: str | None
    first_attempt_at: datetime | None
    next_attempt_at: datetime

    @classmethod
    def of(cls, dead: DeadLetter) -> DeliveryOut:
        """A dead letter as the API shows it."""
        delivery = dead.delivery
        return cls(
            id=delivery.id or 0,
            event_id=delivery.event_id,
            event_type=dead.event_type,
            endpoint_url=dead.endpoint_url,
            item_id=delivery.item_id,
            status=delivery.status,
            attempts=delivery.attempts,
            last_status=delivery.last_status,
            last_error=delivery.last_error,
            first_attempt_at=delivery.first_attempt_at,
            next_attempt_at=delivery.next_attempt_at,
        )


class ProviderOut(BaseModel):
    """One circuit breaker: a Runway model's, a GPU host's or a pool's."""

    name: str = Field(description="`model:runway_gen4_turbo`, `host:gpu-a`, `pool:gpu`.")
    label: str
    kind: str = Field(description="model, host or pool.")
    state: BreakerState = Field(
        description="closed: available; open: unavailable until the next probe; half_open: "
        "one probe item is under way."
    )
    reason: str | None = Field(default=None, description="Why it opened (or last changed).")
    opened_at: datetime | None = None
    next_probe_at: datetime | None = None
    failures_hour: dict[str, int] = Field(description="Failures in the last hour, by class.")
    failures_day: dict[str, int] = Field(description="Failures in the last day, by class.")
    detail: str | None = Field(default=None, description="A GPU host's preset, GPUs and state.")
    waiting: str | None = Field(
        default=None, description="What its waiting items are told while it is not closed."
    )


class PairOut(BaseModel):
    """A blind A/B pair waiting for a pick: the photo, the prompt, and the two videos as A and
    B (their addresses name the pair and the side, never the item or who made it)."""

    pair_id: uuid.UUID = Field(description="The pair's own id (random: it names no item).")
    photo_id: uuid.UUID | None
    prompt: str
    a_video: str
    b_video: str


class PickIn(BaseModel):
    """`POST /api/admin/review/pairs/{pair_id}`: which video of the pair is better."""

    model_config = ConfigDict(extra="forbid")

    better: Literal["a", "b", "both"] = Field(description="a, b, or both (both fine).")


class ComparisonOut(BaseModel):
    """A recorded pick, with who made which (told once the pick is made)."""

    shadow_id: uuid.UUID
    item_id: uuid.UUID
    winner: Literal["item", "shadow", "tie"]
    item_provider: InferenceProvider
    item_preset: str | None
    shadow_provider: InferenceProvider
    shadow_preset: str | None


class RejectIn(BaseModel):
    """`POST /api/admin/items/{id}/reject`: why the video is not good enough, and who makes
    it again."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="What is wrong with it.")
    provider: InferenceProvider | None = Field(
        default=None,
        description="Who makes it again; unset: the group's next option (the deadline policy "
        "over its allowed providers, this one left out, within budget).",
    )


class RedoOut(BaseModel):
    """Videos made again for one provider, Wan preset and group."""

    provider: InferenceProvider = Field(description="Who made the videos that were not kept.")
    wan_preset: str | None
    group_id: uuid.UUID | None
    redos: int = Field(description="Videos made again (rejected, or escalated by a check).")
    by_check: int = Field(description="Of those, escalated by a failed check.")
    credits: int = Field(description="What the videos not kept cost (1 credit = $0.01).")
