"""Small builders for data tests."""

from __future__ import annotations

import io
import uuid

from PIL import Image
from sqlmodel import Session

from reelroute.models.batches import add_batch
from reelroute.models.enums import GroupPriority, InferenceProvider
from reelroute.models.groups import create_group
from reelroute.models.settings import Settings
from reelroute.models.statistics import count_ledger
from reelroute.models.tables import Photo, VideoItem
from reelroute.models.tasks import TaskSpec


def image_bytes(
    width: int = 64,
    height: int = 48,
    fmt: str = "PNG",
    color: tuple[int, int, int] = (200, 120, 40),
) -> bytes:
    """An image of one color, encoded as `fmt`."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def add_group_with_photos(
    session: Session, count: int = 1, priority: GroupPriority = GroupPriority.normal
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    group = create_group(session, name=f"test group {uuid.uuid4().hex[:8]}", priority=priority)
    photos = [
        Photo(group_id=group.id, storage_path=f"photos/{uuid.uuid4().hex}") for _ in range(count)
    ]
    session.add_all(photos)
    session.commit()
    return group.id, [photo.id for photo in photos]


def add_items(
    session: Session,
    settings: Settings,
    count: int,
    provider: InferenceProvider | str | None = InferenceProvider.runway_gen4_turbo,
    priority: GroupPriority = GroupPriority.normal,
) -> list[VideoItem]:
    group_id, photo_ids = add_group_with_photos(session, 1, priority)
    tasks = [
        TaskSpec(photo_id=photo_ids[0], prompt=f"task {n}", inference_provider=provider)
        for n in range(count)
    ]
    items = add_batch(session, group_id=group_id, tasks=tasks, settings=settings)
    session.commit()
    return items


def ledger_counts(session: Session) -> dict[str, dict[str, int]]:
    """The count ledger's figures as plain dicts: {provider: {status: items, ..., credits}}."""
    return {p.value: counts.model_dump() for p, counts in count_ledger(session).items()}
