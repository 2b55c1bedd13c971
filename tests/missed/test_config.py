"""The `missed` and `notify` sections of the configuration file: checked, imported, exported, documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.configfile import ConfigFileError, export_config, import_config, load_text
from appliance.store import Store

DOC = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()

BASE = """\
version: 1
extensions:
  - {number: "101", name: Olha, password: secret-101}
  - {number: "102", name: Petro, password: secret-102}
routing:
  unmatched: hangup
"""


def test_a_webhook_url_that_is_not_http_is_refused_with_its_line():
    text = BASE + "notify:\n  secret: k\n  urls:\n    - https://crm.example.com/hook\n    - ftp://crm.example.com/hook\n"
    with pytest.raises(ConfigFileError) as e:
        load_text(text)
    assert e.value.line == 11
    assert "must start with http:// or https://" in str(e.value) and "notify.urls" in str(e.value)


@pytest.mark.parametrize("section, words", [
    ("missed:\n  assign_to: '105'\n", "assign_to must be one of the extensions"),
    ("missed:\n  callback_seconds: -1\n", "callback_seconds must be a number of seconds"),
    ("missed:\n  deadline: 3\n", "unknown key 'deadline' in missed"),
    ("notify:\n  urls: http://crm.example.com\n", "urls must be a list"),
    ("notify:\n  timeout_seconds: 0\n", "timeout_seconds must be a number of seconds"),
])
def test_bad_values_are_refused(section, words):
    with pytest.raises(ConfigFileError, match=words):
        load_text(BASE + section)


def test_the_sections_are_imported_and_exported(tmp_path):
    text = BASE + ("missed:\n  callback_seconds: 15\n  short_abandon_seconds: 3\n  assign_to: '102'\n"
                   "notify:\n  urls: [http://127.0.0.1:8000/hook]\n  secret: k\n  timeout_seconds: 3\n")
    with Store(tmp_path / "a") as a:
        import_config(a, text)
        assert a.get_setting("missed") == {"callback_seconds": 15, "short_abandon_seconds": 3, "assign_to": "102"}
        assert a.get_setting("notify")["urls"] == ["http://127.0.0.1:8000/hook"]
        exported = export_config(a)
    with Store(tmp_path / "b") as b:
        import_config(b, exported)
        assert export_config(b) == exported
        assert b.get_setting("notify")["secret"] == "k"


def test_every_key_is_documented():
    from appliance.missed.config import KEYS as MISSED_KEYS
    from appliance.notify.config import KEYS as NOTIFY_KEYS

    for name, keys in (("missed", MISSED_KEYS), ("notify", NOTIFY_KEYS)):
        section = DOC[DOC.index(f"## `{name}`"):]
        section = section[:section.index("\n## ", 1)]
        assert [k for k in keys if f"`{k}`" not in section] == []
