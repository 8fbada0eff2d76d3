"""Engines and sessions: driver errors leave `models` as its own errors."""

from __future__ import annotations

import pytest
from sqlmodel import select

from reelroute.models.db import make_engine, session_scope
from reelroute.models.errors import Conflict, DatabaseUnavailable
from reelroute.models.tables import Photo
from tests.models.helpers import add_group_with_photos


def test_a_constraint_violation_is_a_conflict_and_nothing_is_written(engine, session):
    group_id, _ = add_group_with_photos(session, 0)
    with (
        pytest.raises(Conflict, match="the database refused the write"),
        session_scope(engine) as scoped,
    ):
        for _ in range(2):  # (group_id, sha256) is unique
            scoped.add(Photo(group_id=group_id, storage_path="photos/x", sha256="x"))
            scoped.flush()
    assert session.exec(select(Photo)).all() == []


def test_an_unreachable_database_is_unavailable_without_its_password():
    engine = make_engine("postgresql+psycopg://reelroute:hunter2@127.0.0.1:1/none")
    with pytest.raises(DatabaseUnavailable) as error, session_scope(engine) as session:
        session.exec(select(Photo)).all()
    engine.dispose()
    assert "the database is unavailable" in str(error.value)
    assert "hunter2" not in str(error.value)
