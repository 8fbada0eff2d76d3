"""A populated system for the admin's tests: stored photos and items in every state."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from reelroute.models.assembly import Settings
from reelroute.models.core.enums import FailureCode, GroupPriority, InferenceProvider
from reelroute.models.core.tables import VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.intake.photos import store_photos
from reelroute.models.items import lifecycle as ops
from reelroute.models.items.groups import create_group
from reelroute.models.store.db import session_scope
from reelroute.models.store.files import Storage, video_path
from reelroute.providers.video import encode_mp4
from tests.models.helpers import claim_by_run, image_bytes

ADMIN, WORKER = "admin-secret-" + "a" * 32, "worker-secret-" + "w" * 32
"""The tokens of the API tests (32+ characters, distinct, as the settings demand)."""


def video(color: tuple[int, int, int]) -> bytes:
    """A playable 1-second mp4 fading in `color`."""
    frames = (np.full((64, 96, 3), [int(c * n / 8) for c in color], np.uint8) for n in range(9))
    return encode_mp4(frames, fps=8, width=96, height=64)


@dataclass
class Populated:
    group_id: uuid.UUID
    by_state: dict[str, list[uuid.UUID]] = field(default_factory=dict)


def populate(engine: sa.Engine, settings: Settings, name: str = "Beach houses") -> Populated:
    """A group with three photos and, per provider, one completed item with a real video,
    plus a failed Gen-4 item, a processing Wan item and a pending Veo item."""
    storage = Storage(settings.store.storage_url)
    colors = [(200, 80, 40), (40, 120, 200), (60, 160, 80)]
    with session_scope(engine) as session:
        group = create_group(session, name=name, priority=GroupPriority.normal)
        photos = store_photos(
            session,
            storage=storage,
            group_id=group.id,
            files=[(f"photo-{n}.png", image_bytes(96, 64, color=c)) for n, c in enumerate(colors)],
            settings=settings,
        )
        result = Populated(group.id)
        plan = [
            (InferenceProvider.wan_local, "completed"),
            (InferenceProvider.runway_gen4_turbo, "completed"),
            (InferenceProvider.runway_veo3_1, "completed"),
            (InferenceProvider.runway_gen4_turbo, "failed"),
            (InferenceProvider.wan_local, "processing"),
            (InferenceProvider.runway_veo3_1, "pending"),
        ]
        for index, (provider, state) in enumerate(plan):
            [item] = add_batch(
                session,
                group_id=group.id,
                tasks=[
                    TaskSpec(
                        photo_id=photos[index % 3].id,
                        prompt=f"the camera slowly pans across scene {index}",
                        inference_provider=provider.value,
                    )
                ],
                settings=settings,
            )
            result.by_state.setdefault(state, []).append(item.id)
            if state == "pending":
                continue
            claimed = claim_by_run(session, settings, item, worker_id=worker_of(item))
            if state == "completed":
                path = video_path(group.id, item.id)
                storage.write(path, video(colors[index % 3]))
                credits = {"wan_local": 0, "runway_gen4_turbo": 25, "runway_veo3.1": 240}
                ops.complete_item(
                    session,
                    item_id=item.id,
                    attempt=claimed.attempt,
                    worker_id=claimed.worker_id,
                    output_path=path,
                    cost_credits=credits[provider.value],
                )
            elif state == "failed":
                ops.fail_item(
                    session,
                    item_id=item.id,
                    attempt=claimed.attempt,
                    worker_id=claimed.worker_id,
                    error="Runway refused the prompt (content moderation)",
                    permanent=True,
                    settings=settings,
                    failure_code=FailureCode.SAFETY_INPUT,
                )
            elif state == "processing":
                ops.renew_lease(
                    session,
                    item_id=item.id,
                    attempt=claimed.attempt,
                    worker_id=claimed.worker_id,
                    lease_seconds=600,
                    progress=0.4,
                )
    return result


def status_of(engine: sa.Engine, item_id: uuid.UUID) -> str:
    with session_scope(engine) as session:
        item = session.get(VideoItem, item_id)
        assert item is not None
        return item.status.value


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port in a thread; yields its base URL."""
    import threading

    import uvicorn

    from reelroute.deployments.launcher import free_port, wait_until

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(f"http://127.0.0.1:{port}/docs", 30, "the app")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def worker_of(item: VideoItem) -> str:
    """The pull worker that takes items of `item`'s pool."""
    kind = "wan" if item.inference_provider is InferenceProvider.wan_local else "runway"
    return f"{kind}-worker-1"
