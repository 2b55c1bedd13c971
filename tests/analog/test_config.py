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


def phone_doc(phones: dict | None, kind: str = "analog") -> dict:
    return {**BASE, "extensions": [{"number": "201", "name": "Porch", "kind": kind}],
            "hw": {"phones": phones} if phones is not None else {}}


def test_an_analog_extension_has_its_phone_under_hw_phones_and_needs_no_password():
    from appliance.analog.config import PhoneConfig

    cfg = parse_document(phone_doc({"201": {"device": "hw:CARD=Fxs", "ring": 20, "hook": 21, "port": 5091,
                                            "digit_timeout": 5}}))
    (ext,) = cfg.extensions
    assert ext["kind"] == "analog" and len(ext["ha1_md5"]) == 32     # a secret nobody knows until the phone sets its own
    phone = PhoneConfig.from_setting("201", cfg.hw["phones"])
    assert (phone.device, phone.ring, phone.hook, phone.port, phone.digit_timeout, phone.name) == \
        ("hw:CARD=Fxs", 20, 21, 5091, 5, "ext201")


@pytest.mark.parametrize("phones,kind,message", [
    (None, "analog", "needs its ring and hook pins under hw.phones.201"),
    ({"201": {"ring": 20}}, "analog", "phone 201 needs its ring and hook pins"),
    ({"201": {"ring": 20, "hook": 17}}, "analog", "GPIO17 is given to both"),
    ({"201": {"ring": 20, "hook": 21, "flash_min": 0.7}}, "analog", "flash_min must be shorter"),
    ({"201": {"ring": 20, "hook": 21}}, "sip", "needs a password"),
    ({"202": {"ring": 20, "hook": 21}}, "analog", "is not an analog extension"),
])
def test_analog_phones_refused(phones, kind, message):
    with pytest.raises(ConfigError, match=message):
        parse_document(phone_doc(phones, kind))


def test_an_analog_extension_survives_export_and_import(tmp_path):
    from appliance.configfile import export_config, import_config
    from appliance.store import Store

    text = "\n".join(["version: 1", "routing: {unmatched: hangup}",
                      "extensions: [{number: '201', name: Porch, kind: analog}]",
                      "hw: {phones: {'201': {ring: 20, hook: 21}}}"])
    with Store(tmp_path) as store:
        import_config(store, text)
        again = export_config(store)
        assert "kind: analog" in again
        import_config(store, again)
        assert store.extension("201")["name"] == "Porch"
        assert store.get_setting("hw")["phones"] == {"201": {"ring": 20, "hook": 21}}


def test_gains_and_the_echo_tail_of_a_line_and_of_a_phone():
    from appliance.analog.config import PhoneConfig

    cfg = parse_document(doc(lines={"line1": {"ring": 5, "hook": 6, "rx_gain": -3.5, "tx_gain": 2,
                                              "echo_tail": 128}}))
    line = LineConfig.from_setting(cfg.trunks[0], cfg.hw["lines"])
    assert (line.rx_gain, line.tx_gain, line.echo_tail) == (-3.5, 2, 128)
    cfg = parse_document(phone_doc({"201": {"ring": 20, "hook": 21, "echo_tail": 0, "rx_gain": 20}}))
    phone = PhoneConfig.from_setting("201", cfg.hw["phones"])
    assert (phone.rx_gain, phone.tx_gain, phone.echo_tail) == (20, 0.0, 0)
    cfg = parse_document(doc(lines={"line1": {"ring": 5, "hook": 6}}))
    default = LineConfig.from_setting(cfg.trunks[0], cfg.hw["lines"])
    assert (default.rx_gain, default.tx_gain, default.echo_tail) == (0.0, 0.0, 64)
    assert PhoneConfig("201").echo_tail == 64


@pytest.mark.parametrize("key,value,message", [
    ("rx_gain", 20.5, r"rx_gain must be a number from -20.0 to 20.0"),
    ("tx_gain", -21, r"tx_gain must be a number from -20.0 to 20.0"),
    ("rx_gain", "6", r"rx_gain must be a number"),
    ("tx_gain", True, r"tx_gain must be a number"),
    ("echo_tail", 300, r"echo_tail must be a whole number from 0 to 256"),
    ("echo_tail", -1, r"echo_tail must be a whole number from 0 to 256"),
    ("echo_tail", 64.0, r"echo_tail must be a whole number"),
    ("echo_tail", "64", r"echo_tail must be a whole number"),
    ("echo_tail", None, r"echo_tail must be a whole number"),
])
def test_gains_and_echo_tail_refused(key, value, message):
    with pytest.raises(ConfigError, match=message) as line:
        parse_document(doc(lines={"line1": {"ring": 5, "hook": 6, key: value}}))
    assert line.value.path == ("hw", "lines", "line1", key)
    with pytest.raises(ConfigError, match=message) as phone:
        parse_document(phone_doc({"201": {"ring": 20, "hook": 21, key: value}}))
    assert phone.value.path == ("hw", "phones", "201", key)
