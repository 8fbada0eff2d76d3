"""The package's shape, guarded: one name for every module, and layers that import only
downwards (docs/architecture.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BARE = ("models", "flows", "providers", "ui", "deployments")


def bare_modules() -> list[str]:
    """Modules of ours loaded under their bare folder name (a second copy of each)."""
    return sorted(name for name in sys.modules if name.split(".")[0] in BARE)


@pytest.fixture(scope="session", autouse=True)
def no_module_is_loaded_twice():
    """Across the whole session: nothing imports `models…` instead of `reelroute.models…`."""
    yield
    assert bare_modules() == [], "imported under a bare name (use reelroute.<folder>)"


def test_every_module_imports_under_one_name_only():
    code = (
        "import importlib, pkgutil, sys, reelroute\n"
        "for found in pkgutil.walk_packages(reelroute.__path__, 'reelroute.'):\n"
        "    if '.migrations.' not in found.name and not found.name.endswith('__main__'):\n"
        "        importlib.import_module(found.name)\n"
        f"print(sorted(n for n in sys.modules if n.split('.')[0] in {BARE!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's contracts (pyproject.toml) over the package found first under `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def package_copy(tmp_path) -> Path:
    """A copy of the package (its linked folders copied as real ones), to break on purpose."""
    shutil.copytree(
        REPO / "reelroute", tmp_path / "reelroute", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_the_layers_hold(package_copy):
    done = lint_imports(package_copy)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "upward", "contract"),
    [
        (
            "models/store/sql.py",
            "from reelroute.models.planning import routing",
            "reelroute.models.store is not allowed to import reelroute.models.planning",
        ),
        (
            "models/core/formats.py",
            "from reelroute.models.items import lifecycle",
            "reelroute.models.core is not allowed to import reelroute.models.items",
        ),
        (
            "models/items/queue.py",
            "from reelroute.models.planning import eta",
            "reelroute.models.items is not allowed to import reelroute.models.planning",
        ),
        (
            "providers/base.py",
            "from reelroute.flows import backoff",
            "reelroute.providers is not allowed to import reelroute.flows",
        ),
    ],
)
def test_an_upward_import_breaks_the_contract(package_copy, module, upward, contract):
    path = package_copy / "reelroute" / module
    path.write_text(path.read_text() + f"\n{upward}  # noqa: E402\n")
    done = lint_imports(package_copy)
    assert done.returncode != 0
    assert contract in done.stdout, done.stdout[-3000:]


def python_sources() -> list[Path]:
    """Every module of the package (through its linked folders), migrations left out."""
    found = []
    for folder in BARE:
        for path in sorted((REPO / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                found.append(path)
    return found


def test_one_writer_of_events():
    """Only models/outbox/events.py writes item_events: no other module builds an ItemEvent
    row or inserts into the table (its SQL text lives in store/queries/outbox.py, which only
    events.py runs)."""
    import re

    writer = REPO / "models" / "outbox" / "events.py"
    queries = REPO / "models" / "store" / "queries" / "outbox.py"
    pattern = re.compile(r"ItemEvent\(|insert\(ItemEvent|INSERT INTO item_events", re.IGNORECASE)
    offenders = [
        str(path.relative_to(REPO))
        for path in python_sources()
        if path not in (writer, queries)
        and pattern.search(path.read_text())
        and path.name != "tables.py"
    ]
    assert offenders == []
    import importlib

    texts = importlib.import_module("reelroute.models.store.queries.outbox")
    inserting = sorted(
        name
        for name, value in vars(texts).items()
        if isinstance(value, str) and pattern.search(value)
    )
    assert inserting  # the claim's `item.started`, written in the claim's own statement
    users = {
        str(path.relative_to(REPO))
        for path in python_sources()
        if path != queries
        and any(re.search(rf"\b{name}\b", path.read_text()) for name in inserting)
    }
    assert users == {"models/outbox/events.py"}


def ownership(root: Path) -> subprocess.CompletedProcess[str]:
    """tools/ownership.py (what `make lint` runs) over the repository at `root`."""
    return subprocess.run(
        [sys.executable, "-m", "tools.ownership", str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_table_is_written_by_its_owner_only():
    from reelroute.models.assembly import OWNERS, metadata

    assert set(OWNERS) == set(metadata.tables)  # every table has its owner
    done = ownership(REPO)
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """The repository's code folders, `reelroute/` linking them as in the repository, to break
    on purpose."""
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in (*BARE, "reelroute"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=ignore, symlinks=True)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "write", "expected"),
    [
        (  # an ORM row of another room's table
            "models/money/limits.py",
            "from reelroute.models.outbox.tables import ItemEvent\nROW = ItemEvent()",
            "models/money/limits.py:\\d+: writes item_events, owned by models.outbox",
        ),
        (  # SQL text
            "models/planning/hosts.py",
            "SQL = 'UPDATE video_items SET progress = 0'",
            "models/planning/hosts.py:\\d+: writes video_items, owned by models.items",
        ),
        (  # a named statement of another room, run from outside it
            "flows/reconcile.py",
            "from reelroute.models.store.queries import items as q\nX = q.CANCEL",
            "flows/reconcile.py:\\d+: writes video_items, owned by models.items",
        ),
        (  # SQLAlchemy core, over a loop of tables
            "models/outbox/endpoints.py",
            "def clear():\n    for table in (Group, VideoItem):\n        sa.update(table)",
            "models/outbox/endpoints.py:\\d+: writes groups, owned by models.items",
        ),
        (  # SQLAlchemy core
            "models/health/loops.py",
            "import sqlalchemy as sa\nfrom reelroute.models.money.tables import Budget\n"
            "X = sa.delete(Budget)",
            "models/health/loops.py:\\d+: writes budgets, owned by models.money",
        ),
    ],
)
def test_a_write_outside_the_owner_breaks_the_check(repo_copy, module, write, expected):
    import re

    path = repo_copy / module
    path.write_text(path.read_text() + "\n" + write + "\n")
    done = ownership(repo_copy)
    assert done.returncode == 1
    assert re.search(expected, done.stdout), done.stdout


def outer_imports(root: Path) -> list[tuple[str, str, str]]:
    """(module, imported from, name) of every import of models in ui/, flows/, deployments/."""
    import ast

    found = []
    for folder in ("ui", "flows", "deployments"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "reelroute.models"
                ):
                    for alias in node.names:
                        found.append((str(path.relative_to(root)), str(node.module), alias.name))
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.startswith("reelroute.models"):
                            found.append((str(path.relative_to(root)), alias.name, "*"))
    return found


def test_each_room_declares_its_public_names_and_the_outer_layers_use_only_those():
    """Every sub-package of models declares `__all__` (what it offers), and ui/, flows/ and
    deployments/ import a room only through it: `from reelroute.models.items import …`,
    never a room's module."""
    import importlib

    rooms = sorted(p.name for p in (REPO / "models").iterdir() if (p / "__init__.py").exists())
    offered = {}
    for room in rooms:
        package = importlib.import_module(f"reelroute.models.{room}")
        assert isinstance(getattr(package, "__all__", None), list), f"models.{room}: no __all__"
        offered[f"reelroute.models.{room}"] = set(package.__all__)
        assert all(hasattr(package, name) for name in package.__all__), room
    wrong = [
        f"{module}: {name} from {source}"
        for module, source, name in outer_imports(REPO)
        if source not in offered or name not in offered[source]
    ]
    assert wrong == []


