"""Pull workers (SEED.md §2.2; workers outside Prefect): next task, heartbeat, complete, fail."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from reelroute.models.assembly import Settings
from reelroute.models.core import (
    InferenceProvider,
    InvalidInput,
    InvalidTransition,
    ItemStatus,
    Photo,
    VideoItem,
    control_problem,
    info,
)
from reelroute.models.intake import upright_bytes
from reelroute.models.items import Claim, complete_with_video
from reelroute.models.items import lifecycle as ops
from reelroute.models.money import GpuPrices
from reelroute.models.store import Storage, session_scope
from reelroute.providers.base import GenerationResult
from reelroute.providers.video import VideoInfo, probe_video_file
from reelroute.ui.api.common import DB, Envelope, Role, SettingsDep, engine_of, require
from reelroute.ui.api.forms import FormLimits, bounded_form
from reelroute.ui.api.schemas import FailIn, HeartbeatIn, ItemOut, NextTaskIn, NextTaskOut

if TYPE_CHECKING:
    from reelroute.flows.quality import Checked

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
COMPLETE_FIELDS = 4
"""attempt, worker_id, cost_credits, and room for one more a client may send."""


async def _item_being_made(request: Request) -> None:
    """Before an upload's body is read: the item exists and is being made (NotFound,
    InvalidTransition); the attempt and worker are fenced once the form is read."""
    try:
        item_id = uuid.UUID(str(request.path_params["item_id"]))
    except (KeyError, ValueError):
        return  # the route's own validation answers 422
    engine = engine_of(request)

    def check() -> None:
        with session_scope(engine) as db:
            item = ops.get_item(db, item_id)
            if item.status is not ItemStatus.processing:
                raise InvalidTransition(
                    f"item {item_id} is {item.status.value}, not being made: nothing to complete"
                )

    await run_in_threadpool(check)


async def complete(
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
    stores nothing. Before the body is read, the item must exist and be being made; the form
    is one file and a few short fields (more is refused as it arrives); the fence is checked,
    then the upload (spooled to disk as it came in) is copied to a temporary file (at most
    REELROUTE_MAX_VIDEO_BYTES), decoded and checked there as a flow run's video is (a few at
    once, waiting without holding a thread) outside any database transaction, and its group's
    action taken: the answer is the item completed with its scores, held for review, or back
    to pending on the next option (escalated); the completion is one short fenced
    transaction."""
    if (control := control_problem(worker_id)) is not None:
        raise InvalidInput([f"worker_id: {control}"])
    engine = engine_of(request)

    def fence() -> tuple[Claim, str | None]:
        with session_scope(engine) as db:
            ops.check_holder(db, item_id=item_id, attempt=attempt, worker_id=worker_id)
            item = ops.get_item(db, item_id)
            check_cost(item, cost_credits)
            photo = db.get(Photo, item.photo_id) if item.photo_id else None
            return ops.claim_of(item, worker_id), photo.storage_path if photo else None

    claim, photo_path = await run_in_threadpool(fence)
    with tempfile.TemporaryDirectory(prefix="reelroute-upload-") as folder:
        path = Path(folder) / "video.mp4"
        await run_in_threadpool(_save_limited, video, path, settings.api.max_video_bytes)
        async with _probing():
            found = await run_in_threadpool(probe_video_file, str(path))
            checked = await run_in_threadpool(
                _checked, engine, settings, claim, path, found, cost_credits, photo_path
            )
        if checked.escalated:  # made again elsewhere: this video is not kept

            def again() -> VideoItem:
                with session_scope(engine) as db:
                    return ops.get_item(db, item_id)

            return Envelope(data=ItemOut.of(await run_in_threadpool(again)))

        def finish() -> VideoItem:
            with session_scope(engine) as db:
                return complete_with_video(
                    db,
                    Storage(settings.store.storage_url),
                    item_id=item_id,
                    group_id=claim.group_id,
                    attempt=attempt,
                    worker_id=worker_id,
                    video=path,
                    cost_credits=cost_credits,
                    # a pull worker's GPU is not known: its seconds cost the `*` price
                    made_by=ops.MadeBy(hour_cost=GpuPrices.of(settings).hour_cost(None)),
                    quality=checked.quality,
                    review_reason=checked.review_reason,
                )

        done = await run_in_threadpool(finish)
    return Envelope(data=ItemOut.of(done))


def _checked(
    engine: sa.Engine,
    settings: Settings,
    claim: Claim,
    path: Path,
    found: VideoInfo,
    cost_credits: int,
    photo_path: str | None,
) -> Checked:
    """A pull worker's video checked as a flow run's is, and its group's action carried out
    (flows.quality): held for a person, made again elsewhere, or to be completed with its
    scores."""
    from reelroute.flows.quality import Checked, check_and_decide

    if not settings.quality.checks or photo_path is None:
        return Checked(None)
    stored = Storage(settings.store.storage_url).read(photo_path)
    result = GenerationResult(
        video=path.read_bytes(),  # at most REELROUTE_MAX_VIDEO_BYTES, as a flow run's video
        model=f"pull worker {claim.worker_id}",
        cost_credits=cost_credits,
        provider_task_id=None,
        frames=found.frames,
        fps=found.fps,
        width=found.width,
        height=found.height,
        frames_asked=wan_frames_asked(claim, found.fps, settings),
    )
    photo = upright_bytes(stored, settings.api.photo_max_side)
    return check_and_decide(engine, settings, claim, result, photo)


router.add_api_route(
    "/tasks/{item_id}/complete",
    complete,
    methods=["POST"],
    route_class_override=bounded_form(
        FormLimits(files=1, fields=COMPLETE_FIELDS, field_bytes=1024, before_body=_item_being_made)
    ),
)


@asynccontextmanager
async def _probing() -> AsyncIterator[None]:
    """One of PROBES_AT_ONCE decodes: waits on the event loop, not on a thread of the pool
    that serves the other routes (heartbeats, the admin API)."""
    while not _probes.acquire(blocking=False):
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        _probes.release()


def wan_frames_asked(claim: Claim, fps: float, settings: Settings) -> int | None:
    """The frames a pull worker's Wan video should have when the task named none: its duration
    at the video's fps (4k+1, as Wan makes them), else REELROUTE_WAN_FRAMES; None (length not
    judged) when neither is known."""
    if claim.inference_provider is not InferenceProvider.wan_local or claim.frame_num:
        return None
    if claim.duration_s is not None:
        return 4 * round(claim.duration_s * fps / 4) + 1
    return settings.wan.frames


CHUNK = 1024 * 1024


def check_cost(item: VideoItem, cost_credits: int) -> None:
    """A worker's reported cost is believed up to the most one video of the item's model can
    cost (InvalidInput beyond): a worker cannot use up a budget with one report."""
    most = info(item.inference_provider).most_credits
    if cost_credits > most:
        raise InvalidInput(
            [
                f"cost_credits: {cost_credits:,} is more than one {item.inference_provider.value} "
                f"video can cost ({most:,}); report the credits the provider charged"
            ]
        )


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
    check_cost(ops.get_item(db, item_id), body.cost_credits or 0)
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
