"""No receiver can stop the webhook sender: bad endpoint URLs, receivers that drip or flood, a
DNS answer that changes; and what the endpoints' management does to deliveries (disable,
enable, rotate with an overlap, delete, the default endpoint following the setting)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import psutil
import pytest
from sqlmodel import Session, select
from standardwebhooks import Webhook

from reelroute.flows.webhooks import Sender
from reelroute.models.core.enums import DeliveryStatus
from reelroute.models.core.tables import Group, utcnow
from reelroute.models.items.lifecycle import cancel_item
from reelroute.models.outbox import endpoints
from reelroute.models.outbox.tables import WebhookDelivery, WebhookEndpoint
from tests.flows.receivers import Receiver, drain, new_items, register


class Hostile:
    """A raw TCP receiver that reads the request, then answers as `behaviour` says."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks"
        self.requests = 0
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += connection.recv(65536)
                fields = head.lower().split(b"content-length:")[1]
                length = int(fields.split(b"\r\n")[0])
                body = head.split(b"\r\n\r\n", 1)[1]
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests += 1
                if self.behaviour == "silent":  # accepted, read, never answered
                    self.stop.wait()
                elif self.behaviour == "drip-body":  # 200, then a body one byte at a time
                    connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
                    self._drip(connection, b"x" * 100_000)
                elif self.behaviour == "drip-headers":  # a header that never ends
                    connection.sendall(b"HTTP/1.1 200 OK\r\n")
                    self._drip(connection, b"x-slow: " + b"y" * 100_000)
                elif self.behaviour == "drip-error":  # 503, its body one byte at a time
                    connection.sendall(b"HTTP/1.1 503 Busy\r\ncontent-length: 100000\r\n\r\n")
                    self._drip(connection, b"z" * 100_000)
                elif self.behaviour == "flood":  # 1 GB of error body, as fast as it goes
                    size = 1 << 30
                    connection.sendall(
                        f"HTTP/1.1 500 No\r\ncontent-length: {size}\r\n\r\n".encode()
                    )
                    chunk = b"f" * (1 << 20)
                    for _ in range(size // len(chunk)):
                        if self.stop.is_set():
                            break
                        connection.sendall(chunk)
            except OSError:
                return

    def _drip(self, connection: socket.socket, data: bytes) -> None:
        for byte in data:
            if self.stop.is_set():
                return
            connection.sendall(bytes([byte]))
            time.sleep(0.3)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def fast_settings(hook_settings):
    return hook_settings.replaced(webhook_timeout_seconds=2.0)


def attach(engine, url: str, group_id: uuid.UUID) -> uuid.UUID:
    """An endpoint row for `url` as it is (no check: a row from before URLs were checked, or a
    receiver that went bad), named by the group."""
    with Session(engine) as session:
        endpoint = WebhookEndpoint(url=url)
        session.add(endpoint)
        group = session.get(Group, group_id)
        assert group is not None
        group.webhook_endpoint_id = endpoint.id
        session.add(group)
        session.commit()
        return endpoint.id


def deliveries_to(engine, endpoint_id: uuid.UUID) -> list[WebhookDelivery]:
    with Session(engine) as session:
        found = session.exec(
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        )
        return list(found.all())


def deliveries_to_item(engine, item_id: uuid.UUID) -> list[WebhookDelivery]:
    with Session(engine) as session:
        found = session.exec(select(WebhookDelivery).where(WebhookDelivery.item_id == item_id))
        return list(found.all())


def test_a_bad_endpoint_url_fails_its_own_deliveries_only(engine, fast_settings, receiver):
    register(engine, fast_settings, receiver)
    batches = [new_items(engine, fast_settings, 2, webhook_url=receiver.url) for _ in range(2)]
    items = [item for batch in batches for item in batch]
    bad = []
    for batch, url in zip(
        batches, ("https://example.com:99999/h", "https://a..b.example/h"), strict=True
    ):
        assert batch[0].group_id is not None
        bad.append(attach(engine, url, batch[0].group_id))
    with Session(engine) as session:
        for item in items:
            cancel_item(session, item_id=item.id)
        session.commit()
    sender = Sender(engine, fast_settings)
    try:
        drain(sender, lambda: len(receiver.accepted) == 8)
        for _ in range(5):  # more passes: nothing is sent twice
            sender.pass_once()
            sender.wait_idle()
    finally:
        sender.close()
    assert sorted(receiver.ids) == sorted(set(receiver.ids)) and len(receiver.ids) == 8
    for endpoint_id, why in zip(bad, ("port", "not a valid host name"), strict=True):
        found = deliveries_to(engine, endpoint_id)
        assert found and all(d.status is DeliveryStatus.pending for d in found)
        first = min(found, key=lambda d: d.event_id)
        assert first.attempts >= 1 and why in (first.last_error or ""), first.last_error


def test_dripping_and_flooding_receivers_neither_stall_nor_exhaust_the_sender(
    engine, fast_settings
):
    good = [Receiver() for _ in range(3)]
    hostile = [Hostile(kind) for kind in ("drip-body", "drip-headers", "drip-error", "flood")]
    process = psutil.Process()
    try:
        secrets = {}
        every = [r.url for r in good] + [h.url for h in hostile]
        with Session(engine) as session:
            for url in every:
                endpoint, secret = endpoints.register(
                    session, fast_settings, url=url, events=["item.cancelled"]
                )
                endpoint.is_default = True  # every item's events
                session.add(endpoint)
                secrets[url] = secret
            session.commit()
        for receiver in good:
            receiver.secret = secrets[receiver.url]
        items = new_items(engine, fast_settings, 6)
        sender = Sender(engine, fast_settings)
        before = process.memory_info().rss
        lags: list[float] = []
        peak = before
        try:
            for item in items:
                with Session(engine) as session:
                    cancel_item(session, item_id=item.id)
                    session.commit()
                cancelled_at = time.monotonic()
                wanted = [r for r in good]
                while any(r.types_of(item.id) != ["item.cancelled"] for r in wanted):
                    assert time.monotonic() - cancelled_at < 10, "a good receiver waited"
                    sender.pass_once()
                    peak = max(peak, process.memory_info().rss)
                    time.sleep(0.05)
                lags.append(time.monotonic() - cancelled_at)
            deadline = time.monotonic() + 20
            while sum(h.requests for h in hostile) < len(hostile):
                assert time.monotonic() < deadline
                sender.pass_once()
                time.sleep(0.1)
            sender.wait_idle(timeout=30)  # every hostile post ended by its deadline
            peak = max(peak, process.memory_info().rss)
        finally:
            sender.close(grace=30)
        assert max(lags) < 2.0, lags
        assert peak - before < 100 * 2**20, f"grew by {(peak - before) / 2**20:.0f} MiB"
        with Session(engine) as session:
            rows = session.exec(
                select(WebhookDelivery, WebhookEndpoint.url).join(
                    WebhookEndpoint,
                    WebhookEndpoint.id == WebhookDelivery.endpoint_id,  # type: ignore[arg-type]
                )
            ).all()
        errors = {url: d.last_error or "" for d, url in rows if d.attempts}
        urls = {h.behaviour: h.url for h in hostile}
        assert "no complete answer within 2 s" in errors[urls["drip-headers"]]
        assert "no complete answer within 2 s" in errors[urls["drip-error"]]
        assert errors[urls["flood"]].startswith("answered 500, an error: ffff")
        assert len(errors[urls["flood"]]) <= 1000
    finally:
        for good_one in good:
            good_one.close()
        for bad_one in hostile:
            bad_one.close()


def test_posts_are_signed_when_sent_not_when_their_pass_began(engine, fast_settings, receiver):
    register(engine, fast_settings, receiver)
    (item,) = new_items(engine, fast_settings, 1, webhook_url=receiver.url)
    stamps: list[int] = []
    original = receiver.server.RequestHandlerClass.do_POST

    def noting(handler: BaseHTTPRequestHandler) -> None:
        stamps.append(int(handler.headers["webhook-timestamp"]))
        original(handler)

    receiver.server.RequestHandlerClass.do_POST = noting
    sender = Sender(engine, fast_settings)
    try:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        sender.pass_once(now=past)  # a pass that "began" ten minutes ago
        sender.wait_idle()
    finally:
        sender.close()
    assert receiver.types_of(item.id) == ["item.created"]
    assert abs(stamps[0] - time.time()) < 30


def test_a_disabled_endpoint_gets_nothing_until_enabled(engine, hook_settings, receiver):
    endpoint = register(engine, hook_settings, receiver)
    with Session(engine) as session:
        endpoints.change(session, endpoint.id, enabled=False)
        session.commit()
    (item,) = new_items(engine, hook_settings, 1, webhook_url=receiver.url)
    sender = Sender(engine, hook_settings)
    try:
        for _ in range(3):
            sender.pass_once()
            sender.wait_idle()
        assert receiver.accepted == []
        with Session(engine) as session:
            endpoints.change(session, endpoint.id, enabled=True)
            cancel_item(session, item_id=item.id)
            session.commit()
        drain(sender, lambda: receiver.types_of(item.id) == ["item.cancelled"])
    finally:
        sender.close()
    # made while it was disabled: never sent (and nothing waits for it)
    assert all(d.status is DeliveryStatus.delivered for d in deliveries_to(engine, endpoint.id))


def test_a_rotation_signs_with_both_secrets_during_its_overlap(engine, hook_settings, receiver):
    endpoint = register(engine, hook_settings, receiver)
    old = receiver.secret
    with Session(engine) as session:
        _, new = endpoints.rotate(session, hook_settings, endpoint.id, overlap_hours=1)
        session.commit()
    assert new != old
    bodies: list[tuple[bytes, dict[str, str]]] = []
    original = receiver.server.RequestHandlerClass.do_POST

    def keeping(handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers["content-length"]))
        bodies.append((body, dict(handler.headers)))
        handler.send_response(204)
        handler.end_headers()

    receiver.server.RequestHandlerClass.do_POST = keeping
    new_items(engine, hook_settings, 1, webhook_url=receiver.url)
    sender = Sender(engine, hook_settings)
    try:
        drain(sender, lambda: len(bodies) == 1)
    finally:
        sender.close()
        receiver.server.RequestHandlerClass.do_POST = original
    body, headers = bodies[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):  # a receiver with either secret accepts it
        assert Webhook(secret).verify(body, headers)["type"] == "item.created"
    with Session(engine) as session:
        _, newer = endpoints.rotate(session, hook_settings, endpoint.id, overlap_hours=0)
        session.commit()
        assert endpoints.signing_secrets(endpoints.get(session, endpoint.id), hook_settings) == [
            newer
        ]