def test_the_architecture_picture_and_table_are_the_import_graph():
    """docs/architecture.dot and the rooms' table are what tools/architecture.py draws from the
    import graph now (`make docs` redraws them)."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.architecture", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_a_new_import_between_rooms_makes_the_picture_stale(repo_copy):
    """The check reads the graph: an import the committed picture does not show fails it."""
    shutil.copytree(REPO / "tools", repo_copy / "tools")
    shutil.copytree(REPO / "docs", repo_copy / "docs")
    shutil.copy(REPO / "pyproject.toml", repo_copy / "pyproject.toml")
    path = repo_copy / "models" / "reporting" / "statistics.py"  # reporting never reads outbox
    path.write_text(path.read_text() + "\nfrom reelroute.models.outbox import tables as _unused\n")
    done = subprocess.run(
        [sys.executable, "-m", "tools.architecture", "--check"],
        cwd=repo_copy,
        env={**os.environ, "PYTHONPATH": str(repo_copy)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "out of date" in done.stdout, done.stdout + done.stderr


def test_no_room_reads_the_composed_settings():
    """Each room is typed by the config Protocol of the groups it reads (its own, and the
    shared ones of core), never by the composed `Settings` of `models.assembly`: so a room
    reads only the groups it owns or is handed (mypy checks the reads)."""
    import ast

    offenders = []
    for path in sorted((REPO / "models").glob("*/**/*.py")):
        if "migrations" in path.parts or path.parts[-2] == "assembly":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "reelroute.models.assembly"
            ):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_a_flow_run_loads_only_the_rooms_modules_it_uses():
    """A room's public names load on first use (models.core.lazy): importing the generate-video
    flow does not load the webhook endpoints' cryptography nor the migrations' Alembic."""
    code = (
        "import sys, reelroute.flows.generate\n"
        "print(sorted(m for m in ('cryptography', 'alembic', 'torch') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
