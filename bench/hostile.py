"""Memory and load under hostile callers and receivers, against `reelroute web` and
`reelroute webhooks` as separate processes (items on PostgreSQL):

1. 20 unauthenticated 100 MB bodies at once, on /api and on /admin (with a Content-Length, and
   streamed without one): the web process's peak RSS against its idle RSS;
2. 50 open SSE streams while items change: the web process's peak RSS, and the database's
   transactions per second with 1 stream and with 50 (one poller serves them all);
3. one dripping and one flooding receiver among 10 good ones: the sender's peak RSS, and the
   good receivers' delivery lag (event written -> received), p50 and p95;
4. 8 authenticated uploads of 500 parts of 1 MB at once (4 with the worker token to an item
   being made, 4 with the admin token to a group's photos): the web process's peak RSS.

    python -m bench.hostile            # all four
    python -m bench.hostile --uploads  # the fourth only

Targets: peak RSS within 100 MB of idle; the good receivers' lag p95 under 2 s; SSE's
transactions per second the same for 1 and 50 streams (within 1.5x).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

from bench.data import fresh_database
from reelroute.deployments.launcher import free_port, wait_until
from reelroute.models.store.db import make_engine

ADMIN = secrets.token_urlsafe(32)
WORKER = secrets.token_urlsafe(32)
KEY = secrets.token_urlsafe(32)
MB = 1 << 20


class Peak:
    """The peak RSS of a process, sampled every 20 ms while in use."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def __enter__(self) -> Peak:
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def serving(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process of ours, stopped at the end."""
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def big_bodies(url: str) -> None:
    """20 unauthenticated 100 MB bodies at once: half with a Content-Length, half streamed."""

    def one(number: int) -> None:
        path = "/api/admin/tasks/add" if number % 2 else "/admin/gradio_api/queue/join"

        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b" " * MB

        headers = {"content-type": "application/json"}
        if number % 4 < 2:
            headers["content-length"] = str(100 * MB)
        with contextlib.suppress(httpx.HTTPError):  # refused mid-body: the connection closes
            httpx.post(f"{url}{path}", content=chunks(), headers=headers, timeout=60)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def many_parts(url: str, group_id: str, item_id: str, attempt: int) -> None:
    """8 uploads of 500 parts of 1 MB each at once, streamed (the client holds one part)."""
    part = os.urandom(MB)

    def body(boundary: str, name: str) -> Iterator[bytes]:
        for number in range(500):
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="p{number}.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            yield part
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    def one(number: int) -> None:
        boundary = f"bench{number}{secrets.token_hex(8)}"
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        if number % 2:
            path, name = f"/api/worker/tasks/{item_id}/complete?attempt={attempt}", "video"
            headers.update(bearer(WORKER))
        else:
            path, name = f"/api/admin/groups/{group_id}/photos", "files"
            headers.update(bearer(ADMIN))
        with contextlib.suppress(httpx.HTTPError):  # refused mid-body: the connection closes
            answer = httpx.post(
                f"{url}{path}", content=body(boundary, name), headers=headers, timeout=120
            )
            print(f"   upload {number}: {answer.status_code} {answer.text[:120]}")

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def uploads_case(url: str, pid: int) -> None:
    """Case 4: the web process's peak RSS during many-part uploads, against idle."""
    (item,) = add_items(url, 1)
    group = httpx.get(f"{url}/api/admin/items/{item}", headers=bearer(ADMIN)).json()["data"]
    claimed = httpx.post(
        f"{url}/api/worker/next-task",
        headers=bearer(WORKER),
        json={"worker_id": "bench-worker", "worker_type": "runway"},
    ).json()["data"]
    time.sleep(2)
    idle = psutil.Process(pid).memory_info().rss
    with Peak(pid) as uploads:
        many_parts(url, group["group_id"], claimed["item_id"], claimed["attempt"])
    print(
        f"4. 8 uploads of 500 parts of 1 MB (worker and photo routes): idle RSS "
        f"{idle / MB:.0f} MiB, peak +{(uploads.peak - idle) / MB:.0f} MiB"
    )


def transactions(engine: sa.Engine, database: str) -> int:
    """Transactions the database has seen so far (commits and rollbacks)."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.text(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :name"
                ),
                {"name": database},
            ).scalar_one()
        )


def quiet_rate(engine: sa.Engine, database: str, seconds: float = 5.0) -> float:
    """Transactions per second over a quiet window (pg_stat is updated with a delay: read it
    through a fresh snapshot each time)."""
    start = transactions(engine, database)
    time.sleep(seconds)
    return (transactions(engine, database) - start) / seconds


def open_streams(url: str, count: int, stop: threading.Event) -> list[threading.Thread]:
    """`count` SSE clients reading until `stop`."""

    def read() -> None:
        with httpx.stream(
            "GET", f"{url}/api/admin/events", headers=bearer(ADMIN), timeout=None
        ) as answer:
            for _ in answer.iter_lines():
                if stop.is_set():
                    return

    threads = [threading.Thread(target=read, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def add_items(url: str, count: int) -> list[str]:
    """`count` Gen-4 Turbo items in a new group, through the API; their ids."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 90, 200)).save(buffer, format="PNG")
    headers = bearer(ADMIN)
    group = httpx.post(
        f"{url}/api/admin/groups", headers=headers, json={"name": f"hostile {time.time()}"}
    ).json()["data"]["id"]
    photo = httpx.post(
        f"{url}/api/admin/groups/{group}/photos",
        headers=headers,
        files=[("files", ("p.png", buffer.getvalue(), "image/png"))],
    ).json()["data"][0]["id"]
    tasks = [
        {"photo_id": photo, "prompt": f"p{n}", "inference_provider": "runway_gen4_turbo"}
        for n in range(count)
    ]
    added = httpx.post(
        f"{url}/api/admin/tasks/add", headers=headers, json={"group_id": group, "tasks": tasks}
    )
    return [item["id"] for item in added.json()["data"]]


class GoodReceiver:
    """Records when each item's `item.cancelled` arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                receiver.arrived.setdefault(body["data"]["item_id"], time.time())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def hostile_receiver(kind: str) -> str:
    """A receiver that drips its answer (`drip`) or floods one (`flood`); its URL."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(1 << 20)
                if kind == "drip":
                    connection.sendall(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(10_000):
                        connection.sendall(b"x")
                        time.sleep(0.5)
                else:
                    connection.sendall(b"HTTP/1.1 500 No\r\ncontent-length: 1073741824\r\n\r\n")
                    chunk = b"f" * MB
                    for _ in range(1024):
                        connection.sendall(chunk)
            except OSError:
                return

    def serve() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/hooks"


def main() -> None:
    """Run the three cases and print their figures against their targets."""
    database = "reelroute_bench_hostile"
    url_db = fresh_database(database)
    engine = make_engine(url_db)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        env = {
            **os.environ,
            "REELROUTE_DATABASE_URL": url_db,
            "REELROUTE_STORAGE_URL": str(root / "storage"),
            "REELROUTE_ADMIN_TOKEN": ADMIN,
            "REELROUTE_WORKER_TOKEN": WORKER,
            "REELROUTE_WEBHOOK_SIGNING_KEY": KEY,
            "REELROUTE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
            "REELROUTE_WEBHOOK_TIMEOUT_SECONDS": "2",
            "REELROUTE_ROUTING_POLICY": "threshold",
        }
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        web_argv = [sys.executable, "-m", "reelroute", "web", "--port", str(port)]
        with serving(web_argv, env, root / "web.log") as web:
            wait_until(f"{url}/docs", 60, "the web app")
            add_items(url, 5)  # warm: every route used once
            if "--uploads" in sys.argv:
                uploads_case(url, web.pid)
                return

            time.sleep(2)
            idle = psutil.Process(web.pid).memory_info().rss
            with Peak(web.pid) as bodies:
                big_bodies(url)
            print(f"web app idle RSS {idle / MB:.0f} MiB")
            grew = (bodies.peak - idle) / MB
            print(f"1. 20 unauthenticated 100 MB bodies on /api and /admin: peak +{grew:.0f} MiB")

            stop = threading.Event()
            open_streams(url, 1, stop)
            time.sleep(2)
            one = quiet_rate(engine, database)
            open_streams(url, 49, stop)
            time.sleep(2)
            with Peak(web.pid) as streams:
                fifty = quiet_rate(engine, database)
                add_items(url, 20)
                time.sleep(2)
            stop.set()
            print(
                f"2. 50 SSE streams: peak +{(streams.peak - idle) / MB:.0f} MiB; database "
                f"transactions/s with 1 stream {one:.1f}, with 50 {fifty:.1f} "
                f"({fifty / max(one, 0.1):.2f}x)"
            )

            good = [GoodReceiver() for _ in range(10)]
            hostile = [hostile_receiver("drip"), hostile_receiver("flood")]
            for target in [r.url for r in good] + hostile:
                registered = httpx.post(
                    f"{url}/api/admin/webhooks",
                    headers=bearer(ADMIN),
                    json={"url": target, "events": ["item.cancelled"]},
                )
                assert registered.status_code == 200, registered.text
            items = add_items(url, 40)
            sender_argv = [sys.executable, "-m", "reelroute", "webhooks"]
            with serving(sender_argv, env, root / "sender.log") as sender:
                time.sleep(3)
                # Every endpoint gets every item's events (after the sender's start, which
                # makes the endpoint of REELROUTE_WEBHOOK_URL the only default one).
                with engine.begin() as connection:
                    connection.execute(sa.text("UPDATE webhook_endpoints SET is_default = true"))
                sender_idle = psutil.Process(sender.pid).memory_info().rss
                cancelled: dict[str, float] = {}
                with Peak(sender.pid) as sending:
                    for item in items:
                        cancelled[item] = time.time()
                        httpx.post(f"{url}/api/admin/tasks/{item}/cancel", headers=bearer(ADMIN))
                        time.sleep(0.25)
                    deadline = time.time() + 30
                    while time.time() < deadline and any(len(r.arrived) < len(items) for r in good):
                        time.sleep(0.2)
            lags = sorted(
                r.arrived[item] - cancelled[item]
                for r in good
                for item in items
                if item in r.arrived
            )
            missing = len(good) * len(items) - len(lags)
            p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))] if lags else float("inf")
            grown = (sending.peak - sender_idle) / MB
            print(
                f"3. webhooks, 1 dripping and 1 flooding receiver among 10 good ones: sender "
                f"idle RSS {sender_idle / MB:.0f} MiB, peak +{grown:.0f} MiB; good receivers' "
                f"lag p50 {statistics.median(lags) if lags else float('inf'):.2f} s, "
                f"p95 {p95:.2f} s "
                f"({missing} not delivered)"
            )
            uploads_case(url, web.pid)
    engine.dispose()
    print("targets: peak RSS within 100 MiB of idle; lag p95 < 2 s; SSE transactions/s within")
    print("         1.5x for 1 and 50 streams")


if __name__ == "__main__":
    main()
