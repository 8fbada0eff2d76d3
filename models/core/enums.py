"""The words of the data model: providers, statuses, group priorities, routing reasons, and the
codes that cross process and wire boundaries (failure codes, event types, delivery states)."""

from __future__ import annotations

from enum import StrEnum


class InferenceProvider(StrEnum):
    """Who generates a video; the values are stored as-is (PostgreSQL type `inference_provider`)."""

    wan_local = "wan_local"
    runway_gen4_turbo = "runway_gen4_turbo"
    runway_veo3_1 = "runway_veo3.1"
    runway_gen4_5 = "runway_gen4.5"
    runway_veo3_1_fast = "runway_veo3.1_fast"


class ItemStatus(StrEnum):
    """Where an item is in its life (PostgreSQL type `processing_status`)."""

    pending = "pending"
    processing = "processing"
    review = "review"
    """Its video is made and held for a person: accept it, or reject it and redo it
    (models.items.review)."""
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class GroupPriority(StrEnum):
    """A group's priority; it drives routing and the order in which pending items are taken."""

    normal = "normal"
    urgent = "urgent"
    high_quality = "high_quality"


class RoutedBy(StrEnum):
    """Which routing rule chose an item's provider."""

    explicit = "explicit"
    group_priority = "group_priority"
    default = "default"
    fallback = "fallback"
    deadline = "deadline"
    """The deadline policy: the cheapest allowed provider predicted to deliver on time."""
    rerouted = "rerouted"
    """Moved to another provider while it waited, because its prediction changed."""


class BudgetScope(StrEnum):
    """What a spending cap covers."""

    provider = "provider"
    group = "group"
    total = "total"
    """Every paid provider together."""
    shadow = "shadow"
    """The blind A/B samples' second videos (models.intake.samples), and nothing else."""
    gpu = "gpu"
    """What the GPU hosts' time costs (REELROUTE_GPU_HOUR_COST), and nothing else: with
    per-second billing, routing keeps Wan items off the GPUs once it is spent."""


class BudgetPeriod(StrEnum):
    """How long a cap lasts before it starts again (UTC days and calendar months)."""

    day = "day"
    month = "month"


class Pool(StrEnum):
    """A Prefect work pool; every provider belongs to exactly one (POOL_OF)."""

    gpu = "gpu"
    """Wan on our own GPUs: one slot per GPU."""
    cloud = "cloud"
    """Runway's API: small hosts, slots follow Runway's concurrency."""

    def providers(self) -> tuple[InferenceProvider, ...]:
        """The providers whose items this pool runs."""
        return tuple(provider for provider, pool in POOL_OF.items() if pool is self)


POOL_OF: dict[InferenceProvider, Pool] = {
    provider: Pool.gpu if provider is InferenceProvider.wan_local else Pool.cloud
    for provider in InferenceProvider
}
"""The one provider → pool mapping: Wan on our GPUs, every Runway model in the cloud."""


class WorkerType(StrEnum):
    """The seed's worker types (SEED.md §2.2); each takes the items of one pool."""

    wan = "wan"
    runway = "runway"

    @property
    def pool(self) -> Pool:
        """The pool whose items a worker of this type takes."""
        return Pool.gpu if self is WorkerType.wan else Pool.cloud


AUTO = "auto"
"""The provider choice that means "apply the routing rules"."""


def queue_rank(priority: GroupPriority) -> int:
    """Order in which pending items are taken: urgent groups first, then everyone by age."""
    return 0 if priority is GroupPriority.urgent else 1


