"""Admin routes: tasks, statistics, queue, cancel and retry, groups, photos, videos."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Query, Request, UploadFile
from fastapi import Path as FastPath
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlmodel import col, select

from reelroute.models import idempotency, webhooks
from reelroute.models import lifecycle as ops
from reelroute.models.batches import add_batch
from reelroute.models.budgets import set_budget, spend
from reelroute.models.enums import InferenceProvider, ItemStatus
from reelroute.models.errors import NotFound
from reelroute.models.groups import create_group
from reelroute.models.idempotency import Replay
from reelroute.models.queue import etas_of, list_queue
from reelroute.models.replanning import eta_of, moves_of
from reelroute.models.statistics import Statistics, provider_stats
from reelroute.models.storage import Storage, store_photos
from reelroute.models.tables import WebhookEndpoint
from reelroute.models.webhooks import endpoint_for
from reelroute.ui.api.common import DB, Envelope, Role, SettingsDep, engine_of, require
from reelroute.ui.api.events import event_stream
from reelroute.ui.api.schemas import (
    AddTasksIn,
    BudgetIn,
    BudgetOut,
    DeliveryOut,
    GroupIn,
    GroupOut,
    ItemDetailOut,
    ItemOut,
    PhotoOut,
    QueueOut,
    WebhookIn,
    WebhookOut,
)

MAX_ID = 2**62  # ids of events and deliveries (BIGINT; SQLite's INTEGER)
router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[require(Role.admin)])


IdempotencyHeader = Annotated[
    str | None,
    Header(
        description="Send the request again with the same key (e.g. after a timeout) and get "
        "the first answer again: nothing is created twice. Kept 24 h."
    ),
]


def _replayed(replay: Replay) -> JSONResponse:
    return JSONResponse(
        replay.body, status_code=replay.status_code, headers={"Idempotent-Replayed": "true"}
    )


@router.post("/tasks/add", response_model=Envelope[list[ItemOut]])
def add_tasks(
    body: AddTasksIn, db: DB, settings: SettingsDep, idempotency_key: IdempotencyHeader = None
) -> Any:
    """Create one item per task, routed by the policy; all of them or none (SEED.md §2.1).
    With an `Idempotency-Key`, a repeat of the request answers the first answer again."""
    if idempotency_key is not None:
        replay = idempotency.begin(
            db,
            key=idempotency_key,
            scope="tasks/add",
            fingerprint=idempotency.json_hash(body.model_dump(mode="json")),
            hours=settings.idempotency_hours,
        )
        if replay is not None:
            return _replayed(replay)
    created = add_batch(db, group_id=body.group_id, tasks=body.tasks, settings=settings)
    answer: Envelope[list[ItemOut]] = Envelope(data=[ItemOut.of(item) for item in created])
    if idempotency_key is not None:
        idempotency.finish(
            db, key=idempotency_key, status_code=200, body=answer.model_dump(mode="json")
        )
    return answer


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


@router.post("/webhooks")
def register_webhook(body: WebhookIn, db: DB, settings: SettingsDep) -> Envelope[WebhookOut]:
    """Register a webhook endpoint (or change its events). The answer holds its signing secret
    (Standard Webhooks, `whsec_…`): give it to the receiver; it is not shown again."""
    endpoint = webhooks.register(db, settings, url=body.url, events=body.events)
    out = WebhookOut.model_validate(endpoint, from_attributes=True)
    out.secret = webhooks.endpoint_secret(settings, endpoint.url)
    return Envelope(data=out)


@router.get("/webhooks")
def list_webhooks(db: DB) -> Envelope[list[WebhookOut]]:
    """The registered endpoints (without secrets)."""
    found = db.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.created_at))).all()
    return Envelope(data=[WebhookOut.model_validate(e, from_attributes=True) for e in found])


@router.get("/webhooks/dead")
def dead_deliveries(db: DB) -> Envelope[list[DeliveryOut]]:
    """The deliveries given up on after REELROUTE_WEBHOOK_RETRY_HOURS, newest first."""
    return Envelope(
        data=[
            DeliveryOut(
                id=d.id or 0,
                event_id=d.event_id,
                event_type=kind,
                endpoint_url=url,
                item_id=d.item_id,
                status=d.status,
                attempts=d.attempts,
                last_status=d.last_status,
                last_error=d.last_error,
                first_attempt_at=d.first_attempt_at,
                next_attempt_at=d.next_attempt_at,
            )
            for d, url, kind in webhooks.dead_letters(db)
        ]
    )


@router.post("/webhooks/deliveries/{delivery_id}/resend")
def resend_delivery(
    delivery_id: Annotated[int, FastPath(ge=1, le=MAX_ID)], db: DB
) -> Envelope[dict[str, int]]:
    """Send a dead delivery again, with a fresh period of retries."""
    webhooks.resend(db, delivery_id)
    return Envelope(data={"id": delivery_id})


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def events(
    request: Request,
    group_id: uuid.UUID | None = None,
    last_event_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    last_event_header: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_ID)] = None,
) -> StreamingResponse:
    """Server-Sent Events: every item event (of one group, with `group_id`) as it happens,
    `id` the event's number, `event` its type, `data` its JSON (the webhooks' payload).
    Resumes after `Last-Event-ID` (the header a reconnecting EventSource sends, or the query
    parameter); without one, starts with the next event."""
    settings = request.app.state.settings
    after = last_event_header if last_event_header is not None else last_event_id
    stream = event_stream(
        engine_of(request),
        settings.public_url,
        group_id=group_id,
        after=after,
        disconnected=request.is_disconnected,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


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
        webhook_endpoint_id=endpoint_for(db, body.webhook_url),
    )
    return Envelope(data=GroupOut.of(group))


@router.post("/groups/{group_id}/photos", response_model=Envelope[list[PhotoOut]])
def upload_photos(
    group_id: uuid.UUID,
    db: DB,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="JPEG, PNG or WebP images")],
    idempotency_key: IdempotencyHeader = None,
) -> Any:
    """Store photos in a group; one bad file refuses them all. With an `Idempotency-Key`, a
    repeat of the upload answers the first answer again."""
    uploads = [
        (upload.filename or "photo", upload.file.read(settings.max_upload_bytes + 1))
        for upload in files
    ]
    if idempotency_key is not None:
        parts = [part for name, data in uploads for part in (name, data)]
        replay = idempotency.begin(
            db,
            key=idempotency_key,
            scope=f"photos:{group_id}",
            fingerprint=idempotency.request_hash(*parts),
            hours=settings.idempotency_hours,
        )
        if replay is not None:
            return _replayed(replay)
    photos = store_photos(
        db,
        storage=Storage(settings.storage_url),
        group_id=group_id,
        files=uploads,
        settings=settings,
    )
    answer: Envelope[list[PhotoOut]] = Envelope(data=[PhotoOut.of(photo) for photo in photos])
    if idempotency_key is not None:
        idempotency.finish(
            db, key=idempotency_key, status_code=200, body=answer.model_dump(mode="json")
        )
    return answer


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
