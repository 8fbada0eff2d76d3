"""A real Prometheus server (Debian's `prometheus`, on a free loopback port) scrapes
`reelroute up` in sandbox mode while items run: through its HTTP API the queue gauges, the spend
counter and the latency histogram move as the items go through."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest

from reelroute.deployments.launcher import free_port
from tests.e2e.conftest import Up, wait_until
from tests.models.helpers import image_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def query(prometheus: str, expression: str) -> float | None:
    """The value of an instant query that returns one sample (None: no sample).

    A Prometheus still opening its TSDB answers 503 "Service Unavailable" in plain text:
    raise_for_status makes that an httpx.HTTPError, which the first wait reads as "not yet".
    """
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression})
    response.raise_for_status()
    answer = response.json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_sees_the_queue_the_spend_and_the_latency_move(tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make test` installs Debian's prometheus package"
    (tmp_path / "photo.png").write_bytes(image_bytes(64, 48))
    up = Up(tmp_path, REELROUTE_METRICS_LOOPBACK="true")
    port = free_port()
    prometheus = f"http://127.0.0.1:{port}"
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: reelroute\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{up.web_port}']}}]\n"
    )
    server: subprocess.Popen | None = None
    try:
        up.start()
        with open(tmp_path / "prometheus.log", "wb") as log:
            server = subprocess.Popen(
                [
                    binary,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def scraped() -> bool:
            try:
                return query(prometheus, 'up{job="reelroute"}') == 1.0
            except httpx.HTTPError:  # not listening yet
                return False

        wait_until(scraped, 60, "a first scrape")
        completed = 'sum(reelroute_items{status="completed"})'
        assert query(prometheus, completed) == 0.0
        for n in range(3):
            up.cli("add", "photo.png", "--prompt", f"waves {n}", "--provider", "runway_gen4_turbo")
        # The queue gauge sees them waiting or at work, then done.
        wait_until(
            lambda: (
                (query(prometheus, 'sum(reelroute_items{status=~"pending|processing"})') or 0) > 0
            ),
            60,
            "items in the queue",
            every=0.5,
        )
        wait_until(lambda: query(prometheus, completed) == 3.0, 300, "three completed items")
        time.sleep(2)  # one more scrape after the last completion
        spent = query(prometheus, 'reelroute_spent_credits_total{provider="runway_gen4_turbo"}')
        assert spent is not None and spent > 0
        count = query(
            prometheus,
            'reelroute_created_to_completed_seconds_count{provider="runway_gen4_turbo"}',
        )
        assert count == 3.0
        median = query(
            prometheus,
            "histogram_quantile(0.5, sum by (le) "
            '(reelroute_created_to_completed_seconds_bucket{provider="runway_gen4_turbo"}))',
        )
        assert median is not None and 0 < median <= 600
        assert query(prometheus, 'sum(reelroute_items{status=~"pending|processing"})') == 0.0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        up.stop()
