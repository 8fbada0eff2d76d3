"""The web app's front door, before any route reads a byte of the body (a pure ASGI middleware):

- **Throttling**: a client address that failed `REELROUTE_AUTH_FREE_FAILURES` logins or bearer
  checks of one role must then wait before its next try of that role, 1 s, then 2, 4 … up to
  `REELROUTE_AUTH_MAX_WAIT_SECONDS`; a try before that is answered 429 with `Retry-After`. A
  success clears the record of its own role only: a worker-token holder cannot reset its
  guesses at the admin token by using its own token.
- **Auth**: `/api/admin/*` needs the admin token, `/api/worker/*` the worker token, `/metrics`
  the metrics token (constant-time comparison): 401 without a valid one, 403 with another
  role's. `/metrics` is off (404) unless REELROUTE_METRICS_TOKEN is set, and answers callers on
  the loopback address without a token when REELROUTE_METRICS_LOOPBACK is. The routes check
  again (their OpenAPI security); this check comes first, so a body is never read for a caller
  without the right token.
- **Other sites**: a request under /admin (the pages, whose login is a cookie the browser sends
  by itself) that carries an `Origin`, or on a method that changes state a `Referer`, of
  another site is refused 403 before it reaches Gradio: a hostile page open in the admin's
  browser cannot press a button with the admin's login. The app's own origin is its Host, or
  REELROUTE_PUBLIC_URL's; a request with neither header (curl, a program) is not a browser's and
  passes. CORS (which pages of other sites may *read* answers) is the parent app's strict
  policy: only REELROUTE_ALLOWED_ORIGINS, never for /admin (`ui.app`); the login cookie is made
  `SameSite=Lax` on its way out (`same_site_lax`).
- **Size**: each route has a largest body (JSON routes, the admin pages' included,
  `REELROUTE_MAX_JSON_BYTES`; photo uploads their files' limit, a worker's video
  `REELROUTE_MAX_VIDEO_BYTES`): a larger `Content-Length` is answered 413 at once; a body without
  one is counted as it streams in and cut off at the limit. The admin pages' file upload takes
  large bodies only from a logged-in session (its cookie is checked before a byte is read).

Every refusal is logged with the method, path, client address and reason, never the token; and
answered in the API's envelope `{"success": false, "error", "problems"}`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from reelroute.models.assembly import Settings
from reelroute.ui.api.common import Role, role_of

log = logging.getLogger("reelroute.security")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_PHOTOS_PER_UPLOAD = 50
MULTIPART_SLACK = 64 * 1024  # boundaries and form fields around the files
LOGIN_PATHS = ("/admin/login", "/admin/login/")
ADMIN_UPLOAD = re.compile(r"^/admin(/gradio_api)?/upload/?$")


@dataclass
class _Record:
    failures: int = 0
    not_before: float = 0.0


@dataclass
class Throttle:
    """Failed tries per client address, and when each may try again."""

    free_failures: int
    max_wait: float
    records: dict[str, _Record] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, client: str, now: float | None = None) -> float:
        """Seconds `client` must still wait (0: it may try now)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            record = self.records.get(client)
            return 0.0 if record is None else max(0.0, record.not_before - now)

    def failed(self, client: str, now: float | None = None) -> float:
        """Count a failure; returns the wait it now imposes."""
        now = time.monotonic() if now is None else now
        with self.lock:
            record = self.records.setdefault(client, _Record())
            record.failures += 1
            over = record.failures - self.free_failures
            wait = 0.0 if over < 0 else min(self.max_wait, float(2**over))
            record.not_before = now + wait
            if len(self.records) > 100_000:  # forget the oldest: memory stays bounded
                for stale in list(self.records)[:50_000]:
                    del self.records[stale]
            return wait

    def succeeded(self, client: str) -> None:
        """A success clears the client's record."""
        with self.lock:
            self.records.pop(client, None)


VIDEO_ROUTE = re.compile(r"^/api/worker/tasks/[^/]+/complete$")
PHOTO_ROUTE = re.compile(r"^/api/admin/groups/[^/]+/photos$")


def body_limit(path: str, settings: Settings) -> int:
    """The largest body the route at `path` accepts."""
    if VIDEO_ROUTE.match(path):
        return settings.api.max_video_bytes + MULTIPART_SLACK
    if PHOTO_ROUTE.match(path) or ADMIN_UPLOAD.match(path):
        return settings.api.max_upload_bytes * MAX_PHOTOS_PER_UPLOAD + MULTIPART_SLACK
    return settings.api.max_json_bytes


