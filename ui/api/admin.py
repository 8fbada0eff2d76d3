"""Admin routes: tasks, statistics, queue, cancel and retry, review (accept, reject), groups,
photos, videos."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Header, HTTPException, Query, Request, UploadFile
from fastapi import Path as FastPath
from fastapi.responses import JSONResponse, Response, StreamingResponse

from reelroute.models.assembly import Settings
from reelroute.models.core import InferenceProvider, InvalidInput, ItemStatus, NotFound
from reelroute.models.health import unavailable
from reelroute.models.intake import (
    Answer,
    Intake,
    PhotoData,
    idempotency,
    run_once,
    sha256_of,
    store_photos,
    take_in,
)
from reelroute.models.items import (
    ab_pairs,
    accept_item,
    blind_ids,
    create_group,
    etas_of,
    forget_endpoint,
    judge_pair,
    list_queue,
    pair_of,
    redo_stats,
    review_queue,
)
from reelroute.models.items import lifecycle as ops
from reelroute.models.money import set_budget, spend
from reelroute.models.outbox import endpoint_for, endpoints, webhooks
from reelroute.models.planning import eta_of, moves_of, reject_and_redo
from reelroute.models.reporting import (
    AcceptanceRow,
    Statistics,
    acceptance_table,
    provider_health,
    provider_stats,
)
from reelroute.models.store import Storage
from reelroute.ui.api.common import DB, Envelope, Role, SettingsDep, engine_of, require
from reelroute.ui.api.events import Broadcaster, TooManyStreams, event_stream
from reelroute.ui.api.forms import FormLimits, bounded_form
from reelroute.ui.api.guard import MAX_PHOTOS_PER_UPLOAD
from reelroute.ui.api.schemas import (
    AddTasksIn,
    BudgetIn,
    BudgetOut,
    ComparisonOut,
    DeliveryOut,
    GroupIn,
    GroupOut,
    ItemDetailOut,
    ItemOut,
    PairOut,
    PhotoOut,
    PickIn,
    ProviderOut,
    QueueOut,
    RedoOut,
    RejectIn,
    WebhookChange,
    WebhookIn,
    WebhookOut,
    WebhookRotate,
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


def _answered(answer: Answer) -> JSONResponse:
    """The answer, marked when it is the first answer to its Idempotency-Key sent again."""
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)


@router.post("/tasks/add", response_model=Envelope[list[ItemOut]])
def add_tasks(
    body: AddTasksIn, db: DB, settings: SettingsDep, idempotency_key: IdempotencyHeader = None
) -> Any:
    """Create one item per task, routed by the policy; all of them or none (SEED.md §2.1).
    With an `Idempotency-Key`, a repeat of the request answers the first answer again."""

    def work() -> Any:
        done = take_in(db, Intake(group_id=body.group_id, tasks=body.tasks), settings=settings)
        return Envelope(data=[ItemOut.of(item) for item in done.items]).model_dump(mode="json")

    return _answered(
        run_once(
            db,
            key=idempotency_key,
            scope="tasks/add",
            fingerprint=idempotency.json_hash(body.model_dump(mode="json")),
            settings=settings,
            work=work,
        )
    )


@router.get("/stats")
def stats(db: DB) -> Envelope[Statistics]:
    """Per provider: the seed's counts (total, pending, processing, completed, failed), plus
    cancelled, success rate, median and p90 seconds to finish, credits and dollars spent, and
    the backlog of items waiting to start."""
    return Envelope(data=provider_stats(db))


@router.get("/stats/redos")
def redos(db: DB) -> Envelope[list[RedoOut]]:
    """Videos made again per provider, Wan preset and group, and what those not kept cost."""
    return Envelope(
        data=[
            RedoOut(
                provider=InferenceProvider(entry.provider),
                wan_preset=entry.wan_preset,
                group_id=entry.group_id,
                redos=entry.redos,
                by_check=entry.by_check,
                credits=entry.credits,
            )
            for entry in redo_stats(db)
        ]
    )


@router.get("/stats/acceptance")
def acceptance(db: DB, settings: SettingsDep) -> Envelope[list[AcceptanceRow]]:
    """How often each provider's (and Wan preset's) videos are kept, over every group and per
    group: kept, judged, the share with its 95 % Wilson interval, and the share routing
    expects (docs/routing.md)."""
    return Envelope(data=acceptance_table(db, settings))


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
    waiting = unavailable(db)
    blind = blind_ids(db, page.items)
    return Envelope(
        data=QueueOut(
            items=[
                ItemOut.of(item, etas.get(item.id), waiting, blind=item.id in blind)
                for item in page.items
            ],
            next_cursor=page.next_cursor,
        )
    )


@router.get("/items/{item_id}")
def item(item_id: uuid.UUID, db: DB) -> Envelope[ItemDetailOut]:
    """One item as it stands: status, provider and why (and its moves), attempts, progress,
    queue position, ETA, due time, cost, and the address of its video once there is one."""
    found = ops.get_item(db, item_id)
    waiting = unavailable(db)
    blind = bool(blind_ids(db, [found]))
    shown = ItemOut.of(found, eta_of(db, item_id), waiting, blind=blind)
    out = ItemDetailOut.model_validate(shown.model_dump())
    if blind:
        return Envelope(data=out)
    if found.output_path is not None:
        out.video_url = f"/api/admin/items/{item_id}/video"
    out.moves = [
        f"{move.moved_at.isoformat()} {move.from_provider.value} -> {move.to_provider.value}: "
        f"{move.reason}"
        for move in moves_of(db, item_id)
    ]
    return Envelope(data=out)


@router.get("/providers")
def providers(db: DB) -> Envelope[list[ProviderOut]]:
    """Each Runway model's, GPU host's and pool's health: its breaker's state, why it opened,
    the next probe, and its failures by class."""
    return Envelope(
        data=[
            ProviderOut.model_validate(entry, from_attributes=True) for entry in provider_health(db)
        ]
    )


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
    """Register a webhook endpoint. The answer holds its signing secret (Standard Webhooks,
    `whsec_…`, random): give it to the receiver; it is not shown again. The URL is resolved now:
    a private address is refused unless REELROUTE_WEBHOOK_ALLOW_NETWORKS allows it. A URL that
    is registered already is 409 (change it with PATCH, or rotate its secret)."""
    endpoint, secret = endpoints.register(db, settings, url=body.url, events=body.events)
    return Envelope(data=WebhookOut.of(endpoint, secret))


@router.get("/webhooks")
def list_webhooks(db: DB) -> Envelope[list[WebhookOut]]:
    """The registered endpoints (without secrets), with their receivers' latest answers."""
    return Envelope(data=[WebhookOut.of(e) for e in endpoints.list_endpoints(db)])


