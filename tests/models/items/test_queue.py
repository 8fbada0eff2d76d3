"""The queue listing: keyset pages cover every item once, filters, refusals."""

from __future__ import annotations

import uuid

import pytest

from reelroute.models.core.enums import InferenceProvider, ItemStatus, Pool
from reelroute.models.core.errors import InvalidInput
from reelroute.models.items import lifecycle as ops
from reelroute.models.items.queue import list_queue
from tests.models.helpers import add_group_with_photos, add_items

ROWS = 1_300


def test_queue_pages_cover_every_item_once_newest_first(session, settings):
    for provider in InferenceProvider:
        add_items(session, settings, 40, provider)
    seen, cursor = [], None
    while True:
        page = list_queue(session, limit=25, cursor=cursor)
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len({i.id for i in seen}) == 40 * len(InferenceProvider)
    keys = [(i.created_at, i.id.hex) for i in seen]
    assert keys == sorted(keys, reverse=True)


def test_queue_filters(session, settings):
    wan = add_items(session, settings, 5, InferenceProvider.wan_local)
    add_items(session, settings, 5, InferenceProvider.runway_gen4_turbo)
    ops.claim_next(session, pool=Pool.gpu, worker_id="w", settings=settings)
    session.commit()
    by_provider = list_queue(session, provider=InferenceProvider.wan_local, limit=50)
    assert {i.id for i in by_provider.items} == {i.id for i in wan}
    processing = list_queue(session, status=ItemStatus.processing)
    assert [i.id for i in processing.items] == [wan[0].id]
    by_group = list_queue(session, group_id=wan[0].group_id)
    assert len(by_group.items) == 5
    assert list_queue(session, group_id=uuid.uuid4()).items == []


def test_queue_refuses_a_bad_cursor_and_limit(session):
    with pytest.raises(InvalidInput, match="cursor"):
        list_queue(session, cursor="nonsense")
    with pytest.raises(InvalidInput, match="limit"):
        list_queue(session, limit=0)
    group_id, _ = add_group_with_photos(session)
    assert list_queue(session, group_id=group_id).next_cursor is None
