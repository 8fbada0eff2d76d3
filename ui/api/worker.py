"""Pull workers (SEED.md §2.2; workers outside Prefect): next task, heartbeat, complete, fail."""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.tables import Photo
from reelroute.models.core.text import control_problem
from reelroute.models.items import lifecycle as ops
from reelroute.models.items.videos import complete_with_video
from reelroute.models.store.db import session_scope
from reelroute.models.store.files import Storage
from reelroute.providers.video import probe_video_file
from reelroute.ui.api.common import DB, Envelope, Role, SettingsDep, engine_of, require
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


PROBES_AT_ONCE = 2
"""Uploaded videos decoded at once by one web process (each decode is an ffmpeg process)."""
_probes = threading.BoundedSemaphore(PROBES_AT_ONCE)


@router.post("/tasks/{item_id}/complete")
def complete(
    item_id: uuid.UUID,
    request: Request,
    settings: SettingsDep,
    attempt: Annotated[int, Form(ge=1, le=1000)],
    worker_id: Annotated[str, Form(min_length=1, max_length=200)],
    video: Annotated[UploadFile, File(description="the mp4")],
    cost_credits: Annotated[int, Form(ge=0, le=10**9)] = 0,
) -> Envelope[ItemOut]:
    """Complete the item with its video (an MP4/MOV with a video stream of more than one frame),
    fenced by attempt and worker: a refused call (409) leaves the item's video as it was and
    stores nothing. The fence is checked first; the upload is then streamed to a temporary
    file (at most REELROUTE_MAX_VIDEO_BYTES) and checked there (a few at once) outside any
    database transaction; the completion itself is one short fenced transaction."""
    if (control := control_problem(worker_id)) is not None:
        raise InvalidInput([f"worker_id: {control}"])
    engine = engine_of(request)
    with session_scope(engine) as db:
        ops.check_holder(db, item_id=item_id, attempt=attempt, worker_id=worker_id)
        group_id = ops.get_item(db, item_id).group_id
    with tempfile.TemporaryDirectory(prefix="reelroute-upload-") as folder:
        path = Path(folder) / "video.mp4"
        _save_limited(video, path, settings.api.max_video_bytes)
        with _probes:
            probe_video_file(str(path))
        with session_scope(engine) as db:
            done = complete_with_video(
                db,
                Storage(settings.store.storage_url),
                item_id=item_id,
                group_id=group_id,
                attempt=attempt,
                worker_id=worker_id,
                video=path,
                cost_credits=cost_credits,
            )
    return Envelope(data=ItemOut.of(done))


CHUNK = 1024 * 1024


def _save_limited(upload: UploadFile, path: Path, limit: int) -> None:
    """Copy the upload to `path` in chunks; InvalidInput past `limit` bytes."""
    written = 0
    with path.open("wb") as file:
        while chunk := upload.file.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise InvalidInput(
                    [f"video: over the limit of {limit:,} bytes (REELROUTE_MAX_VIDEO_BYTES)"]
                )
            file.write(chunk)


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
