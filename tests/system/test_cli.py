"""The pbx command: extension management, and every command documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.cli import _register_parts, cli
from appliance.defaults import seed_defaults

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def commands(group, prefix="pbx"):
    for name, cmd in sorted(group.commands.items()):
        if hasattr(cmd, "commands"):
            yield from commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", cmd


def test_every_command_is_in_the_readme_and_has_an_example():
    _register_parts()
    missing, no_example = [], []
    for full, cmd in commands(cli):
        if f"`{full}" not in README and not re.search(rf"`{re.escape(full)}\b", README):
            missing.append(full)
        if "Example:" not in (cmd.help or ""):
            no_example.append(full)
    assert missing == [], f"undocumented in README: {missing}"
    assert no_example == [], f"help without an Example: line: {no_example}"


def test_ext_add_list_passwd_remove(tmp_path):
    runner = CliRunner()
    data = ["--data", str(tmp_path)]
    res = runner.invoke(cli, ["ext", "add", "104", "--name", "Warehouse", *data])
    assert res.exit_code == 0, res.output
    assert re.search(r"extension 104 \(Warehouse\): user 104, password \S{12}", res.output)
    res = runner.invoke(cli, ["ext", "add", "104", "--name", "Again", *data])
    assert res.exit_code == 1 and "already exists" in res.output
    res = runner.invoke(cli, ["ext", "add", "105", "--name", "Short", "--password", "short", *data])
    assert res.exit_code == 2 and "at least 8 characters" in res.output
    res = runner.invoke(cli, ["ext", "list", *data])
    assert "104" in res.output and "Warehouse" in res.output and "0 registered" in res.output
    res = runner.invoke(cli, ["ext", "passwd", "104", "--password", "a-new-password", *data])
    assert res.exit_code == 0 and "a-new-password" in res.output
    res = runner.invoke(cli, ["ext", "remove", "104", *data])
    assert res.exit_code == 0
    assert "104" not in runner.invoke(cli, ["ext", "list", *data]).output


def test_an_extension_the_routing_needs_cannot_be_removed(tmp_path):
    from appliance.store import Store

    with Store(tmp_path) as store:
        seed_defaults(store)  # the default group rings 101-103
    res = CliRunner().invoke(cli, ["ext", "remove", "102", "--data", str(tmp_path)])
    assert res.exit_code == 1
    assert "used by the routing" in res.output and "102" in res.output


def test_config_import_refuses_a_bad_file_and_says_nothing_was_imported(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nextensions:\n  - number: 1x\n    name: A\n    password: long-enough\n")
    res = CliRunner().invoke(cli, ["config", "import", str(bad), "--data", str(tmp_path / "d")])
    assert res.exit_code == 1
    assert "line 3" in res.output and "nothing was imported" in res.output


def export_text(runner: CliRunner, data: Path) -> str:
    res = runner.invoke(cli, ["config", "export", "--data", str(data)])
    assert res.exit_code == 0, res.output
    return res.output


def assert_cli_round_trips(runner: CliRunner, data: Path, fresh: Path) -> None:
    """pbx config export -o FILE, then pbx config import FILE here and on a fresh appliance: same export after."""
    saved = data.parent / f"{data.name}.yaml"
    assert runner.invoke(cli, ["config", "export", "-o", str(saved), "--data", str(data)]).exit_code == 0
    text = saved.read_text(encoding="utf-8")
    for target in (data, fresh):
        res = runner.invoke(cli, ["config", "import", str(saved), "--data", str(target)])
        assert res.exit_code == 0, res.output
        assert export_text(runner, target) == text


@pytest.mark.parametrize("ran", [True, False], ids=["after-first-run", "never-ran"])
def test_config_round_trips_after_ext_commands(tmp_path, ran):
    from appliance.store import Store

    runner = CliRunner()
    data = tmp_path / "pbx"
    if ran:
        with Store(data) as store:
            seed_defaults(store)
    assert_cli_round_trips(runner, data, tmp_path / "fresh0")
    steps = [["ext", "add", "104", "--name", "Склад"], ["ext", "passwd", "104"], ["ext", "remove", "104"]]
    for i, step in enumerate(steps, 1):
        res = runner.invoke(cli, [*step, "--data", str(data)])
        assert res.exit_code == 0, res.output
        assert_cli_round_trips(runner, data, tmp_path / f"fresh{i}")


def test_config_import_reads_stdin(tmp_path):
    runner = CliRunner()
    text = export_text(runner, tmp_path / "a")
    res = runner.invoke(cli, ["config", "import", "-", "--data", str(tmp_path / "b")], input=text.encode())
    assert res.exit_code == 0, res.output
    assert export_text(runner, tmp_path / "b") == text


def alias_bomb() -> bytes:
    """Eight levels of ten aliases each: 10**8 values from 400 bytes."""
    lines = [b"a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [b"%c: &%c [%s]" % (c, c, b", ".join([b"*%c" % (c - 1)] * 10)) for c in b"bcdefgh"]
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("make, reason", [
    (lambda: b"version: 1\nname: caf\xe9\n", "line 2: not UTF-8 text: byte 0xe9 at offset 20"),
    (lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1: not UTF-8 text: byte 0x89 at offset 0"),
    (lambda: b"version: 1\nextensions: [a\n", "line 3, column 1: not valid YAML"),
    (lambda: b"- a list\n", "line 1, column 1: not a configuration: the file is a list"),
    (alias_bomb, "too many YAML aliases ("),
    (lambda: b"# " + b"x" * (15 * 1024 * 1024), "larger than 1 MiB (1048576 bytes)"),
], ids=["latin1", "binary", "syntax", "list", "alias-bomb", "15MB"])
def test_config_import_refuses_a_bad_file_in_one_line_and_changes_nothing(tmp_path, make, reason):
    from appliance.store import Store

    data = tmp_path / "pbx"
    with Store(data) as store:
        seed_defaults(store)
    runner = CliRunner()
    before = export_text(runner, data)
    bad = tmp_path / "office.yaml"
    bad.write_bytes(make())
    res = runner.invoke(cli, ["config", "import", str(bad), "--data", str(data)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    (line,) = res.output.splitlines()
    assert line.startswith(f"Error: {bad}: ") and reason in line
    assert line.endswith("; nothing was imported")
    assert export_text(runner, data) == before


def test_config_import_from_stdin_says_where_it_read(tmp_path):
    res = CliRunner().invoke(cli, ["config", "import", "-", "--data", str(tmp_path)], input=b"\xff")
    assert res.exit_code == 1
    assert res.output.startswith("Error: <stdin>: line 1: not UTF-8 text")
