"""The configuration file's recording section: read, checked with the line of a mistake, written back."""

from __future__ import annotations

import pytest

from appliance.configfile import ConfigFileError, export_config, import_config, load_text
from appliance.store import Store

BASE = """\
version: 1
extensions:
  - {number: "101", name: Olha, password: secret-101}
trunks:
  - {name: prov, kind: ip, host: 127.0.0.1, addresses: [127.0.0.1], numbers: ["0441234567"]}
routing:
  groups:
    sales: {members: ["101"], on_fail: hangup}
  unmatched: group:sales
"""

SECTION = """\
recording:
  policies:
    trunk:prov: always
    group:sales: {policy: on_demand, announce: true}
    ext:101: never
  announce: false
  announcement: recording-notice
  toggle_code: "*1"
  retention_days: {always: 30, on_demand: 365}
  min_free_mb: 800
  min_free_percent: 3
"""


def test_the_section_is_stored_and_exported_unchanged(tmp_path):
    with Store(tmp_path) as store:
        import_config(store, BASE + SECTION)
        setting = store.get_setting("recording")
        assert setting["policies"] == {"trunk:prov": "always", "group:sales": {"policy": "on_demand", "announce": True},
                                       "ext:101": "never"}
        exported = export_config(store)
        import_config(store, exported)
        assert store.get_setting("recording") == setting
    assert "recording:" in exported


@pytest.mark.parametrize("line, change, words", [
    (3, ("trunk:prov: always", "trunk:nope: always"), "no such trunk"),
    (4, ("group:sales: {", "queue:sales: {"), "no such queue"),
    (5, ("ext:101: never", "ext:105: never"), "no such extension"),
    (5, ("ext:101: never", "101: never"), "not a recording target"),
    (3, ("trunk:prov: always", "trunk:prov: sometimes"), "one of always, never, on_demand"),
    (8, ('toggle_code: "*1"', "toggle_code: 1"), "toggle_code"),
    (9, ("always: 30,", "weekly: 30,"), "retention_days"),
    (10, ("min_free_mb: 800", "min_free_mb: -1"), "min_free_mb"),
])
def test_a_mistake_names_its_line(line, change, words):
    old, new = change
    with pytest.raises(ConfigFileError) as err:
        load_text(BASE + SECTION.replace(old, new))
    assert err.value.line == len(BASE.splitlines()) + line
    assert words in err.value.reason


def test_every_key_is_documented():
    from pathlib import Path

    from appliance.recording.config import KEYS
    doc = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    section = doc[doc.index("## `recording`"):]
    for key in KEYS:
        assert f"`{key}`" in section, key