@router.patch("/webhooks/{endpoint_id}")
def change_webhook(endpoint_id: uuid.UUID, body: WebhookChange, db: DB) -> Envelope[WebhookOut]:
    """Change the events an endpoint wants, or disable it (no new deliveries; pending ones
    wait) and enable it again."""
    endpoint = endpoints.change(
        db, endpoint_id, events=body.events, all_events=body.all_events, enabled=body.enabled
    )
    return Envelope(data=WebhookOut.of(endpoint))


@router.post("/webhooks/{endpoint_id}/rotate")
def rotate_webhook(
    endpoint_id: uuid.UUID, body: WebhookRotate, db: DB, settings: SettingsDep
) -> Envelope[WebhookOut]:
    """A new signing secret (in the answer, shown once); the old one keeps signing too for
    `overlap_hours`, both signatures in one header, so the receiver can switch calmly."""
    endpoint, secret = endpoints.rotate(db, settings, endpoint_id, overlap_hours=body.overlap_hours)
    return Envelope(data=WebhookOut.of(endpoint, secret))


@router.delete("/webhooks/{endpoint_id}")
def delete_webhook(endpoint_id: uuid.UUID, db: DB) -> Envelope[dict[str, str]]:
    """Delete an endpoint and its deliveries."""
    forget_endpoint(db, endpoint_id)
    endpoints.delete(db, endpoint_id)
    return Envelope(data={"deleted": str(endpoint_id)})


@router.get("/webhooks/dead")
def dead_deliveries(db: DB) -> Envelope[list[DeliveryOut]]:
    """The deliveries given up on after REELROUTE_WEBHOOK_RETRY_HOURS, newest first."""
    return Envelope(data=[DeliveryOut.of(dead) for dead in webhooks.dead_letters(db)])


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
    responses={
        200: {"content": {"text/event-stream": {}}},
        503: {"description": "Too many event streams are open; retry after Retry-After."},
    },
)
async def events(
    request: Request,
    group_id: uuid.UUID | None = None,
    last_event_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    last_event_header: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_ID)] = None,
) -> StreamingResponse:
    """Server-Sent Events: every item event (of one group, with `group_id`) as it happens,
    `id` the event's number, `event` its type, `data` its JSON (the webhooks' payload).
    Resumes after `Last-Event-ID` (the header a reconnecting EventSource sends, or the query
    parameter); without one, starts with the next event."""
    settings: Settings = request.app.state.settings
    broadcaster: Broadcaster | None = getattr(request.app.state, "broadcaster", None)
    if broadcaster is None:
        broadcaster = request.app.state.broadcaster = Broadcaster(
            engine_of(request), settings.api.sse_max_streams
        )
    try:
        subscriber = await broadcaster.subscribe(group_id)
    except TooManyStreams:
        raise HTTPException(
            503,
            f"{settings.api.sse_max_streams} event streams are open (REELROUTE_SSE_MAX_STREAMS); "
            "try again shortly",
            headers={"Retry-After": "5"},
        ) from None
    after = last_event_header if last_event_header is not None else last_event_id
    stream = event_stream(broadcaster, subscriber, settings.api.public_url, after=after)
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
        wan_full_quality=body.wan_full_quality,
        quality_action=body.quality_action,
        quality_thresholds=body.quality_thresholds,
        review_share=body.review_share,
        shadow_rate=body.shadow_rate,
        shadow_provider=body.shadow_provider,
        keep_original_photos=body.keep_original_photos,
    )
    return Envelope(data=GroupOut.of(group))


