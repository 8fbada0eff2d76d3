"""The Videos page without Gradio: finished videos, newest first, of one group or all."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col, select

from reelroute.models.core.enums import ItemStatus
from reelroute.models.core.settings import Settings
from reelroute.models.core.tables import VideoItem
from reelroute.models.store.db import session_scope
from reelroute.models.store.files import Storage
from reelroute.ui.views.queue import PROVIDER_BADGES

VIDEOS_SHOWN = 60


@dataclass(frozen=True)
class Video:
    """A finished video: a local file the page can play, and its caption."""

    path: str
    caption: str


def local_copy(storage: Storage, stored: str, folder: Path) -> str:
    """A filesystem path of a stored video: the file itself on a local store, else a copy in
    `folder` (made once)."""
    local = storage.local_path(stored)
    if local is not None:
        return local
    target = folder / stored.replace("/", "_")
    if not target.exists():
        target.write_bytes(storage.read(stored))
    return str(target)


def finished(
    engine: sa.Engine,
    settings: Settings,
    group_id: str | None,
    *,
    limit: int = VIDEOS_SHOWN,
    cache: Path | None = None,
) -> list[Video]:
    """The newest finished videos (of the group when one is given)."""
    query = select(VideoItem).where(
        col(VideoItem.status) == ItemStatus.completed, col(VideoItem.output_path).is_not(None)
    )
    if group_id:
        query = query.where(VideoItem.group_id == uuid.UUID(group_id))
    query = query.order_by(col(VideoItem.created_at).desc()).limit(limit)
    with session_scope(engine) as session:
        items = list(session.exec(query).all())
    storage = Storage(settings.store.storage_url)
    folder = cache or Path(tempfile.gettempdir()) / "reelroute-videos"
    folder.mkdir(parents=True, exist_ok=True)
    videos = []
    for item in items:
        assert item.output_path is not None
        caption = (
            f"{str(item.id)[:8]} · {PROVIDER_BADGES[item.inference_provider][0]} · "
            f"{item.prompt[:60]}"
        )
        videos.append(Video(local_copy(storage, item.output_path, folder), caption))
    return videos
