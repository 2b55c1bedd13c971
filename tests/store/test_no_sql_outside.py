"""No SQL outside appliance/store: read from the source with `ast`.

Three things count as SQL: a call named execute, executemany or
executescript; a string (f-strings too) that reads as an SQL statement; and
reaching into a store's connection through its `db` attribute (sqlite-utils'
tables and transactions are SQL by another name).  The parts call the
store's typed methods instead.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("appliance", "web")
STORE = Path("appliance/store")

# Until the engine's writes move to the accessors (the benchmark's binding: Store.save_bindings).
ENGINE_UNTIL_ACCESSORS = frozenset({
    Path("appliance/engine/bench.py"),
})

_EXECUTE = frozenset({"execute", "executemany", "executescript"})
# A statement's opening, not an English sentence that starts with the same
# word ("Update the LEDs", "Select a strategy"): each keyword with what must follow it.
_STATEMENT = re.compile(
    r"""\s*(
        select\b.*\bfrom\b
      | select\s+(\d|\*)
      | insert\s+(or\s+\w+\s+)?into\b
      | update\s+(or\s+\w+\s+)?["\w]+\s+set\b
      | delete\s+from\b
      | pragma\s+\w+
      | begin(\s+(deferred|immediate|exclusive))?(\s+transaction)?\s*;?\s*$
      | commit(\s+transaction)?\s*;?\s*$
    )""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)


def text_of(node: ast.AST) -> str | None:
    """A string constant's text; an f-string's with each placeholder read as `x`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
    return None


def is_sql(text: str) -> bool:
    return _STATEMENT.match(text) is not None


def _own_execute(call: ast.Call, classes: list[ast.ClassDef]) -> bool:
    """`self.execute(...)` inside a class that defines `execute`: its own method (the B2BUA's carries out a step)."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"):
        return False
    return any(isinstance(f, ast.FunctionDef) and f.name == func.attr for c in classes for f in c.body)


def _receiver(func: ast.Attribute) -> str:
    return ast.unparse(func.value)


# Receivers whose `execute` is the project's own, not a database's.
NOT_A_DATABASE = frozenset({"self.b2bua"})  # B2BUA.execute(session, step) carries out a routing step


def sql_in(source: str) -> list[tuple[int, str]]:
    """(line, what) for each piece of SQL in a module's source."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, classes: list[ast.ClassDef]) -> None:
        if isinstance(node, ast.ClassDef):
            classes = [*classes, node]
        if isinstance(node, ast.JoinedStr):
            text = text_of(node)
            if text is not None and is_sql(text):
                found.append((node.lineno, f"SQL text {text[:40]!r}"))
            return  # its parts are not strings of their own
        if isinstance(node, ast.Constant):
            text = text_of(node)
            if text is not None and is_sql(text):
                found.append((node.lineno, f"SQL text {text[:40]!r}"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in _EXECUTE and not _own_execute(node, classes) and not (
                isinstance(func, ast.Attribute) and _receiver(func) in NOT_A_DATABASE
            ):
                found.append((node.lineno, f"call of {name}()"))
        elif isinstance(node, ast.Attribute) and node.attr == "db":
            found.append((node.lineno, f"the store's connection ({ast.unparse(node)})"))
        for child in ast.iter_child_nodes(node):
            visit(child, classes)

    visit(ast.parse(source), [])
    return found


def modules() -> list[Path]:
    out = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if STORE in rel.parents or rel in ENGINE_UNTIL_ACCESSORS:
                continue
            out.append(rel)
    return out


def test_no_module_outside_the_store_runs_sql():
    offences = [f"{rel}:{line}: {what}" for rel in modules() for line, what in sql_in((ROOT / rel).read_text())]
    assert offences == [], "SQL outside appliance/store (add a Store method instead):\n" + "\n".join(offences)


def test_the_exempt_engine_modules_still_exist():
    # An exemption outliving its file would hide a new file of that name.
    assert all((ROOT / p).is_file() for p in ENGINE_UNTIL_ACCESSORS)


@pytest.mark.parametrize("source", [
    'db.execute("select 1")',
    'conn.executemany(sql, rows)',
    'cur.executescript(script)',
    'store.db["calls"].insert(row)',
    'with store.db.atomic():\n    pass',
    'q = f"SELECT {column} FROM extensions WHERE number = ?"',
    'q = "  delete from trunks"',
    'q = """\n    INSERT OR REPLACE INTO bans (address) VALUES (?)"""',
    'q = "update calls set outcome = ?"',
    'q = "PRAGMA data_version"',
    'q = "BEGIN"',
    'q = "commit;"',
    'run("BEGIN IMMEDIATE")',
])
def test_sql_is_found(source):
    assert sql_in(source)


@pytest.mark.parametrize("source", [
    'def f():\n    """Update the LEDs from the night switches."""',
    'log.info("Select a strategy for %s", name)',
    'msg = "delete the binding of a removed extension"',
    'msg = "Begin again"',
    'self.b2bua.execute(s, step)',
    'class B2BUA:\n    def execute(self, s, step): ...\n    def go(self, s, d):\n        self.execute(s, d.step)',
    'from web import db\ndb.init_app(app)',
    'store.add_callback(row)',
    'self.recorder.submit(lambda store: store.finish_call(row, lost))',
])
def test_what_is_not_sql(source):
    assert sql_in(source) == []
