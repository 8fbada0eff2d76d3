"""The built wheel, installed into an empty virtual environment, with no checkout in sight: it
adds one top-level name, its command line works, and it runs a sandbox flow run. The sdist holds
the package's real files (the top-level folders, not links to them), and builds the same wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO
from tests.models.helpers import image_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        dist, clean)  # fmt: skip
    (built,) = dist.glob("reelroute-*.whl")
    return built


def test_the_wheel_adds_only_reelroute_at_the_top_of_site_packages(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "reelroute",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    assert "reelroute/models/store/migrations/versions/0001_seed_schema.py" in names
    assert "reelroute/models/store/migrations/script.py.mako" in names
    top = [n for n in names if n.endswith("top_level.txt")]
    assert not top or zipfile.ZipFile(wheel).read(top[0]).decode().split() == ["reelroute"]


def test_the_sdist_holds_the_packages_files_and_builds_the_same_wheel(wheel, tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    hook = f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))"
    built = tmp_path / run([sys.executable, "-c", hook], REPO, clean).strip().splitlines()[-1]
    with tarfile.open(built) as archive:
        members = {m.name.split("/", 1)[1]: m for m in archive.getmembers() if "/" in m.name}
    folders = [
        f"reelroute/{name}" for name in ("models", "flows", "providers", "ui", "deployments")
    ]
    assert all(members[f].isdir() and not members[f].issym() for f in folders)
    assert "reelroute/models/store/migrations/versions/0001_seed_schema.py" in members
    assert "reelroute/models/store/migrations/script.py.mako" in members
    dist = tmp_path / "from-sdist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(built)],
        tmp_path, clean)  # fmt: skip
    (again,) = dist.glob("reelroute-*.whl")
    assert sorted(zipfile.ZipFile(again).namelist()) == sorted(zipfile.ZipFile(wheel).namelist())


def test_an_installed_wheel_runs_the_cli_and_a_sandbox_flow_run(wheel, system, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REELROUTE_", "RUNWAYML_", "PREFECT_", "PYTHON", "VIRTUAL_ENV"))
    }
    python = str(venv / "bin" / "python")
    run([python, "-m", "pip", "install", "-q", f"{wheel}[runway]"], tmp_path, env)
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               tmp_path, env).strip()  # fmt: skip
    added = {p.name for p in Path(site).iterdir()} - {
        p.name for p in Path(site).glob("*.dist-info")
    }
    ours = {name for name in added if name in {"models", "flows", "providers", "ui", "deployments"}}
    assert ours == set() and "reelroute" in added
    assert "Usage" in run([str(venv / "bin" / "reelroute"), "--help"], tmp_path, env)

    work = tmp_path / "host"  # a worker host: no checkout, only the installed package
    work.mkdir()
    env |= {
        "PREFECT_API_URL": system.server.api_url,
        "REELROUTE_DATABASE_URL": f"sqlite:///{work / 'reelroute.db'}",
        "REELROUTE_STORAGE_URL": str(work / "storage"),
        "REELROUTE_SANDBOX": "true",
        "REELROUTE_RUNWAY_BASE_URL": system.env["REELROUTE_RUNWAY_BASE_URL"],
        "REELROUTE_RUNWAY_POLL_SECONDS": "0.2",
    }
    reelroute = str(venv / "bin" / "reelroute")
    run([reelroute, "migrate"], work, env)
    (work / "photo.png").write_bytes(image_bytes(64, 48))
    added_items = run(
        [reelroute, "add", "photo.png", "--prompt", "from the wheel", "--provider",
         "runway_gen4_turbo", "--group", "wheel"],
        work,
        env,
    )  # fmt: skip
    item_id = added_items.splitlines()[1].split()[0]
    code = (
        "import reelroute, sys\n"
        "from reelroute.flows.generate import generate_video\n"
        f"print(reelroute.__file__)\nprint(generate_video({item_id!r}, 1).output_path)\n"
    )
    printed = run([python, "-c", code], work, env).splitlines()
    assert printed[0].startswith(site) and str(REPO) not in printed[0]
    assert printed[-1] == f"videos/{printed[-1].split('/')[1]}/{item_id}.mp4"
    stats = json.loads(run([reelroute, "stats", "--json"], work, env))
    assert stats["data"]["runway_gen4_turbo"]["completed"] == 1
    assert (work / "storage" / printed[-1]).stat().st_size > 0
