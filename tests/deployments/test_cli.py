"""The `reelroute` command line: migrate on both databases, add tasks from disk, statistics."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, select
from typer.testing import CliRunner

from reelroute.deployments.cli import app
from reelroute.models.assembly import get_settings
from reelroute.models.core.tables import Group, VideoItem
from reelroute.models.items.groups import find_group
from reelroute.models.store.db import make_engine
from reelroute.models.store.migrate import current_revision, head_revision
from reelroute.ui.app import create_app
from tests.models.helpers import image_bytes
from tests.ui.helpers import populate


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
    assert current_revision(empty_url) == head_revision()


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


def test_add_names_every_bad_file_and_adds_nothing(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cli("migrate", REELROUTE_DATABASE_URL=url)
    (tmp_path / "a.png").write_bytes(image_bytes())
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "tiny.png").write_bytes(image_bytes(8, 8))
    result = cli(
        "add", "notes.txt", "a.png", "tiny.png", "--prompt", "x", "--group", "G",
        REELROUTE_DATABASE_URL=url,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "nothing was added" in result.output
    assert "photo 1 (notes.txt): is not a readable image" in result.output
    assert "photo 3 (tiny.png): 8x8 is too small" in result.output
    stats = json.loads(cli("stats", "--json", REELROUTE_DATABASE_URL=url).output)
    assert sum(entry["total"] for entry in stats["data"].values()) == 0
    engine = make_engine(url)
    with Session(engine) as session:
        assert find_group(session, "G") is None  # the group of a refused batch is not kept
    engine.dispose()


def test_add_with_a_group_name_adds_to_the_group_of_that_name(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cli("migrate", REELROUTE_DATABASE_URL=url)
    for n in range(3):
        (tmp_path / f"p{n}.png").write_bytes(image_bytes(color=(n, 40, 80)))
        name = "Summer" if n != 1 else "summer"
        result = cli(
            "add", f"p{n}.png", "--prompt", "x", "--group", name, REELROUTE_DATABASE_URL=url
        )
        assert result.exit_code == 0, result.output
    engine = make_engine(url)
    with Session(engine) as session:
        groups = session.exec(select(Group)).all()
        items = session.exec(select(VideoItem)).all()
    engine.dispose()
    assert [g.name for g in groups] == ["Summer"]
    assert len(items) == 3 and {i.group_id for i in items} == {groups[0].id}


def test_a_priority_other_than_the_groups_is_refused_naming_the_group(cli, tmp_path):
    """Found as a new user: `--priority urgent` on a photo whose default group was made normal
    used to make a normal item, due in 4 h instead of 20 min, without a word."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cli("migrate", REELROUTE_DATABASE_URL=url)
    (tmp_path / "p1.png").write_bytes(image_bytes())
    first = cli("add", "p1.png", "--prompt", "x", REELROUTE_DATABASE_URL=url)
    assert first.exit_code == 0 and "(cli p1, normal)" in first.output
    (tmp_path / "p1.png").write_bytes(image_bytes(color=(9, 9, 9)))
    urgent = cli(
        "add", "p1.png", "--prompt", "x", "--priority", "urgent", REELROUTE_DATABASE_URL=url
    )
    assert urgent.exit_code == 1
    assert "the group 'cli p1' is normal, not urgent" in urgent.output
    engine = make_engine(url)
    with Session(engine) as session:
        assert len(session.exec(select(VideoItem)).all()) == 1  # nothing added
    engine.dispose()
    new = cli(
        "add", "p1.png", "--prompt", "x", "--priority", "urgent", "--group", "rush",
        REELROUTE_DATABASE_URL=url,
    )  # fmt: skip
    assert new.exit_code == 0 and "(rush, urgent)" in new.output


def test_full_quality_is_a_groups_and_an_existing_group_must_say_the_same(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cli("migrate", REELROUTE_DATABASE_URL=url)
    (tmp_path / "p1.png").write_bytes(image_bytes())
    made = cli(
        "add", "p1.png", "--prompt", "x", "--group", "hero", "--full-quality",
        REELROUTE_DATABASE_URL=url,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    (tmp_path / "p1.png").write_bytes(image_bytes(color=(9, 9, 9)))
    refused = cli(
        "add", "p1.png", "--prompt", "x", "--group", "hero", "--any-quality",
        REELROUTE_DATABASE_URL=url,
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "the group 'hero' requires full-quality Wan videos" in refused.output
    left_out = cli("add", "p1.png", "--prompt", "x", "--group", "hero", REELROUTE_DATABASE_URL=url)
    assert left_out.exit_code == 0, left_out.output
    engine = make_engine(url)
    with Session(engine) as session:
        items = session.exec(select(VideoItem)).all()
        group = session.exec(select(Group)).one()
    engine.dispose()
    assert group.wan_full_quality and len(items) == 2 and all(i.wan_full_quality for i in items)


def test_stats_json_prints_exactly_what_the_api_answers(cli, db_url, engine, settings):
    populate(engine, settings)
    printed = json.loads(cli("stats", "--json", REELROUTE_DATABASE_URL=db_url).output)
    app = create_app(settings.replaced(admin_token=SecretStr("t" * 32)))
    with TestClient(app) as client:
        answered = client.get("/api/admin/stats", headers={"Authorization": "Bearer " + "t" * 32})
    app.state.engine.dispose()
    assert answered.status_code == 200
    assert printed == answered.json()
    assert printed["data"]["runway_veo3.1"]["dollars"] == 2.4


def test_an_invalid_setting_stops_with_its_name(cli, tmp_path):
    result = cli(
        "stats", REELROUTE_DATABASE_URL=f"sqlite:///{tmp_path}/x.db", REELROUTE_MAX_ATTEMPTS="0"
    )
    assert result.exit_code == 2 and "REELROUTE_MAX_ATTEMPTS" in result.output


def test_normalise_photos_runs_and_is_safe_to_run_again(cli, empty_url, tmp_path):
    cli("migrate", REELROUTE_DATABASE_URL=empty_url)
    (tmp_path / "a.png").write_bytes(image_bytes(64, 48))
    added = cli("add", "a.png", "--prompt", "p", REELROUTE_DATABASE_URL=empty_url)
    assert added.exit_code == 0, added.output
    for _ in range(2):  # stored normalised at intake: nothing to do, twice
        result = cli("normalise-photos", REELROUTE_DATABASE_URL=empty_url)
        assert result.exit_code == 0, result.output
        assert "0 photo(s) normalised" in result.output