def test_deleting_an_endpoint_deletes_its_deliveries_and_frees_its_url(
    engine, hook_settings, receiver
):
    endpoint = register(engine, hook_settings, receiver)
    new_items(engine, hook_settings, 2, webhook_url=receiver.url)
    sender = Sender(engine, hook_settings)
    try:
        drain(sender, lambda: len(receiver.accepted) == 2)
    finally:
        sender.close()
    with Session(engine) as session:
        endpoints.delete(session, endpoint.id)
        session.commit()
    assert deliveries_to(engine, endpoint.id) == []
    again = register(engine, hook_settings, receiver)
    assert again.id != endpoint.id


def test_the_default_endpoint_follows_the_setting(engine, hook_settings, receiver):
    other = Receiver()
    try:
        first = hook_settings.replaced(webhook_url=receiver.url)
        second = hook_settings.replaced(webhook_url=other.url)
        with Session(engine) as session:
            a = endpoints.ensure_default(session, first)
            session.commit()
            assert a is not None and a.is_default
            b = endpoints.ensure_default(session, second)
            session.commit()
            assert b is not None and b.is_default and b.id != a.id
            assert not endpoints.get(session, a.id).is_default
            assert endpoints.ensure_default(session, hook_settings) is None
            session.commit()
            assert not endpoints.get(session, b.id).is_default
    finally:
        other.close()


