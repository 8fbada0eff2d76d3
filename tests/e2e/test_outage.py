"""A Runway model down for 3 minutes under `reelroute up`: no item fails, auto-routed items that
can still be on time move to a healthy model, items that named the model wait and finish after
the outage, and each video is paid once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col

from reelroute.models.core.tables import VideoItem
from reelroute.models.store.db import make_engine
from reelroute.providers.emulator import EmulatorScript, EmulatorServer, RunwayEmulator
from tests.e2e.conftest import Up, wait_until
from tests.e2e.test_survival import FAST
from tests.models.helpers import image_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

OUTAGE_SECONDS = 180


def rows(url: str) -> dict[str, tuple[str, str, datetime | None]]:
    """prompt -> (status, provider, finished at)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                sa.select(
                    col(VideoItem.prompt),
                    col(VideoItem.status),
                    col(VideoItem.inference_provider),
                    col(VideoItem.finished_at),
                )
            ).all()
    finally:
        engine.dispose()
    return {prompt: (status.value, provider.value, at) for prompt, status, provider, at in found}


def events(url: str, kind: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text("SELECT count(*) FROM item_events WHERE type = :kind"), {"kind": kind}
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_a_three_minute_outage_of_one_model_fails_no_video(tmp_path):
    (tmp_path / "photo.png").write_bytes(image_bytes(64, 48))
    with EmulatorServer(RunwayEmulator(EmulatorScript(latency_s=6.0))) as runway:
        up = Up(tmp_path, REELROUTE_RUNWAY_BASE_URL=runway.url, **FAST)
        url = f"sqlite:///{tmp_path / 'data' / 'reelroute.db'}"
        try:
            up.start()
            runway.emulator.script.outage("gen4_turbo", OUTAGE_SECONDS)
            ends = datetime.now(UTC) + timedelta(seconds=OUTAGE_SECONDS)
            for n in range(4):
                up.cli(
                    "add", "photo.png", "--prompt", f"named {n}",
                    "--provider", "runway_gen4_turbo", "--group", "named",
                )  # fmt: skip
            for n in range(4):  # Wan cannot make 20 minutes here: Gen-4 Turbo first
                up.cli(
                    "add", "photo.png", "--prompt", f"auto {n}", "--provider", "auto",
                    "--group", "auto", "--deadline", "20m",
                )  # fmt: skip
            wait_until(lambda: events(url, "provider.opened"), 120, "Gen-4 Turbo's breaker to open")
            done = wait_until(
                lambda: (
                    (found := rows(url))
                    and {s for s, _, _ in found.values()} == {"completed"}
                    and found
                ),
                OUTAGE_SECONDS + 420,
                "every item to complete",
                every=2,
            )
        finally:
            assert up.stop() == 0
        assert events(url, "failed") == 0  # nobody was told a video failed
        assert events(url, "provider.opened") >= 1 and events(url, "provider.closed") >= 1
        moved = [p for prompt, (_, p, _) in done.items() if prompt.startswith("auto")]
        assert any(provider != "runway_gen4_turbo" for provider in moved), moved
        named = [(p, at) for prompt, (_, p, at) in done.items() if prompt.startswith("named")]
        assert [p for p, _ in named] == ["runway_gen4_turbo"] * 4
        assert all(at is not None and at > ends for _, at in named)  # they waited for it
        for prompt in done:
            assert runway.emulator.succeeded(prompt) == 1, prompt  # paid once
