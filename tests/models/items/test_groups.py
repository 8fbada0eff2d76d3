"""Groups: names unique per installation (case and spacing ignored), reuse by name, races."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, select

from reelroute.models.core.enums import GroupPriority
from reelroute.models.core.errors import Conflict, InvalidInput
from reelroute.models.core.tables import Group
from reelroute.models.items.groups import create_group, find_group, group_named, name_key
from reelroute.models.store.db import session_scope


def test_a_taken_name_is_refused_naming_the_existing_group(session):
    first = create_group(session, name="Summer Sale")
    session.commit()
    for twin in ("Summer Sale", "summer sale", "  SUMMER   sale "):
        with pytest.raises(Conflict) as error:
            create_group(session, name=twin)
        assert "'Summer Sale' already exists" in str(error.value)
        assert str(first.id) in str(error.value)
    session.rollback()
    assert [g.name for g in session.exec(select(Group)).all()] == ["Summer Sale"]


def test_names_are_kept_tidy_and_checked(session):
    group = create_group(session, name="  Spring   campaign ")
    assert (group.name, group.name_key) == ("Spring campaign", "spring campaign")
    with pytest.raises(InvalidInput, match="name: is empty"):
        create_group(session, name="   ")
    with pytest.raises(InvalidInput, match="longer than 200"):
        create_group(session, name="x" * 201)
    assert name_key("Straße") == name_key("STRASSE")


def test_group_named_reuses_the_group_of_that_name(session):
    made, new = group_named(session, name="Summer", priority=GroupPriority.urgent)
    again, again_new = group_named(session, name="summer")
    assert new and not again_new and again.id == made.id
    assert again.priority is GroupPriority.urgent
    assert find_group(session, "SUMMER") is not None and find_group(session, "Winter") is None


def test_concurrent_creators_of_one_name_make_one_group(engine):
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def create() -> None:
        barrier.wait()
        try:
            with session_scope(engine) as session:
                create_group(session, name="Race")
            outcomes.append("created")
        except Conflict as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("created") == 1
    assert all("'Race' already exists" in o for o in outcomes if o != "created"), outcomes
    with Session(engine) as session:
        assert len(session.exec(select(Group)).all()) == 1