class FailureCode(StrEnum):
    """Why an attempt failed (`video_items.failure_code`): ours, Wan's, Runway's API's, and
    Runway's task failures (by family; the full code is in the error text)."""

    # Our orchestration: a flow run that ended before or while it held the item.
    RUN_NOT_STARTED = "RUN_NOT_STARTED"
    """Its flow run ended (crashed, cancelled, vanished) before it claimed the item."""
    RUN_CRASHED = "RUN_CRASHED"
    RUN_CANCELLED = "RUN_CANCELLED"
    RUN_FAILED = "RUN_FAILED"
    RUN_COMPLETED = "RUN_COMPLETED"
    """Its flow run ended cleanly while the item still said it was at work."""
    RUN_GONE = "RUN_GONE"
    """Prefect no longer knows its flow run (its database was reset)."""
    LEASE_EXPIRED = "LEASE_EXPIRED"
    # The item's input or output.
    NO_PHOTO = "NO_PHOTO"
    BAD_FRAME_COUNT = "BAD_FRAME_COUNT"
    BAD_INPUT = "BAD_INPUT"
    NOT_A_VIDEO = "NOT_A_VIDEO"
    VIDEO_PROBE_TIMEOUT = "VIDEO_PROBE_TIMEOUT"
    # Wan on our GPUs.
    CUDA_OOM = "CUDA_OOM"
    GPU_FAULT = "GPU_FAULT"
    WAN_FAILED = "WAN_FAILED"
    WAN_HOST_GONE = "WAN_HOST_GONE"
    WAN_UNAVAILABLE = "WAN_UNAVAILABLE"
    WAN_PROCESS_LOST = "WAN_PROCESS_LOST"
    WAN_WIRE = "WAN_WIRE"
    WAN_CONFIG = "WAN_CONFIG"
    """The weights or a setting of the GPU host are wrong (the message says which)."""
    # Runway's API.
    HTTP_400 = "HTTP_400"
    HTTP_401 = "HTTP_401"
    HTTP_403 = "HTTP_403"
    HTTP_429 = "HTTP_429"
    HTTP_4XX = "HTTP_4XX"
    HTTP_5XX = "HTTP_5XX"
    CONNECTION = "CONNECTION"
    TIMEOUT = "TIMEOUT"
    TASK_GONE = "TASK_GONE"
    DOWNLOAD = "DOWNLOAD"
    CANCELLED = "CANCELLED"
    UNKNOWN_STATUS = "UNKNOWN_STATUS"
    RUNWAY_CONFIG = "RUNWAY_CONFIG"
    """No Runway key is set."""
    CREDITS = "CREDITS"
    """Runway has not enough credits left for the task (the balance or the monthly limit)."""
    # Runway's task failures, by family (`failureCode`).
    SAFETY_INPUT = "SAFETY.INPUT"
    SAFETY_OUTPUT = "SAFETY.OUTPUT"
    INTERNAL = "INTERNAL"
    ASSET_INVALID = "ASSET.INVALID"
    RUNWAY_FAILED = "RUNWAY_FAILED"
    """A failed task whose code is none of the families above."""
    QUALITY_CHECK = "QUALITY_CHECK"
    """The video failed an automatic check (blank, frozen, not the photo, …): see the error."""
    OTHER = "OTHER"
    """A pull worker's own code, or one stored before codes were typed: see the error text."""

    @classmethod
    def of_http_status(cls, status: int) -> FailureCode:
        """The code of an HTTP status Runway answered."""
        exact = {400: cls.HTTP_400, 422: cls.HTTP_400, 401: cls.HTTP_401, 403: cls.HTTP_403}
        if status in exact:
            return exact[status]
        if status == 429:
            return cls.HTTP_429
        return cls.HTTP_5XX if status >= 500 else cls.HTTP_4XX

    @classmethod
    def of_runway_task(cls, code: str | None) -> FailureCode:
        """The family of a failed Runway task's `failureCode` (`SAFETY.INPUT.TEXT` ->
        SAFETY_INPUT)."""
        for family in (cls.SAFETY_INPUT, cls.SAFETY_OUTPUT, cls.INTERNAL, cls.ASSET_INVALID):
            if code is not None and (code == family.value or code.startswith(family.value + ".")):
                return family
        return cls.RUNWAY_FAILED

    @classmethod
    def parse(cls, text: str) -> FailureCode:
        """A code as a pull worker sends it: one of ours, or a Runway task's `failureCode`."""
        try:
            return cls(text)
        except ValueError:
            pass
        family = cls.of_runway_task(text)
        if family is not cls.RUNWAY_FAILED:
            return family
        raise ValueError(
            f"{text!r} is not a failure code; use one of {', '.join(c.value for c in cls)} "
            "(or a Runway failureCode such as SAFETY.INPUT.TEXT)"
        )


