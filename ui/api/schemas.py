"""Request and answer bodies of the REST API (the seed's field names where the seed has them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from reelroute.models.batches import MAX_BATCH
from reelroute.models.enums import (
    GroupPriority,
    InferenceProvider,
    ItemStatus,
    RoutedBy,
    WorkerType,
)
from reelroute.models.tables import Group, Photo, VideoItem
from reelroute.models.tasks import TaskSpec


class AddTasksIn(BaseModel):
    """`POST /api/admin/tasks/add`."""

    model_config = ConfigDict(extra="forbid")

    group_id: uuid.UUID
    tasks: list[TaskSpec] = Field(max_length=MAX_BATCH)


class ItemOut(BaseModel):
    """A video item as the API shows it."""

    id: uuid.UUID
    group_id: uuid.UUID | None
    photo_id: uuid.UUID | None
    prompt: str
    frame_num: int | None
    duration_s: int | None
    inference_provider: InferenceProvider
    status: ItemStatus
    retry_count: int
    progress: float
    worker_id: str | None
    flow_run_id: uuid.UUID | None
    output_path: str | None
    error: str | None
    failure_code: str | None
    cost_credits: int | None
    routed_by: RoutedBy | None
    route_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None

    @classmethod
    def of(cls, item: VideoItem) -> ItemOut:
        """The API view of an item."""
        return cls.model_validate(item, from_attributes=True)


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


class GroupOut(BaseModel):
    """A group."""

    id: uuid.UUID
    name: str
    priority: GroupPriority
    default_provider: InferenceProvider | None
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


class FailIn(BaseModel):
    """`POST /api/worker/tasks/{id}/fail`."""

    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1, le=1000)
    worker_id: str = Field(
        min_length=1, max_length=200, description="The worker_id that claimed the item."
    )
    error: str = Field(min_length=1, max_length=5000)
    permanent: bool = False
    failure_code: str | None = Field(default=None, max_length=100)
    cost_credits: int | None = Field(default=None, ge=0, le=10**9)
