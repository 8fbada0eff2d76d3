"""Packed rows cut into columns, and rows written through binary COPY (PostgreSQL)."""

from __future__ import annotations

import struct
import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from reelroute.models.store.copy import PackedLayoutError, chunks, columns, numbers, write_rows
from reelroute.models.store.db import make_engine


def test_packed_rows_come_back_as_columns():
    ids = [uuid.uuid4() for _ in range(5)]
    rows = [(ids[n], -(2**40) + n, n - 2, n * 1.5) for n in range(5)]
    packed = b"".join(
        key.bytes + struct.pack(">q", big) + struct.pack(">h", small) + struct.pack(">d", real)
        for key, big, small, real in rows
    )
    count, (keys, bigs, smalls, reals) = columns(packed, (16, 8, 2, 8))
    assert count == 5
    assert chunks(keys, 16) == [key.bytes for key in ids]
    assert numbers(bigs, "q") == [row[1] for row in rows]
    assert numbers(smalls, "h") == [-2, -1, 0, 1, 2]
    assert numbers(reals, "d") == [0.0, 1.5, 3.0, 4.5, 6.0]


def test_no_rows_and_a_null_aggregate_are_empty_columns():
    assert columns(None, (16, 8)) == (0, [b"", b""])
    assert columns(b"", (16, 8)) == (0, [b"", b""])


def test_bytes_that_are_not_whole_rows_are_refused():
    with pytest.raises(PackedLayoutError, match="not rows of 24"):
        columns(bytes(30), (16, 8))


def test_rows_written_through_binary_copy_read_back_the_same(pg_migrated):
    engine = make_engine(pg_migrated)
    rows = [(uuid.uuid4().bytes, n, n / 3, n % 2 == 0) for n in range(-3, 1000)]
    try:
        with Session(engine) as session:
            session.execute(
                sa.text(
                    "CREATE TEMPORARY TABLE copied (id uuid, n integer, x float8, even boolean)"
                )
            )
            write_rows(session, "COPY copied (id, n, x, even)", ("16s", "i", "d", "?"), rows)
            found = session.execute(sa.text("SELECT id, n, x, even FROM copied ORDER BY n")).all()
    finally:
        engine.dispose()
    assert [(key.bytes, n, x, even) for key, n, x, even in found] == rows
