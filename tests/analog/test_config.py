"""The analog line's keys in the configuration file: a `kind: analog` trunk and its `hw.lines` entry."""

from __future__ import annotations

import pytest

from appliance.analog.config import LineConfig
from appliance.configfile import parse_document
from appliance.errors import ConfigError

BASE = {"version": 1, "routing": {"unmatched": "hangup"}}


def doc(trunk: dict | None = None, lines: dict | None = None, **hw) -> dict:
    t = trunk if trunk is not None else {"name": "line1", "kind": "analog", "number": "0441234567"}
    return {**BASE, "trunks": [t], "hw": {**hw, **({"lines": lines} if lines is not None else {})}}


def test_an_analog_trunk_is_an_ip_trunk_on_loopback_with_its_pins():
    cfg = parse_document(doc(lines={"line1": {"device": "hw:CARD=Device", "ring": 5, "hook": 6, "loop": 13,
                                              "busy_cycles": 4, "silence_seconds": 20}}))
    (trunk,) = cfg.trunks
    assert (trunk["kind"], trunk["host"], trunk["port"], trunk["addresses"], trunk["numbers"]) == \
        ("analog", "127.0.0.1", 5072, ["127.0.0.1"], ["0441234567"])
    line = LineConfig.from_setting(trunk, cfg.hw["lines"])
    assert (line.device, line.ring, line.hook, line.loop, line.busy_cycles, line.port) == \
        ("hw:CARD=Device", 5, 6, 13, 4, 5072)


@pytest.mark.parametrize("lines,message", [
    ({"line1": {"ring": 5}}, "needs its ring and hook pins"),
    ({"line1": {"ring": 5, "hook": 17}}, "GPIO17 is given to both"),
    ({"line1": {"ring": 5, "hook": 6, "bell": 1}}, "unknown key 'bell'"),
    ({"line1": {"ring": 5, "hook": 6, "ring_gap": 99}}, "ring_gap must be a number"),
    ({"line1": {"ring": 5, "hook": 6}, "other": {"ring": 7, "hook": 8}}, "is not an analog trunk"),
])
def test_refused(lines, message):
    with pytest.raises(ConfigError, match=message):
        parse_document(doc(lines=lines))


def test_number_only_on_analog_trunks():
    with pytest.raises(ConfigError, match="number is for analog lines"):
        parse_document(doc({"name": "p", "kind": "ip", "host": "1.2.3.4", "addresses": ["1.2.3.4"], "number": "1"}))
