"""Small builders for data tests."""

from __future__ import annotations

import io
import uuid
from datetime import datetime

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from PIL import Image
from sqlmodel import Session

from reelroute.models.assembly import Settings
from reelroute.models.core.enums import GroupPriority, InferenceProvider, Pool
from reelroute.models.core.tables import Photo, VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.core.workers import flow_run_worker_id
from reelroute.models.intake.batches import add_batch
from reelroute.models.items.groups import create_group
from reelroute.models.items.lifecycle import Claim, claim_item, claim_next
from reelroute.models.store.ledger import count_ledger


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


def textured_picture(seed: int, width: int = 232, height: int = 158) -> npt.NDArray[np.uint8]:
    """A photo-like RGB picture: discs of colour over a gradient, with grain (what the quality
    checks can match and see move)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    picture = np.zeros((height, width, 3), dtype=np.float32)
    for _ in range(6):
        cx, cy, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(15, 45)
        inside = (x - cx) ** 2 + (y - cy) ** 2 < radius**2
        picture[inside] = rng.uniform(30, 225, 3)
    picture += (x[..., None] / width) * 60 + rng.normal(0, 4, picture.shape)
    return np.clip(picture, 0, 255).astype(np.uint8)


def textured_image_bytes(seed: int = 1, width: int = 128, height: int = 96) -> bytes:
    """A textured photo (`textured_picture`) as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(textured_picture(seed, width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def add_group_with_photos(
    session: Session,
    count: int = 1,
    priority: GroupPriority = GroupPriority.normal,
    wan_full_quality: bool = False,
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    group = create_group(
        session,
        name=f"test group {uuid.uuid4().hex[:8]}",
        priority=priority,
        wan_full_quality=wan_full_quality,
    )
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
    wan_full_quality: bool = False,
) -> list[VideoItem]:
    group_id, photo_ids = add_group_with_photos(session, 1, priority, wan_full_quality)
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


def reloaded(engine: sa.Engine, item_id: uuid.UUID) -> VideoItem:
    """The item as the database has it now (a fresh session)."""
    with Session(engine) as session:
        found = session.get(VideoItem, item_id)
        assert found is not None
        return found


def claim_next_item(
    session: Session,
    settings: Settings,
    pool: Pool = Pool.cloud,
    *,
    worker_id: str = "w1",
    now: datetime | None = None,
) -> Claim | None:
    """A pull worker's claim of the next item of `pool`, committed."""
    claimed = claim_next(session, pool=pool, worker_id=worker_id, settings=settings, now=now)
    session.commit()
    return claimed


def claim_by_run(
    session: Session,
    settings: Settings,
    item: VideoItem,
    *,
    worker_id: str | None = None,
    now: datetime | None = None,
) -> Claim:
    """The claim of `item` by the flow run made for its next attempt (or by `worker_id`), in
    the caller's transaction."""
    holder = worker_id
    if holder is None:
        assert item.flow_run_id is not None
        holder = flow_run_worker_id(item.flow_run_id, "gpu-host")
    claimed = claim_item(
        session,
        item_id=item.id,
        attempt=item.retry_count + 1,
        worker_id=holder,
        settings=settings,
        now=now,
    )
    assert claimed is not None
    return claimed
