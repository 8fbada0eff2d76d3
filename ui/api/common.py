"""What every route shares: settings, sessions, bearer tokens, the seed's answer envelope."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlmodel import Session

from reelroute.models.assembly import Settings
from reelroute.models.store import session_scope

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """The seed's answer: `{"success": true, "data": …}`."""

    success: bool = True
    data: T


def settings_of(request: Request) -> Settings:
    """The app's settings (set by create_app)."""
    settings: Settings = request.app.state.settings
    return settings


def engine_of(request: Request) -> sa.Engine:
    """The app's database engine."""
    engine: sa.Engine = request.app.state.engine
    return engine


def session(request: Request) -> Iterator[Session]:
    """A session per request, committed when the route returns without an error: before the
    answer is sent (`scope="function"` below), so a 200 means the change is visible, and a
    failed commit answers as its error (409, 503) instead of after a 200."""
    with session_scope(engine_of(request)) as db:
        yield db


class Role(StrEnum):
    """Who a bearer token belongs to."""

    admin = "admin"
    worker = "worker"
    metrics = "metrics"


bearer = HTTPBearer(auto_error=False, description="REELROUTE_ADMIN_TOKEN or REELROUTE_WORKER_TOKEN")


def role_of(settings: Settings, token: str) -> Role | None:
    """The role whose token this is (compared in constant time), or None."""
    for role, secret in (
        (Role.admin, settings.api.admin_token),
        (Role.worker, settings.api.worker_token),
        (Role.metrics, settings.api.metrics_token),
    ):
        if secret is not None and secrets.compare_digest(
            token.encode(), secret.get_secret_value().encode()
        ):
            return role
    return None


def require(role: Role) -> Any:
    """A dependency that lets only `role`'s token through: 401 without a valid token, 403 with
    the other role's."""

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        settings = settings_of(request)
        if credentials is None:
            raise HTTPException(
                401, "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"}
            )
        found = role_of(settings, credentials.credentials)
        if found is None:
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
        if found is not role:
            raise HTTPException(403, f"this route needs the {role.value} token")

    return Depends(check)


DB = Annotated[Session, Depends(session, scope="function")]
SettingsDep = Annotated[Settings, Depends(settings_of)]
