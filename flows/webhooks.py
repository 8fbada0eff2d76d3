"""The webhook sender (`reelroute webhooks`, and a child of `reelroute up`): every quarter second
(at once again while there is work) it turns new outbox events into deliveries
(`models.outbox.webhooks.fan_out`), then starts posting the due ones, signed per the Standard
Webhooks specification (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 with
the endpoint's secrets, signed when sent).

No receiver can stop it or exhaust it:
- each post runs on its own (an asyncio task) and records its own result: a pass never waits
  for a slow receiver, and at most PER_ENDPOINT posts to one endpoint are in flight;
- a post has a total deadline (REELROUTE_WEBHOOK_TIMEOUT_SECONDS), whatever the receiver drips;
- the answer's body is never read whole: at most ANSWER_BYTES (kept of an error; of a 2xx read
  only so that a short answer leaves its connection alive for the next post);
- anything that goes wrong in a post (a bad URL, a name that does not resolve, a refused address,
  TLS, the network) is a failed attempt of that delivery only, never an exception of the pass;
- the receiver's address is resolved, checked (models.outbox.addresses) and connected to as
  resolved (TLS still checks the receiver's name), so DNS cannot switch it to a private address
  between the check and the post. Lookups run on a small pool of their own (`Lookups`), one
  at a time per host name: a name server that never answers holds one thread, not the sender;
- the due query takes at most PER_ENDPOINT deliveries of each endpoint, so no endpoint's
  backlog hides another's;
- connections are kept alive per host name (one client each), never shared between two names
  that resolve to one address: a post for b.example never travels on a connection whose
  certificate was checked for a.example.

Delivery is at least once: a delivery is marked delivered only after its receiver answered
2xx, so a sender killed mid-delivery sends it again (with the same `webhook-id`, for the
receiver to drop the repeat). No redirect is followed. Database and network outages are waited
out; expired idempotency keys are purged on the way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import ssl
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from standardwebhooks import Webhook

from reelroute.flows.backoff import Backoff, Heartbeat
from reelroute.models.assembly import Settings
from reelroute.models.core import DeliveryStatus, InvalidInput, IPNetwork, utcnow, without_url_paths
from reelroute.models.health import Leadership
from reelroute.models.intake import idempotency
from reelroute.models.outbox import (
    Refused,
    Resolver,
    Target,
    endpoints,
    parse_url,
    resolve,
    system_resolver,
)
from reelroute.models.outbox import webhooks as hooks
from reelroute.models.store import make_engine, session_scope

log = logging.getLogger(__name__)
T = TypeVar("T")

INTERVAL_SECONDS = 0.25
BATCH = 200
PER_ENDPOINT = 2
"""Posts to one endpoint in flight at once: a slow receiver holds no more than this."""
IN_FLIGHT = 64
"""Posts in flight at once, all endpoints together."""
ANSWER_BYTES = 4096
"""The most of an error answer's body that is read (for the delivery's last error)."""
PURGE_EVERY_SECONDS = 3600.0
USER_AGENT = "reelroute-webhooks/2"
LOOKUP_THREADS = 8
"""Name lookups under way at once (each a thread: the system resolver cannot be cancelled)."""
START_AGAIN_SECONDS = 60.0
"""How soon a REELROUTE_WEBHOOK_URL that could not be registered is tried again."""
CLIENTS = 64
"""Host names with a client (and its kept-alive connections) at once; the least used go."""


class Lookups:
    """Name lookups off the event loop and off its shared thread pool: a pool of LOOKUP_THREADS
    of their own, one lookup at a time per host name (posts to that name at the same moment
    share it; each post still connects to the address checked for it). A name server that
    never answers keeps one thread for its resolver's timeout, and its posts fail at their
    deadline; lookups of other names go on. When every thread is held, a lookup is refused at
    once (the attempt is retried later) rather than queued behind the stuck ones."""

    def __init__(self, resolver: Resolver, networks: list[IPNetwork]) -> None:
        self.resolver, self.networks = resolver, networks
        self.pool = concurrent.futures.ThreadPoolExecutor(LOOKUP_THREADS, "webhook-lookup")
        self._lock = threading.Lock()
        self._pending: dict[str, concurrent.futures.Future[Sequence[str]]] = {}

    async def address(self, target: Target) -> str:
        """The checked address to connect to for `target` (Refused says why not)."""
        started = False
        with self._lock:
            future = self._pending.get(target.host)
            if future is None:
                if len(self._pending) >= LOOKUP_THREADS:
                    raise Refused(f"{len(self._pending)} name lookups are under way; try later")
                future = self.pool.submit(self.resolver, target.host, target.port)
                self._pending[target.host], started = future, True
        if started:  # outside the lock: a finished future runs its callback at once, here
            future.add_done_callback(lambda _done: self._done(target.host))
        try:
            found: Sequence[str] | Exception = await asyncio.wrap_future(future)
        except (OSError, UnicodeError, ValueError) as error:
            found = error

        def answer(_host: str, _port: int) -> Sequence[str]:
            if isinstance(found, Exception):
                raise found
            return found

        return resolve(target, self.networks, answer)

    def _done(self, host: str) -> None:
        with self._lock:
            self._pending.pop(host, None)

    def close(self) -> None:
        """Stop taking lookups (those under way end on their own)."""
        self.pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Attempt:
    """What one post gave."""

    delivery_id: int
    endpoint_id: uuid.UUID
    ok: bool
    status: int | None
    error: str
    seconds: float


class Sender:
    """Fan-out and delivery for one installation (one at a time: run_sender's leader). Posts run
    on an event loop of its own thread; the database work runs in the caller's thread."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        *,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.engine, self.settings, self.resolver = engine, settings, resolver
        self.networks = settings.webhooks.networks()
        self.lookups = Lookups(resolver, self.networks)
        self.verify = verify
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="webhook-posts", daemon=True
        )
        self._thread.start()
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._lock = threading.Lock()
        self._in_flight: dict[int, uuid.UUID] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_purge = 0.0

    def _client(self, host: str) -> httpx.AsyncClient:
        """The client of one host name (its own kept-alive connections: httpx pools by the
        address it connects to, which is pinned, so one pool for two names would hand b's post
        a connection made, and its certificate checked, for a). Runs on the posts' loop."""
        client = self._clients.get(host)
        if client is not None:
            self._clients.move_to_end(host)
            return client
        client = httpx.AsyncClient(
            follow_redirects=False,
            verify=self.verify,
            timeout=httpx.Timeout(self.settings.webhooks.timeout_seconds),
            limits=httpx.Limits(max_connections=PER_ENDPOINT * 4, max_keepalive_connections=4),
        )
        self._clients[host] = client
        while len(self._clients) > CLIENTS:
            _, oldest = self._clients.popitem(last=False)
            task = asyncio.ensure_future(oldest.aclose())  # its posts under way keep it open
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return client

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def start(self) -> bool:
        """Make the endpoint of REELROUTE_WEBHOOK_URL the default one (and no other). False
        (logged) when it cannot be registered now (its name does not resolve, or to a refused
        address): the other endpoints are served meanwhile, and the caller tries again."""
        try:
            with session_scope(self.engine) as session:
                endpoints.ensure_default(session, self.settings, self.resolver)
        except InvalidInput as error:
            log.warning(
                "REELROUTE_WEBHOOK_URL is not registered yet (%s); the other endpoints get "
                "their events, and it is tried again in %.0f s",
                without_url_paths("; ".join(error.problems)),
                START_AGAIN_SECONDS,
            )
            return False
        return True

    def in_flight(self) -> int:
        """Posts under way."""
        with self._lock:
            return len(self._in_flight)

    def pass_once(self, now: Any = None) -> int:
        """Fan out new events and start posting what is due; returns how many posts were
        started (they finish on their own)."""
        now = now or utcnow()
        with session_scope(self.engine) as session:
            while hooks.fan_out(session, limit=1000, now=now) == 1000:
                pass
        with self._lock:
            busy = dict(self._in_flight)
        room = IN_FLIGHT - len(busy)
        if room <= 0:
            return 0
        with session_scope(self.engine) as session:
            due = hooks.due(
                session, self.settings, limit=BATCH, now=now, per_endpoint=PER_ENDPOINT, skip=busy
            )
        per_endpoint = Counter(busy.values())
        chosen: list[hooks.Outgoing] = []
        for outgoing in due:
            if len(chosen) >= room or per_endpoint[outgoing.endpoint_id] >= PER_ENDPOINT:
                continue
            per_endpoint[outgoing.endpoint_id] += 1
            chosen.append(outgoing)
        if not chosen:
            self._purge()
            return 0
        with self._lock:
            self._in_flight.update({o.delivery_id: o.endpoint_id for o in chosen})
        self._run(self._launch(chosen))
        return len(chosen)

    async def _launch(self, chosen: list[hooks.Outgoing]) -> None:
        for outgoing in chosen:
            task = asyncio.create_task(self._deliver(outgoing))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, outgoing: hooks.Outgoing) -> None:
        try:
            attempt = await self.post(outgoing)
            await asyncio.to_thread(self._record, attempt)
        except Exception:  # the record failed (database away): the delivery is sent again
            log.warning("could not record webhook delivery %s", outgoing.delivery_id, exc_info=True)
        finally:
            with self._lock:
                self._in_flight.pop(outgoing.delivery_id, None)

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until no post is under way (tests; a clean stop)."""
        deadline = time.monotonic() + timeout
        while self.in_flight():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.in_flight()} webhook posts still under way")
            time.sleep(0.02)

    async def post(self, outgoing: hooks.Outgoing) -> Attempt:
        """One signed post within its deadline; never raises."""
        started = time.monotonic()

        def failed(error: str, status: int | None = None) -> Attempt:
            took = time.monotonic() - started
            return Attempt(outgoing.delivery_id, outgoing.endpoint_id, False, status, error, took)

        if outgoing.problem is not None:
            return failed(f"refused: {outgoing.problem}")
        deadline = self.settings.webhooks.timeout_seconds
        try:
            async with asyncio.timeout(deadline):
                status, answer = await self._exchange(outgoing)
        except TimeoutError:
            return failed(f"no complete answer within {deadline:g} s")
        except Refused as refused:
            return failed(f"refused: {refused}")
        except InvalidInput as invalid:
            return failed(f"refused: {'; '.join(invalid.problems)}")
        except Exception as error:  # TLS, the network, anything: this delivery's failure only
            return failed(f"{type(error).__name__}: {error}"[:1000])
        took = time.monotonic() - started
        if 200 <= status < 300:
            return Attempt(outgoing.delivery_id, outgoing.endpoint_id, True, status, "", took)
        why = "a redirect (not followed)" if 300 <= status < 400 else "an error"
        said = f": {answer}" if answer else ""
        return failed(f"answered {status}, {why}{said}"[:1000], status)

    async def _exchange(self, outgoing: hooks.Outgoing) -> tuple[int, str]:
        """Resolve, sign, post to the pinned address; the status and the start of an error's
        body."""
        target = parse_url(outgoing.url)
        address = await self.lookups.address(target)
        body = json.dumps(outgoing.payload, separators=(",", ":"))
        sent_at = utcnow()  # signed when sent: a receiver checks the timestamp's age
        signature = " ".join(
            Webhook(secret).sign(outgoing.message_id, sent_at, body) for secret in outgoing.secrets
        )
        headers = {
            "host": target.host_header,
            "webhook-id": outgoing.message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        client = self._client(target.host)
        request = client.build_request(
            "POST", target.pinned(address), content=body, headers=headers, extensions=extensions
        )
        response = await client.send(request, stream=True)
        try:
            status = response.status_code
            answer = await _start_of(response)
            answer = "" if 200 <= status < 300 else answer
        finally:
            await response.aclose()
        return status, answer

    def _record(self, attempt: Attempt) -> None:
        now = utcnow()
        with session_scope(self.engine) as session:
            endpoints.record_answer(
                session,
                attempt.endpoint_id,
                status=attempt.status,
                error=attempt.error,
                seconds=attempt.seconds,
                at=now,
            )
            if attempt.ok:
                hooks.delivered(session, [attempt.delivery_id], now=now)
                return
            state = hooks.attempt_failed(
                session,
                attempt.delivery_id,
                error=attempt.error,
                status=attempt.status,
                now=now,
                retry_hours=self.settings.webhooks.retry_hours,
            )
        if state is DeliveryStatus.dead:
            log.warning(
                "webhook delivery %s dead after %.0f h: %s",
                attempt.delivery_id,
                self.settings.webhooks.retry_hours,
                without_url_paths(attempt.error),
            )

    def _purge(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        with session_scope(self.engine) as session:
            purged = idempotency.purge(session)
        if purged:
            log.info("purged %d expired idempotency keys", purged)
        self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS

    def close(self, grace: float = 10.0) -> None:
        """Let the posts under way finish (up to `grace` seconds), then stop."""
        try:
            self.wait_idle(grace)
        except TimeoutError as error:
            log.warning("stopping with %s", error)
        self._run(self._close_clients())
        self.lookups.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    async def _close_clients(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


async def _start_of(response: httpx.Response) -> str:
    """At most ANSWER_BYTES of the answer's body, as text (the rest is never read)."""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= ANSWER_BYTES:
            break
    return data[:ANSWER_BYTES].decode("utf-8", "replace").strip()[:300]


