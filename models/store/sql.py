"""Running the hand-written SQL of models.store.queries: typed binds, typed results."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select
from sqlmodel.sql.sqltypes import UTCDateTime

from reelroute.models.core.tables import VideoItem

_BIND_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "now": UTCDateTime(),
    "leased_until": UTCDateTime(),
    "next_attempt_at": UTCDateTime(),
    "since": UTCDateTime(),
    "item_id": sa.Uuid(),
    "flow_run_id": sa.Uuid(),
    "group_id": sa.Uuid(),
    "quality": sa.JSON(none_as_null=True),
}


@lru_cache(maxsize=128)
def sql(statement: str) -> sa.TextClause:
    """A text statement whose timestamp and id parameters are typed (SQLite stores them as text)."""
    binds = [
        sa.bindparam(name, type_=kind)
        for name, kind in _BIND_TYPES.items()
        if f":{name}" in statement
    ]
    return sa.text(statement).bindparams(*binds)


@lru_cache(maxsize=64)
def _returning(statement: str) -> sa.TextualSelect:
    """`statement` (which returns every item column, in order) with its result columns typed."""
    return sql(statement).columns(*VideoItem.__table__.columns)  # type: ignore[attr-defined]


def returning_items(session: Session, statement: str, **params: Any) -> list[VideoItem]:
    """Run an UPDATE … RETURNING <item columns> and map its rows to refreshed VideoItems."""
    query = select(VideoItem).from_statement(_returning(statement))
    result = session.execute(query.execution_options(populate_existing=True), params)
    return list(result.scalars().all())


def rowcount(result: sa.Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed."""
    return int(result.rowcount)  # type: ignore[attr-defined]
