"""Admin routes: tasks, statistics, queue, cancel and retry, groups, photos, videos."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response

from reelroute.models import lifecycle as ops
from reelroute.models.batches import add_batch
from reelroute.models.budgets import set_budget, spend
from reelroute.models.enums import InferenceProvider, ItemStatus
from reelroute.models.errors import NotFound
from reelroute.models.groups import create_group
from reelroute.models.queue import etas_of, list_queue
from reelroute.models.replanning import eta_of, moves_of
from reelroute.models.statistics import Statistics, provider_stats
from reelroute.models.storage import Storage, store_photos
from reelroute.ui.api.common import DB, Envelope, Role, SettingsDep, engine_of, require
from reelroute.ui.api.schemas import (
    AddTasksIn,
    BudgetIn,
    BudgetOut,
    GroupIn,
    GroupOut,
    ItemDetailOut,
    ItemOut,
    PhotoOut,
    QueueOut,
)

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[require(Role.admin)])


@router.post("/tasks/add")
def add_tasks(body: AddTasksIn, db: DB, settings: SettingsDep) -> Envelope[list[ItemOut]]:
    """Create one item per task, routed by the policy; all of them or none (SEED.md §2.1)."""
    created = add_batch(db, group_id=body.group_id, tasks=body.tasks, settings=settings)
    return Envelope(data=[ItemOut.of(item) for item in created])


@router.get("/stats")
def stats(db: DB) -> Envelope[Statistics]:
    """Per provider: the seed's counts (total, pending, processing, completed, failed), plus
    cancelled, success rate, median and p90 seconds to finish, credits and dollars spent, and
    the backlog of items waiting to start."""
    return Envelope(data=provider_stats(db))


@router.get("/queue")
def queue(
    db: DB,
    provider: InferenceProvider | None = None,
    status: ItemStatus | None = None,
    group_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Envelope[QueueOut]:
    """Items newest first, filtered, a page at a time."""
    page = list_queue(
        db, provider=provider, status=status, group_id=group_id, limit=limit, cursor=cursor
    )
    etas = etas_of(db, [item.id for item in page.items])
    return Envelope(
        data=QueueOut(
            items=[ItemOut.of(item, etas.get(item.id)) for item in page.items],
            next_cursor=page.next_cursor,
        )
    )


@router.get("/items/{item_id}")
def item(item_id: uuid.UUID, db: DB) -> Envelope[ItemDetailOut]:
    """One item as it stands: status, provider and why (and its moves), attempts, progress,
    queue position, ETA, due time, cost, and the address of its video once there is one."""
    found = ops.get_item(db, item_id)
    out = ItemDetailOut.model_validate(ItemOut.of(found, eta_of(db, item_id)).model_dump())
    if found.output_path is not None:
        out.video_url = f"/api/admin/items/{item_id}/video"
    out.moves = [
        f"{move.moved_at.isoformat()} {move.from_provider.value} -> {move.to_provider.value}: "
        f"{move.reason}"
        for move in moves_of(db, item_id)
    ]
    return Envelope(data=out)


@router.get("/budgets")
def budgets(db: DB) -> Envelope[list[BudgetOut]]:
    """Every spending cap, with what its current period reserved, spent and has left."""
    return Envelope(data=[BudgetOut.of(entry) for entry in spend(db)])


@router.put("/budgets")
def put_budget(body: BudgetIn, db: DB) -> Envelope[BudgetOut]:
    """Create or change one cap (per provider, group or all paid providers; per day or month)."""
    budget = set_budget(
        db,
        scope=body.scope,
        period=body.period,
        cap_dollars=body.cap_dollars,
        provider=body.provider,
        group_id=body.group_id,
    )
    (entry,) = [e for e in spend(db) if e.budget.id == budget.id]
    return Envelope(data=BudgetOut.of(entry))


@router.post("/tasks/{item_id}/cancel")
def cancel(item_id: uuid.UUID, request: Request, settings: SettingsDep) -> Envelope[ItemOut]:
    """Cancel a pending or processing item; its flow run and Runway task are stopped too."""
    from reelroute.flows.reconcile import cancel_everywhere

    item = cancel_everywhere(engine_of(request), settings, item_id)
    return Envelope(data=ItemOut.of(item))


@router.post("/tasks/{item_id}/retry")
def retry(item_id: uuid.UUID, db: DB) -> Envelope[ItemOut]:
    """Send a failed or cancelled item back to the queue with its attempts reset."""
    return Envelope(data=ItemOut.of(ops.retry_item(db, item_id=item_id)))


@router.post("/groups")
def add_group(body: GroupIn, db: DB) -> Envelope[GroupOut]:
    """Create a group (its priority routes and orders its items)."""
    group = create_group(
        db,
        name=body.name,
        priority=body.priority,
        default_provider=body.default_provider,
        deadline_seconds=body.deadline_seconds,
        allowed_providers=body.allowed_providers,
    )
    return Envelope(data=GroupOut.of(group))


@router.post("/groups/{group_id}/photos")
def upload_photos(
    group_id: uuid.UUID,
    db: DB,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="JPEG, PNG or WebP images")],
) -> Envelope[list[PhotoOut]]:
    """Store photos in a group; one bad file refuses them all."""
    uploads = [
        (upload.filename or "photo", upload.file.read(settings.max_upload_bytes + 1))
        for upload in files
    ]
    photos = store_photos(
        db,
        storage=Storage(settings.storage_url),
        group_id=group_id,
        files=uploads,
        settings=settings,
    )
    return Envelope(data=[PhotoOut.of(photo) for photo in photos])


@router.get(
    "/items/{item_id}/video",
    response_class=Response,
    responses={200: {"content": {"video/mp4": {}}}},
)
def video(item_id: uuid.UUID, db: DB, settings: SettingsDep) -> Response:
    """The finished video of an item."""
    item = ops.get_item(db, item_id)
    if item.output_path is None:
        raise NotFound(f"item {item_id} has no video yet (it is {item.status.value})")
    data = Storage(settings.storage_url).read(item.output_path)
    return Response(data, media_type="video/mp4")
