"""The web app: the REST API under /api (OpenAPI at /docs) and the Gradio admin at /admin;
`reelroute web` serves it."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from reelroute.models.assembly import Settings
from reelroute.models.core import (
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StaleAttempt,
    log_context,
)
from reelroute.models.intake import KeyReused
from reelroute.models.outbox import EventPayload
from reelroute.models.store import make_engine
from reelroute.providers.base import PermanentError
from reelroute.ui.api import admin, metrics, worker
from reelroute.ui.api.guard import Guard

log = logging.getLogger(__name__)

STATUS = {
    KeyReused: 422,
    InvalidInput: 400,
    PermanentError: 400,
    NotFound: 404,
    InvalidTransition: 409,
    StaleAttempt: 409,
    Conflict: 409,
    DatabaseUnavailable: 503,
}


ITEM_IN_PATH = re.compile(
    r"/(?:items|tasks)/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)


class ItemLogContext:
    """Binds the item a request is about (`/items/{id}`, `/tasks/{id}`) to its log records."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        found = ITEM_IN_PATH.search(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        with log_context(item_id=found.group(1).lower()):
            await self.app(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    """The app for `settings`, with its own database engine; the Gradio admin at /admin."""
    app = FastAPI(
        title="reelroute",
        description="Photos to short videos on Wan GPUs or Runway. Bearer tokens: "
        "REELROUTE_ADMIN_TOKEN for /api/admin, REELROUTE_WORKER_TOKEN for /api/worker.",
        version="0.1.0",
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.store.database_url)
    app.include_router(admin.router)
    app.include_router(worker.router)
    app.include_router(metrics.router)

    @app.webhooks.post("item-event")
    def item_event(body: EventPayload) -> None:
        """What reelroute posts to a registered endpoint for each item event it subscribed to
        (the same JSON is the `data` of `GET /api/admin/events`). Signed per Standard Webhooks:
        verify `webhook-signature` over `webhook-id`, `webhook-timestamp` and the body with the
        endpoint's `whsec_…` secret; answer 2xx within REELROUTE_WEBHOOK_TIMEOUT_SECONDS. A
        delivery is sent at least once (drop repeats by `webhook-id`), in order per item."""

    for kind, status in STATUS.items():
        app.add_exception_handler(kind, _answer(status))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        return JSONResponse(
            {"success": False, "error": detail, "problems": [detail]},
            status_code=error.status_code,
            headers=error.headers,
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        message = "internal error; the server's log has the details"
        return JSONResponse(
            {"success": False, "error": message, "problems": [message]}, status_code=500
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()
        ]
        return JSONResponse(
            {"success": False, "error": "; ".join(problems), "problems": problems}, status_code=422
        )

    from reelroute.ui.admin.app import mount_admin

    mount_admin(app, settings, app.state.engine)
    # A strict CORS policy of our own: only the listed origins may read answers, without
    # credentials (the API's tokens are headers a browser never adds by itself). Its presence
    # also turns off Gradio's own CORS, which grants credentials to any origin under a Host
    # that is not localhost. The guard (outside it) refuses other sites under /admin first.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.api.allowed_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["authorization", "content-type", "idempotency-key", "last-event-id"],
        allow_credentials=False,
    )
    app.add_middleware(Guard, settings=settings)  # auth, size and throttling before any body
    app.add_middleware(ItemLogContext)  # outermost: the guard's own lines carry the item too
    return app


def _answer(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(_request: Request, error: Exception) -> JSONResponse:
        problems = getattr(error, "problems", [str(error)])
        return JSONResponse(
            {"success": False, "error": str(error), "problems": problems}, status_code=status
        )

    return handler