def run_sender(settings: Settings, stop: threading.Event) -> None:
    """Deliver until `stop` is set, waiting out outages with a growing backoff. On PostgreSQL
    several senders may run, on different hosts: the one that leads the "webhooks" role
    (models.health.leadership) delivers, the others stand by."""
    engine = make_engine(settings.store.database_url)
    sender = Sender(engine, settings)
    backoff = Backoff("webhook sender", INTERVAL_SECONDS, log=log)
    heartbeat = Heartbeat(engine, "webhooks", log=log)
    leadership = Leadership(
        settings.store.database_url,
        "webhooks",
        poll_seconds=settings.dispatch.leader_poll_seconds,
        lease_seconds=settings.dispatch.leader_lease_seconds,
    )
    leadership.start()
    start_at: float | None = 0.0  # when to register REELROUTE_WEBHOOK_URL (None: done)
    try:
        while not stop.is_set():
            if not leadership.leading:
                stop.wait(leadership.poll_seconds)
                continue
            began, ok = time.monotonic(), False
            try:
                if start_at is not None and began >= start_at:
                    start_at = None if sender.start() else began + START_AGAIN_SECONDS
                posted = sender.pass_once()
                wait = backoff.succeeded() if posted == 0 else 0.0  # busy: straight on
                ok = True
            except Exception as error:  # an outage, or a surprise: the loop goes on
                wait = backoff.failed(error)
            heartbeat(time.monotonic() - began, ok=ok)
            stop.wait(wait)
    finally:
        leadership.stop()
        sender.close()
        engine.dispose()
