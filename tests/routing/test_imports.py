"""Routing stays pure and the store stays below it: what each part's modules import, read from the source.

Routing decides; it reads no files, no database and no engine state, so it
imports none of appliance.store, appliance.configfile, appliance.engine (the
CLI and the appliance read those and hand routing plain data).  The store
keeps data and imports nothing from routing, so neither needs the other to load.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_IN_ROUTING = ("appliance.store", "appliance.configfile", "appliance.engine")


def imported(path: Path, root: Path) -> set[str]:
    """Every module `path` imports, anywhere in it (functions too), relative imports resolved.

    `root` is the directory that holds the `appliance` package."""
    package = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            names.add(module)
            # `from appliance import store` imports the module appliance.store.
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def offending(part: str, forbidden: tuple[str, ...], root: Path = ROOT) -> dict[str, list[str]]:
    """Modules under appliance/<part> that import a forbidden module, with what they import."""
    out = {}
    for path in sorted((root / "appliance" / part).rglob("*.py")):
        bad = sorted(n for n in imported(path, root) if any(n == f or n.startswith(f + ".") for f in forbidden))
        if bad:
            out[path.relative_to(root).as_posix()] = bad
    return out


def test_routing_imports_neither_the_store_nor_the_file_loader_nor_the_engine():
    assert offending("routing", NOT_IN_ROUTING) == {}


def test_the_store_imports_nothing_from_routing():
    assert offending("store", ("appliance.routing",)) == {}


@pytest.mark.parametrize("source, found", [
    ("from appliance.store import Store", "appliance.store"),
    ("from ..store import Store", "appliance.store"),
    ("from .. import configfile", "appliance.configfile"),
    ("import appliance.engine.core", "appliance.engine.core"),
    ("def f():\n    from ..engine import core\n", "appliance.engine.core"),
])
def test_the_check_sees_every_way_of_importing(tmp_path, source, found):
    (tmp_path / "appliance" / "routing").mkdir(parents=True)
    (tmp_path / "appliance" / "routing" / "mod.py").write_text(source)
    assert found in offending("routing", NOT_IN_ROUTING, tmp_path)["appliance/routing/mod.py"]
