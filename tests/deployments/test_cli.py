"""The `reelroute` command line: migrate on both databases, add tasks from disk, statistics."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reelroute.deployments.cli import app
from reelroute.models.migrate import current_revision
from reelroute.models.settings import get_settings
from tests.models.helpers import image_bytes


@pytest.fixture
def cli(monkeypatch, tmp_path):
    def run(*args: str, **env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("REELROUTE_STORAGE_URL", str(tmp_path / "storage"))
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args))
        finally:
            get_settings.cache_clear()

    monkeypatch.chdir(tmp_path)
    return run


def test_migrate_builds_the_schema(cli, empty_url):
    result = cli("migrate", REELROUTE_DATABASE_URL=empty_url)
    assert result.exit_code == 0, result.output
    assert "newest schema" in result.output
    assert current_revision(empty_url) == "0003"


def test_add_then_stats(cli, empty_url, tmp_path):
    cli("migrate", REELROUTE_DATABASE_URL=empty_url)
    (tmp_path / "a.png").write_bytes(image_bytes(64, 48))
    (tmp_path / "b.jpg").write_bytes(image_bytes(40, 60, "JPEG"))
    result = cli(
        "add",
        "a.png",
        "b.jpg",
        "--prompt",
        "waves",
        "--provider",
        "runway_veo3.1",
        REELROUTE_DATABASE_URL=empty_url,
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("runway_veo3.1 was chosen") == 2
    stats = cli("stats", "--json", REELROUTE_DATABASE_URL=empty_url)
    answer = json.loads(stats.output)
    assert answer["success"] is True
    assert answer["data"]["runway_veo3.1"]["pending"] == 2


def test_add_refuses_a_non_image_and_adds_nothing(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cli("migrate", REELROUTE_DATABASE_URL=url)
    (tmp_path / "a.png").write_bytes(image_bytes())
    (tmp_path / "notes.txt").write_text("not a photo")
    result = cli("add", "a.png", "notes.txt", "--prompt", "x", REELROUTE_DATABASE_URL=url)
    assert result.exit_code == 1
    assert "nothing was added" in result.output and "not a readable image" in result.output
    stats = json.loads(cli("stats", "--json", REELROUTE_DATABASE_URL=url).output)
    assert sum(entry["total"] for entry in stats["data"].values()) == 0


def test_an_invalid_setting_stops_with_its_name(cli, tmp_path):
    result = cli(
        "stats", REELROUTE_DATABASE_URL=f"sqlite:///{tmp_path}/x.db", REELROUTE_MAX_ATTEMPTS="0"
    )
    assert result.exit_code == 2 and "REELROUTE_MAX_ATTEMPTS" in result.output
