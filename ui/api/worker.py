"""Pull workers (SEED.md §2.2; workers outside Prefect): next task, heartbeat, complete, fail."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from reelroute.models import lifecycle as ops
from reelroute.models.storage import Storage
from reelroute.models.tables import Photo
from reelroute.models.videos import complete_with_video
from reelroute.providers.video import probe_mp4
from reelroute.ui.api.common import DB, Envelope, Role, SettingsDep, require
from reelroute.ui.api.schemas import FailIn, HeartbeatIn, ItemOut, NextTaskIn, NextTaskOut

router = APIRouter(prefix="/api/worker", tags=["worker"], dependencies=[require(Role.worker)])


@router.post("/next-task")
def next_task(body: NextTaskIn, db: DB, settings: SettingsDep) -> Envelope[NextTaskOut | None]:
    """Lease the next item for this worker type (`wan` takes wan_local, `runway` both Runway
    providers), atomically; `data` is null when there is nothing to do."""
    claim = ops.claim_next(
        db,
        pool=body.worker_type.pool,
        worker_id=body.worker_id,
        settings=settings,
        lease_seconds=body.lease_duration_seconds,
    )
    if claim is None:
        return Envelope(data=None)
    photo = db.get(Photo, claim.photo_id) if claim.photo_id else None
    return Envelope(
        data=NextTaskOut(
            item_id=claim.item_id,
            group_id=claim.group_id,
            photo_id=claim.photo_id,
            prompt=claim.prompt,
            leased_until=claim.leased_until,
            photo_storage_path=photo.storage_path if photo else None,
            frame_num=claim.frame_num,
            inference_provider=claim.inference_provider,
            attempt=claim.attempt,
        )
    )


@router.post("/tasks/{item_id}/heartbeat")
def heartbeat(item_id: uuid.UUID, body: HeartbeatIn, db: DB) -> Envelope[dict[str, str]]:
    """Renew the lease (and report progress); 409 when this attempt lost the item."""
    until = ops.renew_lease(
        db,
        item_id=item_id,
        attempt=body.attempt,
        worker_id=body.worker_id,
        lease_seconds=body.lease_duration_seconds,
        progress=body.progress,
    )
    return Envelope(data={"leased_until": until.isoformat()})


@router.post("/tasks/{item_id}/complete")
def complete(
    item_id: uuid.UUID,
    db: DB,
    settings: SettingsDep,
    attempt: Annotated[int, Form(ge=1, le=1000)],
    worker_id: Annotated[str, Form(min_length=1, max_length=200)],
    video: Annotated[UploadFile, File(description="the mp4")],
    cost_credits: Annotated[int, Form(ge=0, le=10**9)] = 0,
) -> Envelope[ItemOut]:
    """Complete the item with its video (a playable mp4), fenced by attempt and worker: a
    refused call (409) leaves the item's video as it was and stores nothing."""
    data = video.file.read()
    probe_mp4(data)
    item = ops.get_item(db, item_id)
    done = complete_with_video(
        db,
        Storage(settings.storage_url),
        item_id=item_id,
        group_id=item.group_id,
        attempt=attempt,
        worker_id=worker_id,
        video=data,
        cost_credits=cost_credits,
    )
    return Envelope(data=ItemOut.of(done))


@router.post("/tasks/{item_id}/fail")
def fail(item_id: uuid.UUID, body: FailIn, db: DB, settings: SettingsDep) -> Envelope[ItemOut]:
    """Record a failed attempt: retried later unless permanent or the last one (fenced)."""
    item = ops.fail_item(
        db,
        item_id=item_id,
        attempt=body.attempt,
        worker_id=body.worker_id,
        error=body.error,
        permanent=body.permanent,
        settings=settings,
        failure_code=body.failure_code,
        cost_credits=body.cost_credits,
    )
    return Envelope(data=ItemOut.of(item))
