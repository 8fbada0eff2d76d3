"""The Videos page without Gradio: finished videos, newest first, of one group or all."""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col, select

from reelroute.models.assembly import Settings
from reelroute.models.core import ItemStatus, VideoItem
from reelroute.models.items import blind_ids
from reelroute.models.store import Storage, session_scope
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
        write_new(target, storage.read(stored))
    return str(target)


@cache
def private_folder(name: str) -> Path:
    """A folder of this process's own for the copies the pages show: made fresh by mkdtemp
    (mode 0700, a random name), so no other user of the machine can plant a file or a link in
    it, as they could in a fixed path under the shared /tmp."""
    return Path(tempfile.mkdtemp(prefix=f"reelroute-{name}-"))


def write_new(target: Path, data: bytes) -> None:
    """Write `data` as `target`, whole or not at all: into a new file of a random name (never
    through a symbolic link, never into a file that is there), then renamed over `target`."""
    partial = target.with_name(f".{target.name}.{secrets.token_hex(8)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(partial, flags, 0o600), "wb") as file:
        file.write(data)
    os.replace(partial, target)


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
        blind = blind_ids(session, items)
    storage = Storage(settings.store.storage_url)
    folder = cache or private_folder("videos")
    folder.mkdir(parents=True, exist_ok=True)
    videos = []
    for item in items:
        assert item.output_path is not None
        made_by = "A/B sample" if item.id in blind else PROVIDER_BADGES[item.inference_provider][0]
        caption = f"{str(item.id)[:8]} · {made_by} · {item.prompt[:60]}"
        videos.append(Video(local_copy(storage, item.output_path, folder), caption))
    return videos