@router.get("/review")
def review(db: DB, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Envelope[list[ItemOut]]:
    """The items whose video is held for a person, the longest waiting first."""
    return Envelope(data=[ItemOut.of(item) for item in review_queue(db, limit=limit)])


@router.get("/review/pairs")
def review_pairs(
    db: DB, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> Envelope[list[PairOut]]:
    """Blind A/B pairs waiting for a pick, the oldest first: two videos of one photo as A and
    B, in an order fixed per pair that does not say who made which."""
    return Envelope(
        data=[
            PairOut(
                pair_id=pair.id,
                photo_id=pair.item.photo_id,
                prompt=pair.item.prompt,
                a_video=f"/api/admin/review/pairs/{pair.id}/a",
                b_video=f"/api/admin/review/pairs/{pair.id}/b",
            )
            for pair in ab_pairs(db, limit=limit)
        ]
    )


@router.get(
    "/review/pairs/{pair_id}/{side}",
    response_class=Response,
    responses={200: {"content": {"video/mp4": {}}}},
)
def pair_video(
    pair_id: uuid.UUID, side: Literal["a", "b"], db: DB, settings: SettingsDep
) -> Response:
    """Video A or B of a blind pair (named `a.mp4` or `b.mp4`, nothing of who made it)."""
    pair = pair_of(db, pair_id)
    shown = pair.a if side == "a" else pair.b
    assert shown.output_path is not None  # a pair is made of two finished videos
    return _stream_video(settings, shown.output_path)


@router.post("/review/pairs/{pair_id}")
def pick(pair_id: uuid.UUID, body: PickIn, db: DB) -> Envelope[ComparisonOut]:
    """Record which video of a blind pair is better (a, b, or both fine); the answer says who
    made which."""
    done = judge_pair(db, pair_id=pair_id, better=body.better)
    return Envelope(data=ComparisonOut.model_validate(done, from_attributes=True))


@router.post("/items/{item_id}/accept")
def accept(item_id: uuid.UUID, db: DB) -> Envelope[ItemOut]:
    """Accept a held video: the item completes (item.accepted, item.completed)."""
    return Envelope(data=ItemOut.of(accept_item(db, item_id=item_id)))


@router.post("/items/{item_id}/reject")
def reject(item_id: uuid.UUID, body: RejectIn, db: DB, settings: SettingsDep) -> Envelope[ItemOut]:
    """Reject a held video: it is kept aside, and the item is made again on `provider` (the
    group's next option when unset) as its next attempt (item.rejected)."""
    storage = Storage(settings.store.storage_url)
    item = reject_and_redo(
        db, settings, storage, item_id=item_id, reason=body.reason, provider=body.provider
    )
    return Envelope(data=ItemOut.of(item))


def upload_photos(
    group_id: uuid.UUID,
    db: DB,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="JPEG, PNG, WebP or HEIC images")],
    idempotency_key: IdempotencyHeader = None,
) -> Any:
    """Store photos in a group (at most 50 in one upload); one bad file refuses them all.
    With an `Idempotency-Key`, a repeat of the upload answers the first answer again. Each file
    is read from its spooled upload in chunks, never whole."""
    if len(files) > MAX_PHOTOS_PER_UPLOAD:
        raise InvalidInput(
            [f"files: {len(files)} photos; upload at most {MAX_PHOTOS_PER_UPLOAD} at once"]
        )
    uploads: list[tuple[str, PhotoData]] = [
        (upload.filename or "photo", upload.file) for upload in files
    ]

    def work() -> Any:
        photos = store_photos(
            db,
            storage=Storage(settings.store.storage_url),
            group_id=group_id,
            files=uploads,
            settings=settings,
        )
        return Envelope(data=[PhotoOut.of(photo) for photo in photos]).model_dump(mode="json")

    return _answered(
        run_once(
            db,
            key=idempotency_key,
            scope=f"photos:{group_id}",
            fingerprint=idempotency.request_hash(
                *[f"{name}\n{sha256_of(data)}" for name, data in uploads]
            ),
            settings=settings,
            work=work,
        )
    )


router.add_api_route(
    "/groups/{group_id}/photos",
    upload_photos,
    methods=["POST"],
    response_model=Envelope[list[PhotoOut]],
    route_class_override=bounded_form(FormLimits(files=MAX_PHOTOS_PER_UPLOAD, fields=2)),
)


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
    return _stream_video(settings, item.output_path)


def _stream_video(settings: Settings, stored: str) -> Response:
    """A stored video, streamed in chunks with its length."""
    storage = Storage(settings.store.storage_url)
    size = storage.size(stored)  # NotFound before the answer starts
    return StreamingResponse(
        storage.chunks(stored), media_type="video/mp4", headers={"Content-Length": str(size)}
    )
