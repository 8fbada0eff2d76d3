"""Each table is written by its owner only (`models/assembly/registry.py`, OWNERS): a module
outside the owning room of `models` never writes the table. Run by `make lint`:

    python -m tools.ownership [ROOT]      # ROOT: the repository (default: this one)

What counts as a write, found in the module's source (ast), migrations left out:
- building a row of a table (`VideoItem(...)`: rows are built to be added);
- `insert(T)`, `update(T)`, `delete(T)` of a table class (SQLAlchemy core);
- SQL text in the module that inserts into, updates or deletes from a table;
- a named statement of `models/store/queries/*.py` that does so, used by the module (the
  queries are text: whoever runs one writes its tables).
An ORM object changed in place and flushed is not seen: the rooms do not do it across owners
(models/assembly/registry.py says so), and this check cannot tell.

Exit status 1 with one line per write out of place, naming the module, the table and its owner.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

FOLDERS = ("models", "flows", "providers", "ui", "deployments")
WRITE = re.compile(  # our SQL is written in capitals: prose that says "update the" is not
    r"\b(?:INSERT\s+(?:OR\s+[A-Z]+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+([a-z_]+)\b"
)
NOT_TABLES = {"set", "of", "skip", "nowait", "or"}


def _sources(root: Path) -> Iterator[Path]:
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            if "migrations" not in path.parts and "queries" not in path.parts:
                yield path


def _room(root: Path, path: Path) -> str | None:
    """The room of `models` a module belongs to (None: not in a room)."""
    parts = path.relative_to(root).parts
    return parts[1] if parts[0] == "models" and len(parts) > 2 else None


def _tables_in(text: str) -> set[str]:
    return {m.group(1) for m in WRITE.finditer(text)} - NOT_TABLES


def _table_classes(root: Path) -> dict[str, str]:
    """Class name -> table name, from every `tables.py` of models."""
    found: dict[str, str] = {}
    for path in (root / "models").glob("*/tables.py"):
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if (
                    isinstance(item, ast.Assign)
                    and isinstance(item.targets[0], ast.Name)
                    and item.targets[0].id == "__tablename__"
                    and isinstance(item.value, ast.Constant)
                ):
                    found[node.name] = str(item.value.value)
    return found


def _text_of(node: ast.expr) -> str:
    """The text of a string or f-string (its placeholders left out)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return " ".join(_text_of(part) for part in node.values)
    return ""


def _named_queries(root: Path) -> dict[tuple[str, str], set[str]]:
    """(queries module, statement name) -> the tables the statement writes."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in (root / "models" / "store" / "queries").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                tables = _tables_in(_text_of(node.value))
                if tables:
                    found[(path.stem, node.targets[0].id)] = tables
    return found


def _writes(
    path: Path, classes: dict[str, str], queries: dict[tuple[str, str], set[str]]
) -> Iterator[tuple[int, str]]:
    """(line, table) of every write the module makes."""
    tree = ast.parse(path.read_text())
    aliases: dict[str, str] = {}  # local name -> queries module
    imported: dict[str, tuple[str, str]] = {}  # local name -> (queries module, statement)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "reelroute.models.store.queries":
                for alias in node.names:
                    aliases[alias.asname or alias.name] = alias.name
            elif node.module.startswith("reelroute.models.store.queries."):
                stem = node.module.rsplit(".", 1)[1]
                for alias in node.names:
                    imported[alias.asname or alias.name] = (stem, alias.name)
    looped: dict[str, list[str]] = {}  # `for table in (Group, VideoItem)`: the classes named
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Tuple | ast.List)
        ):
            named = [e.id for e in node.iter.elts if isinstance(e, ast.Name) and e.id in classes]
            looped.setdefault(node.target.id, []).extend(named)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in classes:
                yield node.lineno, classes[name]
            elif name in ("insert", "update", "delete") and node.args:
                target = node.args[0]
                if isinstance(target, ast.Name):
                    for each in [target.id, *looped.get(target.id, [])]:
                        if each in classes:
                            yield node.lineno, classes[each]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for table in _tables_in(node.value):
                yield node.lineno, table
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            for table in queries.get((aliases[node.value.id], node.attr), set()):
                yield node.lineno, table
        elif isinstance(node, ast.Name) and node.id in imported:
            for table in queries.get(imported[node.id], set()):
                yield node.lineno, table


def problems(root: Path) -> list[str]:
    """Every write out of its owner's room, as `module:line: writes TABLE, owned by ROOM`."""
    sys.path.insert(0, str(root))
    try:
        from reelroute.models.assembly import OWNERS
    finally:
        sys.path.pop(0)
    classes = _table_classes(root)
    queries = _named_queries(root)
    found: list[str] = []
    for path in _sources(root):
        room = _room(root, path)
        if path.name == "tables.py" and room is not None:
            continue  # the declarations
        for line, table in sorted(set(_writes(path, classes, queries))):
            owner = OWNERS.get(table)
            if owner is None:
                found.append(
                    f"{path.relative_to(root)}:{line}: writes {table}, a table no room owns"
                )
            elif owner != room:
                found.append(
                    f"{path.relative_to(root)}:{line}: writes {table}, owned by models.{owner}: "
                    f"call models.{owner}"
                )
    return found


def main() -> None:
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    found = problems(root)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} writes outside their table's owner (models/assembly/registry.py)")
        raise SystemExit(1)
    print("every table is written by its owner only")


if __name__ == "__main__":
    main()