def admin_session(scope: Scope, cookie_header: str | None) -> bool:
    """Whether the request carries the cookie of a logged-in admin page session (Gradio's
    token store of the app mounted at /admin, `app.state.admin_app`)."""
    admin_app = getattr(getattr(scope.get("app"), "state", None), "admin_app", None)
    tokens = getattr(admin_app, "tokens", None)
    cookie_id = getattr(admin_app, "cookie_id", None)
    if not cookie_header or not tokens or cookie_id is None:
        return False
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except CookieError:
        return False
    for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
        morsel = cookies.get(name)
        if morsel is not None and morsel.value in tokens:
            return True
    return False


def throttled_role(path: str, method: str | None) -> Role | None:
    """Whose failures a request counts towards (None: not a guarded try)."""
    if path in LOGIN_PATHS and method == "POST":
        return Role.admin
    return role_for(path)


METRICS_PATH = "/metrics"
LOOPBACK = ("127.", "::1", "::ffff:127.")


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def loopback_scraper(settings: Settings, client: str, headers: dict[str, str]) -> bool:
    """Whether REELROUTE_METRICS_LOOPBACK lets this caller in without a token: it connects from
    the loopback address and names a loopback host. A page in a browser on this machine that
    reached us through a name of its own (DNS rebinding: `attacker.example` made to point at
    127.0.0.1) sends that name as its Host, and is refused."""
    if not settings.api.metrics_loopback or not client.startswith(LOOPBACK):
        return False
    host = headers.get("host", "").lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in LOOPBACK_HOSTS or name.startswith("127.")


def metrics_caller_allowed(settings: Settings, client: str, headers: dict[str, str]) -> bool:
    """Whether a caller may read /metrics: the metrics token (constant time), or a loopback
    scraper as REELROUTE_METRICS_LOOPBACK allows."""
    if loopback_scraper(settings, client, headers):
        return True
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and role_of(settings, token.strip()) is Role.metrics


def role_for(path: str) -> Role | None:
    """The token a path needs (None: the route decides, e.g. the admin pages' login)."""
    if path.startswith("/api/admin"):
        return Role.admin
    if path.startswith("/api/worker"):
        return Role.worker
    if path in (METRICS_PATH, METRICS_PATH + "/"):
        return Role.metrics
    return None


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ADMIN_PAGES = "/admin"


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL or Origin header, lowercased, the default port left out
    (None: not a URL with a host, e.g. the `null` origin)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def own_hosts(headers: dict[str, str], settings: Settings) -> set[str]:
    """The `host[:port]` this app answers as: its Host header and REELROUTE_PUBLIC_URL's."""
    hosts = {headers.get("host", "").lower()}
    if settings.api.public_url and (public := origin_of(settings.api.public_url)):
        hosts.add(public.split("://", 1)[1])
    return {host for host in hosts if host}


def foreign_origin(method: str, headers: dict[str, str], settings: Settings) -> str | None:
    """The other site a browser request to the admin pages comes from, or None when it comes
    from this app's own pages (or from no browser at all). `Origin` is compared on every
    method (a browser sends it on cross-site fetches); `Referer` when `Origin` is missing and
    the method changes state. Scheme and port are compared as the browser gave them, against
    the Host: a proxy that terminates TLS keeps the Host, so `https://admin.example.com` is
    the own origin of `Host: admin.example.com`."""
    origin = headers.get("origin")
    if origin is None and method not in SAFE_METHODS and "referer" in headers:
        origin = headers["referer"]
    if origin is None:
        return None
    parsed = origin_of(origin)
    if parsed is None:
        return origin[:200] or "an empty origin"
    scheme, host = parsed.split("://", 1)
    hosts = own_hosts(headers, settings)
    with_port = {host, f"{host}:{443 if scheme == 'https' else 80}"}
    return None if hosts & with_port else parsed


def same_site_lax(send: Send) -> Send:
    """`send` with every `Set-Cookie: …; SameSite=None` of the answer made `SameSite=Lax`.
    Gradio sets its login cookie `SameSite=None; Secure` (so that the app works inside another
    site's frame); Lax keeps the cookie off the requests other sites' pages make."""

    async def sent(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                (name, _lax(value) if name.lower() == b"set-cookie" else value)
                for name, value in message.get("headers", [])
            ]
        await send(message)

    return sent


def _lax(cookie: bytes) -> bytes:
    return re.sub(rb"(?i)samesite=none", b"SameSite=lax", cookie)


class BodyTooLarge(Exception):
    """The body went past its route's limit while it streamed in."""


