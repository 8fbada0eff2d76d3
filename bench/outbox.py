"""`make bench` (outbox): what the item-event outbox costs the hot path, and how quickly its
events reach a webhook receiver.

1. Claims per second of 8 concurrent claimer processes on PostgreSQL with a large backlog,
   without events (the baseline) and with each claim's `item.started` written in the same
   statement; and the events written per second. Target: claims/s falls by at most 10 %.
2. Delivery lag: items cancelled at 100 a second for 20 s, the webhook sender running, a local
   receiver verifying signatures: p50 and p95 from the state change to the receiver.
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
from reelroute.models.core.settings import load_settings
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox")
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    met = claims(options.items, options.seconds, options.rounds)
    lag(options.rate, options.lag_seconds)
    print("result: " + ("all targets met" if met else "a target was missed"))


if __name__ == "__main__":
    main()
