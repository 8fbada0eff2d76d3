"""Storing a finished video: the fence decides, then the file moves into place, once."""

from __future__ import annotations

import pytest

from reelroute.models.core.enums import Pool
from reelroute.models.core.errors import StaleAttempt
from reelroute.models.items import lifecycle as ops
from reelroute.models.items.videos import complete_with_video
from reelroute.models.store.files import Storage, staged_video_path, video_path
from tests.models.helpers import add_items


def files(storage: Storage) -> list[str]:
    return sorted(p.removeprefix(storage.root + "/") for p in storage.fs.find(storage.root))


def test_the_holder_publishes_and_a_refused_writer_leaves_nothing(session, settings, tmp_path):
    storage = Storage(str(tmp_path / "store"))
    (item,) = add_items(session, settings, 1)
    held = ops.claim_next(session, pool=Pool.cloud, worker_id="holder", settings=settings)
    assert held is not None
    final = video_path(item.group_id, item.id)
    with pytest.raises(StaleAttempt):
        complete_with_video(
            session, storage, item_id=item.id, group_id=item.group_id, attempt=1,
            worker_id="zombie", video=b"zombie's video",
        )  # fmt: skip
    assert files(storage) == []
    done = complete_with_video(
        session, storage, item_id=item.id, group_id=item.group_id, attempt=1,
        worker_id="holder", video=b"the video", cost_credits=25,
    )  # fmt: skip
    assert (done.output_path, done.cost_credits) == (final, 25)
    assert files(storage) == [final] and storage.read(final) == b"the video"
    with pytest.raises(StaleAttempt):  # a late second writer of the same attempt
        complete_with_video(
            session, storage, item_id=item.id, group_id=item.group_id, attempt=2,
            worker_id="holder", video=b"late",
        )  # fmt: skip
    assert files(storage) == [final] and storage.read(final) == b"the video"


def test_a_retried_completion_keeps_the_video_already_in_place(session, settings, tmp_path):
    storage = Storage(str(tmp_path / "store"))
    (item,) = add_items(session, settings, 1)
    ops.claim_next(session, pool=Pool.cloud, worker_id="holder", settings=settings)
    session.commit()
    final = video_path(item.group_id, item.id)
    complete_with_video(
        session, storage, item_id=item.id, group_id=item.group_id, attempt=1,
        worker_id="holder", video=b"first",
    )  # fmt: skip
    session.rollback()  # the commit failed after the move: the attempt tries again
    complete_with_video(
        session, storage, item_id=item.id, group_id=item.group_id, attempt=1,
        worker_id="holder", video=b"first, again",
    )  # fmt: skip
    session.commit()
    assert storage.read(final) == b"first"
    assert not storage.exists(staged_video_path(item.group_id, item.id, 1))