class Guard:
    """The middleware (see the module's docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.throttle = Throttle(
            settings.api.auth_free_failures, settings.api.auth_max_wait_seconds
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        client = (scope.get("client") or ("unknown", 0))[0]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = str(scope.get("method", ""))
        if path == ADMIN_PAGES or path.startswith(ADMIN_PAGES + "/"):
            foreign = foreign_origin(method, headers, self.settings)
            if foreign is not None:
                self._refused(scope, client, 403, f"a request from another site ({foreign})")
                await _answer(
                    send,
                    403,
                    "the admin pages take requests from their own pages only; this one came "
                    f"from {foreign}",
                )
                return
            send = same_site_lax(send)
        elif method == "OPTIONS" and "access-control-request-method" in headers:
            # A CORS preflight never carries a token and reads nothing: the CORS policy
            # (inside) answers it; the request that follows is checked as usual.
            await self.app(scope, receive, send)
            return
        guarded = role_for(path)
        if guarded is Role.metrics:
            api = self.settings.api
            if api.metrics_token is None and not api.metrics_loopback:
                await _answer(
                    send,
                    404,
                    "metrics are off: set REELROUTE_METRICS_TOKEN, or REELROUTE_METRICS_LOOPBACK "
                    "for a Prometheus on this host",
                )
                return
            if loopback_scraper(self.settings, client, headers):
                guarded = None  # a scraper on this host, as the setting allows
        counted = throttled_role(path, scope.get("method"))
        login = path in LOGIN_PATHS and scope.get("method") == "POST"
        if counted is not None:
            key = f"{client} {counted.value}"
            wait = self.throttle.wait_for(key)
            if wait > 0:
                self._refused(scope, client, 429, f"too many failed tries; wait {wait:.0f} s")
                await _answer(
                    send,
                    429,
                    f"too many failed logins or tokens from your address; try again in "
                    f"{math.ceil(wait)} s",
                    {"retry-after": str(math.ceil(wait))},
                )
                return
        if guarded is not None:
            problem = self._auth(headers.get("authorization"), guarded)
            if problem is not None:
                status, message = problem
                if status == 401:
                    self.throttle.failed(f"{client} {guarded.value}")
                self._refused(scope, client, status, message)
                extra = {"www-authenticate": "Bearer"} if status == 401 else {}
                await _answer(send, status, message, extra)
                return
            self.throttle.succeeded(f"{client} {guarded.value}")
        if (
            ADMIN_UPLOAD.match(path)
            and scope.get("method") == "POST"
            and not admin_session(scope, headers.get("cookie"))
        ):
            self._refused(scope, client, 401, "an upload without a logged-in session")
            await _answer(send, 401, "log in to the admin pages first")
            return
        limit = body_limit(path, self.settings)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, "Content-Length is not a number")
                return
            if int(length) > limit:
                message = f"the body is {int(length):,} bytes; this route takes at most {limit:,}"
                self._refused(scope, client, 413, message)
                await _answer(send, 413, message)
                return
        await self._pass(scope, receive, send, limit, f"{client} admin" if login else None)

    def _auth(self, header: str | None, needed: Role) -> tuple[int, str] | None:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return 401, "send Authorization: Bearer <token>"
        found = role_of(self.settings, token.strip())
        if found is None:
            return 401, "unknown token"
        if found is not needed:
            return 403, f"this route needs the {needed.value} token"
        return None

    async def _pass(
        self, scope: Scope, receive: Receive, send: Send, limit: int, login: str | None
    ) -> None:
        """Pass the request on, counting its body; `login` is the throttle's key of an admin
        login (whose answer says whether it failed)."""
        seen = 0
        started = False
        too_big = False

        async def counted() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_big = True
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if too_big:  # whatever the route made of the cut-off body: ours is the answer
                return
            if message["type"] == "http.response.start":
                started = True
                if login is not None:
                    if message["status"] in (400, 401):
                        self.throttle.failed(login)
                        self._refused(scope, login, message["status"], "wrong login")
                    elif message["status"] < 300:
                        self.throttle.succeeded(login)
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not too_big:
                raise
        if too_big and not started:
            message = f"the body is over {limit:,} bytes, the most this route takes"
            self._refused(scope, str((scope.get("client") or ("unknown",))[0]), 413, message)
            await _answer(send, 413, message)

    @staticmethod
    def _refused(scope: Scope, client: str, status: int, reason: str) -> None:
        log.warning(
            "refused %s %s from %s: %s %s",
            scope.get("method"),
            scope.get("path"),
            client,
            status,
            reason,
        )


async def _answer(
    send: Send, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"success": False, "error": message, "problems": [message]}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
