"""Storing a finished video: the fence first, then the file.

An attempt's video goes to a path of its own (`staged_video_path`); only once the fenced
completion of that attempt (attempt number and holder) is accepted is it moved to the item's
video path. A refused writer (a zombie attempt, a stale pull worker, a call on an item nobody
holds) never touches the item's video, and its staged file is deleted.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlmodel import Session

from reelroute.models.core.tables import VideoItem
from reelroute.models.items.lifecycle import MadeBy, complete_item
from reelroute.models.store.files import Storage, staged_video_path, video_path


def complete_with_video(
    session: Session,
    storage: Storage,
    *,
    item_id: uuid.UUID,
    group_id: uuid.UUID | None,
    attempt: int,
    worker_id: str,
    video: bytes | Path,
    cost_credits: int = 0,
    made_by: MadeBy | None = None,
    quality: dict[str, Any] | None = None,
    review_reason: str | None = None,
) -> VideoItem:
    """Complete the item with `video` as attempt `attempt` of `worker_id` (fenced), in the
    caller's transaction. Raises StaleAttempt, and leaves no file behind, when the caller does
    not hold the item (with a `review_reason` the video is held for a person: complete_item).
    The item's video path is written once: when it already holds a video
    (a retry of this completion whose commit failed after the move), that one is kept."""
    staged = staged_video_path(group_id, item_id, attempt)
    final = video_path(group_id, item_id)
    if isinstance(video, Path):
        storage.write_file(staged, video)  # streamed: a worker's upload is never whole in memory
    else:
        storage.write(staged, video)
    try:
        item = complete_item(
            session,
            item_id=item_id,
            attempt=attempt,
            worker_id=worker_id,
            output_path=final,
            cost_credits=cost_credits,
            made_by=made_by,
            quality=quality,
            review_reason=review_reason,
        )
    except BaseException:
        storage.delete(staged)
        raise
    if storage.exists(final):
        storage.delete(staged)
    else:
        storage.move(staged, final)
    return item
