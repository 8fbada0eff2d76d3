"""The words of the data model: providers, statuses, group priorities, routing reasons."""

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