def test_the_receivers_latest_answers_are_kept_on_its_endpoint(engine, hook_settings, receiver):
    endpoint = register(engine, hook_settings, receiver)
    receiver.fail_until = time.monotonic() + 1.0
    new_items(engine, hook_settings, 1, webhook_url=receiver.url)
    sender = Sender(engine, hook_settings)
    try:
        drain(sender, lambda: len(receiver.accepted) == 1)
    finally:
        sender.close()
    with Session(engine) as session:
        answers = endpoints.get(session, endpoint.id).last_answers or []
    assert answers[0]["status"] == 204 and answers[-1]["status"] == 503
    assert all({"at", "status", "error", "ms"} <= set(a) for a in answers)


# --- TLS to a pinned address -------------------------------------------------------------------


def certificate(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for `name` (issued by a CA of ours), and a client
    context that trusts that CA only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reelroute test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


@pytest.fixture
def tls_receiver(tmp_path) -> Iterator[tuple[Receiver, ssl.SSLContext]]:
    server_context, client_context = certificate(tmp_path, "hooks.reelroute.test")
    receiver = Receiver()
    receiver.server.socket = server_context.wrap_socket(receiver.server.socket, server_side=True)
    port = receiver.server.server_port
    receiver.url = f"https://hooks.reelroute.test:{port}/hooks"
    yield receiver, client_context
    receiver.close()


def test_tls_checks_the_receivers_name_while_connecting_to_the_pinned_address(
    engine, hook_settings, tls_receiver
):
    receiver, trust = tls_receiver
    loopback = lambda _host, _port: ["127.0.0.1"]  # noqa: E731
    with Session(engine, expire_on_commit=False) as session:
        endpoint, receiver.secret = endpoints.register(
            session, hook_settings, url=receiver.url, resolver=loopback
        )
        session.commit()
    (item,) = new_items(engine, hook_settings, 1, webhook_url=receiver.url)
    sender = Sender(engine, hook_settings, resolver=loopback, verify=trust)
    try:
        drain(sender, lambda: receiver.types_of(item.id) == ["item.created"])
    finally:
        sender.close()
    # The same server under another name: its certificate does not match, nothing is sent.
    assert ipaddress.ip_address("127.0.0.1").is_loopback
    other = receiver.url.replace("hooks.reelroute.test", "other.reelroute.test")
    with Session(engine, expire_on_commit=False) as session:
        endpoints.register(session, hook_settings, url=other, resolver=loopback)
        session.commit()
    new_items(engine, hook_settings, 1, webhook_url=other)
    sender = Sender(engine, hook_settings, resolver=loopback, verify=trust)
    try:
        sender.pass_once()
        sender.wait_idle()
    finally:
        sender.close()
    with Session(engine) as session:
        wrong = endpoints.find(session, other)
        assert wrong is not None
    [delivery] = deliveries_to(engine, wrong.id)
    assert delivery.attempts == 1 and "CERTIFICATE_VERIFY_FAILED" in (delivery.last_error or "")
    assert len(receiver.accepted) == 1 and endpoint.id != wrong.id


def test_a_name_that_turns_private_after_its_check_is_not_connected_to(
    engine, hook_settings, tls_receiver
):
    """DNS rebinding: the name resolves to a public address when it is checked and to the
    receiver's loopback address right after. The post goes to the address that was checked
    (one resolution per post), so the loopback receiver never hears of it."""
    receiver, trust = tls_receiver
    closed = hook_settings.replaced(webhook_allow_networks="", webhook_timeout_seconds=2.0)
    answers: list[str] = []

    def rebinding(_host: str, _port: int) -> list[str]:
        answers.append("203.0.114.9" if len(answers) % 2 == 0 else "127.0.0.1")
        return [answers[-1]]

    with Session(engine) as session:
        endpoints.register(session, closed, url=receiver.url, resolver=lambda *_: ["203.0.114.9"])
        session.commit()
    (item,) = new_items(engine, closed, 1, webhook_url=receiver.url)
    sender = Sender(engine, closed, resolver=rebinding, verify=trust)
    try:
        for _ in range(3):
            sender.pass_once(now=utcnow() + dt.timedelta(hours=1))  # retries are due at once
            sender.wait_idle()
    finally:
        sender.close()
    [delivery] = deliveries_to_item(engine, item.id)
    assert delivery.attempts == 3 and len(answers) == 3  # one resolution per post
    assert receiver.accepted == []


# --- fairness: no receiver's backlog or name server holds back the others ------------------


def test_a_silent_receivers_backlog_does_not_hide_another_receivers_deliveries(
    engine, fast_settings, receiver
):
    """250 deliveries due for a receiver that never answers, older than a good receiver's 20:
    the good one gets all 20 (the due query took the 200 oldest of all endpoints, all the
    silent one's, and the good one got none)."""
    silent = Hostile("silent")
    try:
        with Session(engine) as session:
            endpoints.register(session, fast_settings, url=silent.url, events=["item.created"])
            found = endpoints.find(session, silent.url)
            assert found is not None
            found.is_default = True
            session.add(found)
            session.commit()
        new_items(engine, fast_settings, 250)
        register(engine, fast_settings, receiver)
        items = new_items(engine, fast_settings, 20, webhook_url=receiver.url)
        sender = Sender(engine, fast_settings)
        try:
            drain(sender, lambda: len(receiver.accepted) == 20, timeout=30)
        finally:
            sender.close(grace=0)
        assert sorted(receiver.ids) == sorted(set(receiver.ids))
        assert {p["data"]["item_id"] for p in receiver.accepted} == {str(i.id) for i in items}
    finally:
        silent.close()


def test_a_name_server_that_never_answers_holds_back_no_other_receiver(
    engine, fast_settings, receiver
):
    """Posts to a name whose lookups never return: they fail at their deadline, holding one
    lookup thread; the good receiver (another name) gets every delivery meanwhile. Before,
    lookups ran on the loop's default pool (6 threads on two cores) and filled it."""
    release = threading.Event()
    lookups: list[str] = []

    def resolver(host: str, _port: int) -> list[str]:
        lookups.append(host)
        if host == "stuck.reelroute.test":
            release.wait(60)
        return ["127.0.0.1"]

    good_url = receiver.url.replace("127.0.0.1", "good.reelroute.test")
    receiver.url = good_url
    with Session(engine) as session:
        _, receiver.secret = endpoints.register(
            session, fast_settings, url=good_url, resolver=resolver
        )
        session.commit()
    stuck = [
        attach(
            engine,
            f"http://stuck.reelroute.test:{port}/h",
            new_items(engine, fast_settings, 1)[0].group_id,
        )
        for port in range(9001, 9021)
    ]
    items = new_items(engine, fast_settings, 12, webhook_url=good_url)
    sender = Sender(engine, fast_settings, resolver=resolver)
    try:
        drain(sender, lambda: len(receiver.accepted) == 12, timeout=30)
        assert lookups.count("stuck.reelroute.test") <= 8  # one thread each at most
        assert {p["data"]["item_id"] for p in receiver.accepted} == {str(i.id) for i in items}
    finally:
        release.set()
        sender.close(grace=5)
    assert len(stuck) == 20


def test_kept_alive_connections_are_never_shared_between_host_names(engine, hook_settings):
    """Two names that resolve to one address: each post travels on a connection made for its
    own name (httpx pooled by the pinned address, so b's post rode a's connection)."""
    seen: list[tuple[int, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            seen.append((self.client_address[1], self.headers["host"].split(":")[0]))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    loopback = lambda _host, _port: ["127.0.0.1"]  # noqa: E731
    urls = [f"http://{name}.reelroute.test:{server.server_port}/h" for name in ("a", "b")]
    try:
        with Session(engine) as session:
            for url in urls:
                endpoints.register(session, hook_settings, url=url, resolver=loopback)
            session.commit()
        sender = Sender(engine, hook_settings, resolver=loopback)
        try:
            for round_ in range(3):
                for url in urls:
                    new_items(engine, hook_settings, 1, webhook_url=url)
                drain(sender, lambda r=round_: len(seen) == 2 * (r + 1))
        finally:
            sender.close()
    finally:
        server.shutdown()
        server.server_close()
    names_per_connection: dict[int, set[str]] = {}
    for port, name in seen:
        names_per_connection.setdefault(port, set()).add(name)
    assert all(len(names) == 1 for names in names_per_connection.values()), seen
    assert len(names_per_connection) < len(seen)  # connections are still kept alive per name


def test_a_default_url_that_does_not_resolve_holds_back_no_endpoint(
    engine, hook_settings, receiver, caplog
):
    """REELROUTE_WEBHOOK_URL names a host that does not resolve: the sender says so and serves
    the other endpoints (start() raised, on every turn of the loop, and nothing was sent)."""
    settings = hook_settings.replaced(webhook_url="https://hooks.does-not-resolve.invalid/t0ken")
    register(engine, settings, receiver)
    (item,) = new_items(engine, settings, 1, webhook_url=receiver.url)

    def nowhere(host: str, port: int) -> list[str]:
        if host.endswith(".invalid"):
            raise socket.gaierror("no such name")
        return ["127.0.0.1"]

    sender = Sender(engine, settings, resolver=nowhere)
    try:
        assert sender.start() is False
        drain(sender, lambda: receiver.types_of(item.id) == ["item.created"])
    finally:
        sender.close()
    said = " ".join(record.getMessage() for record in caplog.records)
    assert "REELROUTE_WEBHOOK_URL is not registered yet" in said and "t0ken" not in said
