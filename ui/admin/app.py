"""The Gradio admin: one tab per page, a sandbox banner, login with the admin token."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from html import escape
from typing import TypeVar

import gradio as gr
import sqlalchemy as sa
from fastapi import FastAPI
from starlette.routing import Mount

from reelroute.models.assembly import Settings
from reelroute.models.core import QualityAction
from reelroute.models.store import Storage
from reelroute.ui.admin import (
    budgets,
    new_tasks,
    providers,
    queue,
    review,
    statistics,
    videos,
    webhooks,
)
from reelroute.ui.admin.context import AdminContext, prefect_ui_url
from reelroute.ui.views.queue import CSS

T = TypeVar("T")
ADMIN_PATH = "/admin"
USERNAME = "admin"
SANDBOX_BANNER = (
    '<div class="rr-sandbox" id="sandbox-banner">SANDBOX MODE: Runway calls go to the bundled '
    "emulator and Wan runs a tiny random model. Videos are real files, not real pictures; "
    "nothing is paid. {quality}</div>"
)
QUALITY_NOTES = {
    QualityAction.accept: "The tiny model's noise fails the first-frame check; a failed check "
    "is recorded only (REELROUTE_QUALITY_ACTION=accept), so videos complete. Give a group the "
    "action review or escalate to see the Review page at work.",
    QualityAction.review: "The tiny model's noise fails the first-frame check, and failed "
    "checks are held for a person (REELROUTE_QUALITY_ACTION=review): Wan videos wait on the "
    "Review page.",
    QualityAction.escalate: "The tiny model's noise fails the first-frame check, and failed "
    "checks are made again on the group's next option (REELROUTE_QUALITY_ACTION=escalate): "
    "Wan videos are redone by the Runway emulator.",
}


def sandbox_banner(settings: Settings) -> str:
    """The sandbox banner, with what a failed check does here."""
    if not settings.quality.checks:
        return SANDBOX_BANNER.format(quality="Videos are not checked (REELROUTE_QUALITY_CHECKS).")
    return SANDBOX_BANNER.format(quality=escape(QUALITY_NOTES[settings.quality.action]))


def in_a_running_loop(make: Callable[[], T]) -> T:
    """`make()` inside a running event loop (closed afterwards).

    Gradio makes its locks with a fresh event loop each time none is running, and never closes
    those loops; building inside a running loop leaks none.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:

        async def inside() -> T:
            return make()

        return asyncio.run(inside())
    return make()


def build_admin(context: AdminContext) -> gr.Blocks:
    """The admin pages for `context` (not mounted)."""
    return in_a_running_loop(lambda: _blocks(context))


def _blocks(context: AdminContext) -> gr.Blocks:
    blocks = gr.Blocks(title="reelroute admin")
    with blocks:
        if context.settings.sandbox:
            gr.HTML(sandbox_banner(context.settings))
        links = ["[REST API](/docs)"]
        if context.prefect_ui_url:
            links.append(f"[Prefect UI]({context.prefect_ui_url})")
        gr.Markdown(f"## reelroute admin\nPhotos to short videos · {' · '.join(links)}")
        with gr.Tab("New tasks"):
            new_tasks.build(context, blocks)
        with gr.Tab("Queue"):
            queue.build(context, blocks)
        with gr.Tab("Statistics"):
            statistics.build(context, blocks)
        with gr.Tab("Videos"):
            videos.build(context, blocks)
        with gr.Tab("Review"):
            review.build(context, blocks)
        with gr.Tab("Budgets"):
            budgets.build(context, blocks)
        with gr.Tab("Providers"):
            providers.build(context, blocks)
        with gr.Tab("Webhooks"):
            webhooks.build(context, blocks)
    return blocks


def check_login(settings: Settings, username: str, password: str) -> bool:
    """The admin logs in as `admin` with REELROUTE_ADMIN_TOKEN as the password (constant time)."""
    token = settings.api.admin_token
    if token is None:
        return False
    return secrets.compare_digest(username.encode(), USERNAME.encode()) & secrets.compare_digest(
        password.encode(), token.get_secret_value().encode()
    )


def mount_admin(app: FastAPI, settings: Settings, engine: sa.Engine) -> FastAPI:
    """Mount the admin at /admin of `app`, behind the login."""
    return in_a_running_loop(lambda: _mount(app, settings, engine))


def _mount(app: FastAPI, settings: Settings, engine: sa.Engine) -> FastAPI:
    context = AdminContext(settings=settings, engine=engine, prefect_ui_url=prefect_ui_url())
    storage = Storage(settings.store.storage_url)
    local_root = storage.local_path("")
    message = (
        "Log in as admin with the admin token (REELROUTE_ADMIN_TOKEN; `reelroute up` keeps one "
        "in data/admin-token)."
        if settings.api.admin_token is not None
        else "REELROUTE_ADMIN_TOKEN is not set: set it and restart to log in."
    )
    gr.mount_gradio_app(
        app,
        _blocks(context),
        path=ADMIN_PATH,
        auth=lambda username, password: check_login(settings, username, password),
        auth_message=message,
        allowed_paths=[local_root] if local_root else None,
        max_file_size=settings.api.max_upload_bytes,
        ssr_mode=False,
        css=CSS,
        footer_links=[],
        mcp_server=False,
    )
    # The web app's guard checks an upload's session cookie against the admin's logins.
    (mounted,) = [r for r in app.routes if isinstance(r, Mount) and r.path == ADMIN_PATH]
    app.state.admin_app = mounted.app
    return app
