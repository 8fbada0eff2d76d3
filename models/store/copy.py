"""Bulk reads and writes for the passes that touch every waiting item (the dispatcher's ETA
refresh), without a Python object per value.

- Reads: PostgreSQL packs each row into fixed-width big-endian bytes (`uuid_send(id) ||
  int8send(...) || ...`) and aggregates them into one `bytea`, in the order the query asks for;
  `columns` cuts it into one contiguous buffer per column with strided slices, and `numbers`
  and `chunks` turn a buffer into a list.
- Writes: `write_rows` sends rows through binary COPY, packed with `struct`.
"""

from __future__ import annotations

import array
import itertools
import struct
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from sqlmodel import Session

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
TRAILER = b"\xff\xff"


class PackedLayoutError(RuntimeError):
    """Packed rows that do not have the layout they are read with."""


def _raw(session: Session) -> Any:
    """The psycopg connection under `session` (PostgreSQL only)."""
    raw = session.connection().connection.driver_connection
    if raw is None:  # pragma: no cover - a session always has a connection here
        raise RuntimeError("no database connection")
    return raw


def columns(packed: bytes | None, widths: Sequence[int]) -> tuple[int, list[bytes]]:
    """(rows, one buffer per column) of rows packed back to back, each the concatenation of
    fields of `widths` bytes (uuid 16, int8 and timestamptz 8, int2 2)."""
    packed = packed or b""
    size = sum(widths)
    rows, rest = divmod(len(packed), size)
    if rest:
        raise PackedLayoutError(f"{len(packed)} bytes are not rows of {size}")
    found = []
    offset = 0
    for width in widths:
        column = bytearray(rows * width)
        for byte in range(width):
            column[byte::width] = packed[offset + byte :: size]
        found.append(bytes(column))
        offset += width
    return rows, found


def numbers(column: bytes, code: str) -> list[Any]:
    """A column of big-endian numbers (`array` type code: 'd' float8, 'q' int8 and timestamptz
    (microseconds from 2000-01-01 UTC), 'h' int2)."""
    values = array.array(code)
    values.frombytes(column)
    if sys.byteorder == "little":
        values.byteswap()
    return values.tolist()


def chunks(column: bytes, width: int) -> list[bytes]:
    """A column cut into its values (uuid: 16 bytes each)."""
    return [column[start : start + width] for start in range(0, len(column), width)]


_WIDTHS = {"16s": 16, "d": 8, "q": 8, "i": 4, "h": 2, "?": 1}


def write_rows(
    session: Session, statement: str, codes: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """`statement FROM STDIN (FORMAT BINARY)` (a `COPY table (columns)`) of `rows`, each value
    packed with its `struct` code ('16s' uuid bytes, 'q' int8, 'i' int4, 'd' float8, '?'
    boolean)."""
    packer = struct.Struct(">h" + "".join(f"i{code}" for code in codes))
    head = (len(codes),)
    widths = [_WIDTHS[code] for code in codes]
    pack = packer.pack
    chain = itertools.chain.from_iterable
    body = b"".join(pack(*head, *chain(zip(widths, row, strict=True))) for row in rows)
    with (
        _raw(session).cursor() as cursor,
        cursor.copy(f"{statement} FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(SIGNATURE + bytes(8) + body + TRAILER)
