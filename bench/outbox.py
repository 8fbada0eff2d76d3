"""`make bench` (outbox): what the item-event outbox costs the hot path, and how quickly its
events reach a webhook receiver.

1. Claims per second of 8 concurrent claimer processes on PostgreSQL with a large backlog,
   without events (the baseline) and with each claim's `item.started` written in the same
   statement; and the events written per second. Target: claims/s falls by at most 10 %.
2. Delivery lag: items cancelled at 100 a second for 20 s, the webhook sender running, a local
   receiver verifying signatures: p50 and p95 from the state change to the receiver.
3. Fairness: 1,000 deliveries due for a receiver that accepts connections and never answers,
   then 100 for a good receiver: the seconds until the good one has all 100, against the same
   100 with no silent receiver, side by side. Target: about the time alone.

    python -m bench.outbox --fairness   # the third case only
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import Session
from standardwebhooks import Webhook

from bench.claims import run_claimers
from bench.data import add_items, fresh_database
from reelroute.deployments.launcher import free_port
from reelroute.flows.webhooks import run_sender
from reelroute.models.assembly import load_settings
from reelroute.models.items.lifecycle import cancel_item
from reelroute.models.outbox import endpoints
from reelroute.models.store.db import make_engine

CLAIMERS = 8


def claims(items: int, seconds: float, rounds: int) -> bool:
    print(
        f"claims with the outbox, {CLAIMERS} claimer processes, PostgreSQL, {items:,} items, "
        f"{rounds} rounds each way, alternating (median)"
    )
    rates: dict[bool, list[float]] = {False: [], True: []}
    written: list[float] = []
    for _ in range(rounds):
        for events in (False, True):
            url = fresh_database("reelroute_bench_outbox")
            add_items(url, items)
            before = _events(url)
            run = run_claimers(url, CLAIMERS, seconds, events=events)
            assert run.double_claims == 0
            rates[events].append(run.per_second)
            if events:
                written.append((_events(url) - before) / run.seconds)
    base, with_events = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"  without events (baseline)  {base:8.0f} claims/s   runs: {_runs(rates[False])}")
    print(f"  with events                {with_events:8.0f} claims/s   runs: {_runs(rates[True])}")
    print(f"  events written             {statistics.median(written):8.0f} /s (one per claim)")
    drop = 1 - with_events / base
    print(f"  claims/s change: {-drop:+.1%} (target: at most -10 %)")
    return drop <= 0.10


def _runs(values: list[float]) -> str:
    return ", ".join(f"{value:.0f}" for value in values)


def _events(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as connection:
        found = connection.execute(sa.text("SELECT count(*) FROM item_events")).scalar_one()
    engine.dispose()
    return int(found)


def lag(rate: float, seconds: float) -> None:
    url = fresh_database("reelroute_bench_lag")
    count = int(rate * seconds)
    add_items(url, count * 4)  # a quarter pending: `count` of them are cancelled
    settings = load_settings(
        _env_file=None,
        database_url=url,
        webhook_signing_key=SecretStr("bench-signing-key-" + "k" * 20),
        webhook_allow_networks="127.0.0.0/8",
    )
    arrived: dict[str, float] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            payload = Webhook(secret).verify(body, dict(self.headers))
            with lock:
                arrived[payload["data"]["item_id"]] = time.time()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    receiver = f"http://127.0.0.1:{server.server_port}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    engine = make_engine(url)
    with Session(engine) as session:
        endpoint, secret = endpoints.register(
            session, settings, url=receiver, events=["item.cancelled"]
        )
        endpoint.is_default = True
        session.add(endpoint)
        session.execute(sa.text("UPDATE item_events SET fanned_out = true"))
        session.commit()
        pending = [
            row[0]
            for row in session.execute(
                sa.text("SELECT id FROM video_items WHERE status = 'pending' LIMIT :n"),
                {"n": count},
            ).all()
        ]
    stop = threading.Event()
    sender = threading.Thread(target=run_sender, args=(settings, stop), daemon=True)
    sender.start()
    changed: dict[str, float] = {}
    started = time.time()
    for number, item_id in enumerate(pending):
        due = started + number / rate
        if (wait := due - time.time()) > 0:
            time.sleep(wait)
        with Session(engine) as session:
            cancel_item(session, item_id=item_id)
            session.commit()
        changed[str(item_id)] = time.time()
    deadline = time.time() + 60
    while len(arrived) < len(changed) and time.time() < deadline:
        time.sleep(0.1)
    stop.set()
    sender.join(timeout=30)
    server.shutdown()
    server.server_close()
    engine.dispose()
    lags = sorted(arrived[i] - changed[i] for i in changed if i in arrived)
    p50 = statistics.median(lags)
    p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))]
    print(f"\nwebhook delivery lag, {rate:.0f} state changes/s for {seconds:.0f} s, PostgreSQL")
    print(f"  delivered {len(lags)} of {len(changed)}")
    print(f"  p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")


def fairness(backlog: int = 1000, good_count: int = 100) -> None:
    """Case 3 (see the module's docstring)."""
    import socket

    from reelroute.flows.webhooks import Sender
    from reelroute.models.core.tasks import TaskSpec
    from reelroute.models.intake.batches import add_batch
    from reelroute.models.intake.photos import store_photo
    from reelroute.models.items.groups import create_group
    from reelroute.models.store.files import Storage

    def good_alone(silent_rows: int) -> float:
        url = fresh_database("reelroute_bench_fair")
        settings = load_settings(
            _env_file=None,
            database_url=url,
            storage_url="memory://bench-fair",
            webhook_signing_key=SecretStr("bench-signing-key-" + "k" * 20),
            webhook_allow_networks="127.0.0.0/8",
            routing_policy="threshold",
        )
        engine = make_engine(url)
        silent = socket.create_server(("127.0.0.1", 0))
        held: list[socket.socket] = []

        def hold() -> None:
            while True:
                try:
                    held.append(silent.accept()[0])  # accepted, never answered
                except OSError:
                    return

        threading.Thread(target=hold, daemon=True).start()
        arrived: set[str] = set()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                arrived.add(body["data"]["item_id"])
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        good_url = f"http://127.0.0.1:{server.server_port}/hooks"
        with Session(engine, expire_on_commit=False) as session:
            group = create_group(session, name="fair")
            photo = store_photo(
                session, storage=Storage(settings.store.storage_url), group_id=group.id,
                data=_png(), filename="p.png", settings=settings,
            )  # fmt: skip
            silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}/silent"
            endpoint, _ = endpoints.register(
                session, settings, url=silent_url, events=["item.created"]
            )
            endpoint.is_default = silent_rows > 0
            session.add(endpoint)
            endpoints.register(session, settings, url=good_url, events=["item.created"])
            for start in range(0, silent_rows, 500):
                tasks = [
                    TaskSpec(photo_id=photo.id, prompt=f"s{n}", inference_provider="wan_local")
                    for n in range(start, min(silent_rows, start + 500))
                ]
                add_batch(session, group_id=group.id, tasks=tasks, settings=settings)
            session.commit()
        sender = Sender(engine, settings)
        try:
            while sender.pass_once():  # the silent receiver's rows are made and due first
                pass
            with Session(engine, expire_on_commit=False) as session:
                endpoint.is_default = False
                session.add(endpoint)
                tasks = [
                    TaskSpec(
                        photo_id=photo.id,
                        prompt=f"g{n}",
                        inference_provider="wan_local",
                        webhook_url=good_url,
                    )
                    for n in range(good_count)
                ]
                add_batch(session, group_id=group.id, tasks=tasks, settings=settings)
                session.commit()
            started = time.monotonic()
            while len(arrived) < good_count and time.monotonic() - started < 300:
                sender.pass_once()
                time.sleep(0.05)
            took = time.monotonic() - started
        finally:
            sender.close(grace=0)
            server.shutdown()
            silent.close()
            engine.dispose()
        if len(arrived) < good_count:
            return float("inf")
        return took

    alone = good_alone(0)
    behind = good_alone(backlog)
    print(
        f"fairness: {good_count} deliveries to a good receiver: alone {alone:.2f} s; behind "
        f"{backlog} due for a silent one {behind:.2f} s ({behind / alone:.2f}x)"
    )


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox")
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fairness", action="store_true", help="the third case only")
    options = parser.parse_args()
    if options.fairness:
        fairness()
        return
    met = claims(options.items, options.seconds, options.rounds)
    lag(options.rate, options.lag_seconds)
    fairness()
    print("result: " + ("all targets met" if met else "a target was missed"))


if __name__ == "__main__":
    main()