class EventType(StrEnum):
    """What happened to an item (`item_events.type`, the webhooks' and SSE's `type`)."""

    created = "item.created"
    started = "item.started"
    progress = "item.progress"
    """At most one every 30 s per item; endpoints get it only when they ask for it."""
    rerouted = "item.rerouted"
    completed = "item.completed"
    failed = "item.failed"
    """Failed for good (no attempt left, or a permanent error)."""
    cancelled = "item.cancelled"
    review_requested = "item.review_requested"
    """Its video is held for a person (a failed check, or its group reviews it)."""
    accepted = "item.accepted"
    """A reviewer accepted its video (item.completed follows)."""
    rejected = "item.rejected"
    """A reviewer rejected its video: it is made again (the reason and provider in the data)."""
    provider_opened = "provider.opened"
    """A provider's breaker opened (a Runway model, a GPU host, a pool): it takes no items."""
    provider_closed = "provider.closed"
    """It closed again (a probe succeeded)."""


class FailureClass(StrEnum):
    """What kind of failure an attempt met (models.core.failures.RULES says what each does)."""

    input = "input"
    """The item's own input: moderation, an unusable photo. Permanent."""
    throttled = "throttled"
    """Queued behind the provider's concurrency: not a failure."""
    provider_transient = "provider_transient"
    """5xx, timeouts, lost connections: the provider's bad minute, not the item's."""
    provider_exhausted = "provider_exhausted"
    """A daily cap, the balance, a monthly limit: the model is closed until it resets."""
    provider_config = "provider_config"
    """Our key or the GPU host's setup is wrong: the provider is closed until it is fixed."""
    gpu_host = "gpu_host"
    """Out of memory, a host gone, a pipeline crash."""
    infra = "infra"
    """Our process or Prefect died before or during the attempt."""
    unknown = "unknown"
    """Anything else (a bug, an output that is no video): counted against the item."""
    output = "output"
    """The video was made but failed an automatic check: a Wan video is made again, a paid
    one is never paid again without a person's say (it is held for review)."""


class BreakerState(StrEnum):
    """A circuit breaker's state (`breakers.state`)."""

    closed = "closed"
    """Healthy: items are sent."""
    open = "open"
    """Failing: nothing is sent until `next_probe_at`."""
    half_open = "half_open"
    """One probe item is under way; its outcome closes or re-opens the breaker."""


class DeliveryStatus(StrEnum):
    """Where one webhook delivery is (`webhook_deliveries.status`)."""

    pending = "pending"
    """To be sent (again) at its next_attempt_at."""
    delivered = "delivered"
    """Its receiver answered 2xx."""
    dead = "dead"
    """Given up after REELROUTE_WEBHOOK_RETRY_HOURS; an admin may resend it."""


class DeliveryOutcome(StrEnum):
    """How one webhook delivery attempt ended (the `delivery_tallies` ledger)."""

    delivered = "delivered"
    """Its receiver answered 2xx."""
    failed = "failed"
    """It did not (it will be tried again)."""
    dead = "dead"
    """It did not, and the delivery was given up."""


class QualityAction(StrEnum):
    """What a failed automatic check of a video does (a group's choice, else the setting)."""

    accept = "accept"
    """Record the scores only: the item completes."""
    review = "review"
    """Hold the item for a person (the Review page)."""
    escalate = "escalate"
    """Make it again on the group's next option (a Wan video; a paid one is held for review)."""
