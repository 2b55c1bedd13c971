"""The `hw` section of the configuration file: typed, checked, stored, exported."""

from __future__ import annotations

import pytest

from appliance.configfile import ConfigFileError, export_config, import_config, load_text
from appliance.hw.config import DEFAULT_PINS, HwConfig
from appliance.store import Store
from tests.night.office import YAML


def test_defaults_fill_in_what_is_not_given():
    c = HwConfig.from_setting({"pins": {"missed": None, "button": 5}, "hold_seconds": 3})
    assert c.pins == {**DEFAULT_PINS, "missed": None, "button": 5}
    assert (c.leds_active_high, c.button_active_high, c.hold_seconds, c.bounce_ms) == (True, False, 3.0, 50)
    assert HwConfig.from_setting(None) == HwConfig()


def test_an_hw_section_is_imported_and_exported(tmp_path):
    text = YAML + "hw:\n  pins: {night: 5, missed: null}\n  hold_seconds: 1.5\n  night_switch: kyiv\n"
    with Store(tmp_path) as store:
        import_config(store, text)
        assert store.get_setting("hw") == {"pins": {"night": 5, "missed": None}, "hold_seconds": 1.5,
                                           "night_switch": "kyiv"}
        exported = export_config(store)
        assert "hw:" in exported
        import_config(store, exported)
        assert export_config(store) == exported
        import_config(store, YAML)          # a file without the section: the defaults again
        assert store.get_setting("hw") == {} and "hw:" not in export_config(store)


@pytest.mark.parametrize("section, below, message", [
    ("hw: {pins: {night: 40}}", 0, "the night pin must be a GPIO number from 2 to 27"),
    ("hw: {pins: {night: 17}}", 0, "GPIO17 is given to both ready and night"),
    ("hw: {pins: {bell: 4}}", 0, "unknown part 'bell' in pins"),
    ("hw:\n  hold_seconds: 20", 1, "hold_seconds must be a number of seconds from 0.5 to 10"),
    ("hw:\n  bounce_ms: 2.5", 1, "bounce_ms must be a whole number of milliseconds"),
    ("hw:\n  leds_active_high: yes", 1, "leds_active_high must be true or false"),
    ("hw:\n  night_switch: lviv", 1, "night_switch 'lviv' is not a night switch of the routing (switches: kyiv)"),
    ("hw:\n  colour: blue", 1, "unknown key 'colour' in hw"),
])
def test_a_bad_hw_section_is_refused_with_its_line(section, below, message):
    """`below`: lines after the section's own first line."""
    with pytest.raises(ConfigFileError) as e:
        load_text(YAML + section + "\n")
    assert e.value.line == YAML.count("\n") + 1 + below
    assert message in e.value.reason


def test_every_hw_key_and_part_is_documented():
    from pathlib import Path

    from appliance.hw.config import KEYS, PARTS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    section = doc[doc.index("## `hw`"):]
    section = section[:section.index("\n## ", 1)]
    assert [k for k in (*KEYS, *PARTS) if f"`{k}`" not in section] == []
