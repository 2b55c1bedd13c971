"""The configuration file's bounds: size, aliases, nesting, tags, encoding; each refused with one line, nothing changed."""

from __future__ import annotations

import io
import time
import tracemalloc

import pytest
import yaml

from appliance.configfile import (
    MAX_ALIASES,
    MAX_FILE_BYTES,
    ConfigFileError,
    _Dumper,
    _Loader,
    decode,
    export_config,
    import_config,
    load_text,
    read_file,
)
from appliance.defaults import seed_defaults
from appliance.store import Store


def billion_laughs() -> str:
    """A 1.8 KB file whose aliases stand for about 387 million values."""
    lines = ["version: 1", "laughs:", '  a: &a ["' + '", "'.join(["lol lol lol lol lol lol lol"] * 9) + '"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    lines.append("contacts: [" + ", ".join(["*i"] * 9) + "]")
    lines.append("# " + "a file of laughs, " * 60)
    return "\n".join(lines) + "\n"


def refused(text: str) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as err:
        load_text(text)
    assert "\n" not in str(err.value)
    return err.value


def test_an_alias_bomb_is_refused_at_once_in_little_memory():
    text = billion_laughs()
    assert 1700 < len(text.encode()) < 2048
    started = time.perf_counter()
    err = refused(text)
    took = time.perf_counter() - started
    assert err.reason.startswith("too many YAML aliases (") and err.line == 7  # the line of e: &e
    assert took < 0.5, f"{took:.3f} s"
    tracemalloc.start()
    try:
        refused(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"{peak} bytes"


def test_more_aliases_than_the_bound_are_refused_even_when_each_is_small():
    text = "version: 1\nx: &x a\nlist: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    assert f"too many YAML aliases ({MAX_ALIASES + 1}," in refused(text).reason


def test_one_alias_of_a_large_list_is_refused():
    text = "version: 1\nbig: &big [" + ", ".join(["1"] * 12_000) + "]\ncopy: *big\n"
    assert "too many YAML aliases (1, standing for 12001 values)" in refused(text).reason


def test_a_few_aliases_in_a_hand_written_file_are_read(tmp_path):
    text = """\
version: 1
extensions:
  - {number: 101, name: Reception, password: reception-pass, dial_rules: &rules [local, mobile, international]}
  - {number: 102, name: Sales, password: sales-pass-1, dial_rules: *rules}
routing:
  unmatched: 101
"""
    cfg = load_text(text)
    assert cfg.extensions[1]["dial_rules"] == '["local", "mobile", "international"]'


def test_an_alias_inside_its_own_anchor_is_refused():
    assert "alias *r is inside its own anchor" in refused("version: 1\ncontacts: &r [*r]\n").reason


def test_deep_nesting_is_refused_without_a_recursion_error():
    err = refused("version: 1\nrouting: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert "nested more than" in err.reason and err.line == 2
    # Aliases cannot stack up depth that the text does not show.
    chain = ["version: 1", "a0: &a0 " + "[" * 40 + "]" * 40]
    chain += [f"a{i}: &a{i} " + "[" * 30 + f"*a{i - 1}" + "]" * 30 for i in range(1, 5)]
    assert "nested more than" in refused("\n".join(chain) + "\n").reason


@pytest.mark.parametrize("text, reason", [
    ("version: !!int abc\n", "the YAML tag !!int is not read"),
    ("version: 1\nx: !!python/object:os.system {}\n", "the YAML tag !!python/object:os.system is not read"),
])
def test_yaml_tags_are_refused(text, reason):
    assert reason in refused(text).reason


def test_a_long_run_of_digits_stays_text():
    text = "version: 1\ncalls:\n  confirm_seconds: " + "9" * 5000 + "\nrouting:\n  unmatched: hangup\n"
    assert "confirm_seconds must be a whole number" in refused(text).reason


@pytest.mark.parametrize("text, where, reason", [
    ("version: 1\nextensions: [a\n", (3, 1), "not valid YAML: expected ',' or ']'"),
    ("version: 1\nname: a\x00b\n", (2, 8), "not valid YAML: character U+0000 is not allowed"),
    ("- version\n- 1\n", (1, 1), "not a configuration: the file is a list"),
    ("just words\n", (1, 1), "not a configuration: the file is a single value"),
])
def test_not_yaml_or_not_a_mapping_is_one_line_with_line_and_column(text, where, reason):
    err = refused(text)
    assert (err.line, err.column) == where and reason in err.reason
    assert str(err).startswith(f"line {where[0]}, column {where[1]}: ")


def test_an_empty_file_is_refused():
    assert "the file is empty" in refused("").reason


def test_bytes_that_are_not_utf8_name_their_offset():
    with pytest.raises(ConfigFileError) as err:
        decode(b"version: 1\nname: caf\xe9\n")
    assert str(err.value) == "line 2: not UTF-8 text: byte 0xe9 at offset 20"


def test_a_huge_file_is_refused_after_reading_just_past_the_limit(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.write(b"version: 1\n# " + b"x" * (15 * 1024 * 1024) + b"\n")
    started = time.perf_counter()
    with path.open("rb") as f:
        with pytest.raises(ConfigFileError) as err:
            read_file(f)
        assert f.tell() == MAX_FILE_BYTES + 1
    assert time.perf_counter() - started < 0.5
    assert "larger than 1 MiB (1048576 bytes)" in err.value.reason
    with pytest.raises(ConfigFileError, match="larger than 1 MiB"):
        load_text(path.read_text())


def test_a_file_at_the_limit_is_read():
    text = "version: 1\nrouting:\n  unmatched: hangup\n"
    padded = text + "#" * (MAX_FILE_BYTES - len(text) - 1) + "\n"
    assert read_file(io.BytesIO(padded.encode())) == padded


@pytest.mark.parametrize("make", [
    lambda: billion_laughs().encode(),
    lambda: b"version: 1\n\xff\xfe\x00junk",
    lambda: b"version: 1\nextensions: [a\n",
    lambda: b"- a list\n",
    lambda: b"x" * (MAX_FILE_BYTES + 1),
], ids=["alias-bomb", "not-utf8", "not-yaml", "not-a-mapping", "too-large"])
def test_nothing_changes_on_refusal(tmp_path, make):
    with Store(tmp_path) as store:
        seed_defaults(store)
        before = export_config(store)
        with pytest.raises(ConfigFileError):
            import_config(store, read_file(io.BytesIO(make())))
        assert export_config(store) == before


def test_the_exporter_writes_no_aliases_and_floats_the_loader_reads():
    shared = ["local", "mobile"]
    doc = {"a": shared, "b": shared, "tiny": 1e-05, "big": 1e20}
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False)
    assert "&" not in text and "*" not in text
    assert "tiny: 0.00001" in text and "big: 100000000000000000000.0" in text
    assert yaml.load(text, Loader=_Loader) == doc
