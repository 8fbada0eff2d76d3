"""Bounded multipart forms: each upload route says how many files and fields it takes, how large a
field may be, and what to check before a byte of its body is read.

Starlette's defaults (used by FastAPI for every form) are 1,000 files and 1,000 fields, each
part under 1 MiB kept in memory: one authenticated request of 500 parts of 1 MB held about
500 MB. Here a form stops at its route's count (the 2nd file of a one-file form is refused as
its header arrives), and every file part is spooled to disk past SPOOL_BYTES, so a request
holds at most files x SPOOL_BYTES in memory.

    router.add_api_route(path, endpoint, methods=["POST"],
                         route_class_override=bounded_form(FormLimits(files=1, fields=4)))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette._utils import AwaitableOrContextManager, AwaitableOrContextManagerWrapper
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser

SPOOL_BYTES = 64 * 1024
"""The part of an uploaded file kept in memory before it goes to a temporary file."""


class SpoolingParser(MultiPartParser):
    """Starlette's parser with files spooled to disk past SPOOL_BYTES (its own: 1 MiB)."""

    spool_max_size = SPOOL_BYTES


@dataclass(frozen=True)
class FormLimits:
    """What one route's form may hold."""

    files: int
    fields: int
    field_bytes: int = 4096
    before_body: Callable[[Request], Awaitable[None]] | None = None
    """Checked before the body is read (raises the route's error, e.g. 404)."""


class BoundedRequest(Request):
    """A request whose form is parsed within its route's limits."""

    limits: FormLimits

    def form(
        self,
        *,
        max_files: int | float = 0,
        max_fields: int | float = 0,
        max_part_size: int = 0,
    ) -> AwaitableOrContextManager[FormData]:
        """The form, parsed within the route's limits (the arguments are not used)."""
        return AwaitableOrContextManagerWrapper(self._bounded())

    async def _bounded(self) -> FormData:
        if self._form is not None:
            return self._form
        limits = self.limits
        if not self.headers.get("content-type", "").startswith("multipart/form-data"):
            return await self._get_form(
                max_files=0, max_fields=limits.fields, max_part_size=limits.field_bytes
            )
        try:
            async with aclosing(self.stream()) as stream:
                parser = SpoolingParser(
                    self.headers,
                    stream,
                    max_files=limits.files,
                    max_fields=limits.fields,
                    max_part_size=limits.field_bytes,
                )
                self._form = await parser.parse()
        except MultiPartException as error:
            raise HTTPException(
                400,
                f"{error.message} This route takes at most {limits.files} file(s) and "
                f"{limits.fields} other field(s) of {limits.field_bytes:,} bytes each.",
            ) from None
        return self._form


def bounded_form(limits: FormLimits) -> type[APIRoute]:
    """A route class whose requests parse their form within `limits`, after `before_body`."""

    class BoundedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def bounded(request: Request) -> Response:
                if limits.before_body is not None:
                    await limits.before_body(request)
                wrapped = BoundedRequest(request.scope, request.receive)
                wrapped.limits = limits
                return await handler(wrapped)

            return bounded

    return BoundedRoute
