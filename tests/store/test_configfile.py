"""The configuration file: lossless export/import, and invalid files refused whole with line and reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from appliance.configfile import ConfigFileError, export_config, import_config, load_text
from appliance.defaults import seed_defaults
from appliance.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples"


ROUTING = """\
routing:
  groups:
    sales:
      name: Sales
      strategy: ringall
      members: [102, 103]
      on_fail: 101
  routes:
    - name: Shop
      numbers: ["0441234567"]
      to: group:sales
  unmatched: 101
"""


def office_yaml(routing: str = ROUTING) -> str:
    return textwrap.dedent(
        """\
        version: 1
        timezone: Europe/Kyiv
        sip:
          realm: office
        calls:
          confirm_seconds: 20
          ringback:
            default: 180
            group:sales: music
          media_address: 192.168.1.10
        extensions:
          - number: 101
            name: Reception
            password: reception-pass
          - number: "102"
            name: Sales Olena
            password: sales-pass-1
            dial_rules: [local, mobile, international]
          - number: 103
            name: Sales 2
            password: sales-pass-2
            dnd: true
        trunks:
          - name: main
            kind: register
            host: 127.0.0.1
            port: 5090
            username: "380441234567"
            password: trunk-secret
            numbers: ["0441234567", "+380442222222"]
          - name: analog-gw
            kind: ip
            host: 192.0.2.10
            addresses: [192.0.2.10]
        contacts:
          - number: 0671234567
            name: Regular customer
            manager: 102
            vip: true
        """
    ) + routing


def test_export_import_export_is_lossless(tmp_path):
    with Store(tmp_path / "a") as a:
        import_config(a, office_yaml())
        first = export_config(a)
    with Store(tmp_path / "b") as b:
        import_config(b, first)
        assert export_config(b) == first
        ext = b.extension("102")
        assert ext["realm"] == "office"
        assert b.get_setting("engine") == {"confirm_seconds": 20, "media_address": "192.168.1.10",
                                           "ringback": {"default": "180", "group:sales": "music"}}
        main = next(t for t in b.trunks() if t["name"] == "main")
        assert main["numbers"] == ["0441234567", "+380442222222"]


def test_phone_numbers_stay_text_and_passwords_become_digests(tmp_path):
    with Store(tmp_path) as store:
        import_config(store, office_yaml())
        (contact,) = store.contacts()
        assert contact["manager"] == "102" and contact["vip"] == 1
        assert contact["number"].endswith("671234567")
        text = export_config(store)
    assert "reception-pass" not in text and "ha1_md5" in text
    assert '"0441234567"' in text  # quoted, so any YAML reader keeps the leading zero


def assert_round_trips(store: Store, fresh: Path) -> str:
    """Export, import into the same store and into a fresh one: every export after is the same text."""
    text = export_config(store)
    import_config(store, text)
    assert export_config(store) == text
    with Store(fresh) as other:
        import_config(other, text)
        assert export_config(other) == text
    return text


def test_a_fresh_appliance_exports_a_file_that_imports_back(tmp_path):
    with Store(tmp_path / "a") as a:
        seed_defaults(a)
        assert_round_trips(a, tmp_path / "b")
    with Store(tmp_path / "b") as b:
        assert b.routing_document()["unmatched"] == "group:office"


def test_an_appliance_that_never_ran_exports_a_file_that_imports_back(tmp_path):
    # No routing is saved until the first run seeds it; the router then hangs
    # up every call, and the file says so, since an empty routing is refused.
    with Store(tmp_path / "a") as a:
        text = assert_round_trips(a, tmp_path / "b")
    assert "unmatched: hangup" in text


def test_extensions_added_before_the_first_run_still_export_a_file_that_imports_back(tmp_path):
    # With an extension already there, the first run seeds no default
    # extensions, and a routing that rings the extensions there are.
    with Store(tmp_path / "a") as a:
        a.add_extension("104", "Warehouse", "warehouse-pass")
        assert seed_defaults(a) == {}
        assert a.routing_document()["groups"]["office"]["members"] == [{"ext": "104"}]
        text = assert_round_trips(a, tmp_path / "b")
    assert 'number: "104"' in text and "unmatched: group:office" in text


def test_the_example_office_round_trips(tmp_path):
    with Store(tmp_path / "a") as a:
        import_config(a, (EXAMPLE / "office.yaml").read_text())
        text = assert_round_trips(a, tmp_path / "b")
    assert load_text(text).routing == load_text((EXAMPLE / "office.yaml").read_text()).routing


def test_routing_errors_point_at_their_line(tmp_path):
    text = office_yaml().replace("members: [102, 103]", "members: [102, 109]")
    with pytest.raises(ConfigFileError) as err:
        load_text(text)
    assert "109" in err.value.reason
    assert err.value.line == line_of(text, "members: [102, 109]")


def test_shipped_example_imports(tmp_path):
    example = EXAMPLE / "office.yaml"
    with Store(tmp_path) as store:
        cfg = import_config(store, example.read_text())
        assert cfg.routing and cfg.extensions


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "change, needle, reason",
    [
        (("number: 103", "number: 1x3"), "number: 1x3", "must be 2 to 6 digits"),
        (("dnd: true", "dnd: yes"), "dnd: yes", "dnd must be true or false"),
        (("manager: 102", "manager: 109"), "manager: 109", "manager 109 is not an extension"),
        (("kind: ip", "kind: sip"), "kind: sip", "kind must be register, ip"),
        (("timezone: Europe/Kyiv", "timezone: Europe/Kiyv"), "timezone: Europe/Kiyv", "unknown timezone"),
        (("    password: sales-pass-2\n", ""), "number: 103", "needs a password"),
        (("confirm_seconds: 20", "confirm_seconds: 2"), "confirm_seconds: 2", "between 3 and 120"),
        (("group:sales: music", "group:sales: loud"), "group:sales: loud", "ringback must be one of"),
        (("media_address: 192.168.1.10", "media_address: pbx.lan"), "media_address: pbx.lan",
         "must be an IP address"),
        (("confirm_seconds: 20", "rtp_port: 64000\n  rtp_ports: 2000"), "rtp_ports: 2000", "runs past port 65535"),
    ],
)
def test_an_invalid_file_is_refused_with_line_and_reason_and_nothing_changes(tmp_path, change, needle, reason):
    text = office_yaml().replace(*change)
    with Store(tmp_path) as store:
        seed_defaults(store)
        before = export_config(store)
        with pytest.raises(ConfigFileError) as err:
            import_config(store, text)
        assert reason in err.value.reason
        # The line is the offending key's, or the start of the item that lacks one.
        expected = line_of(text, needle)
        assert err.value.line in (expected, expected - 1), str(err.value)
        assert export_config(store) == before


def test_yaml_syntax_errors_name_the_line():
    text = office_yaml().replace("name: Reception", "name: [Reception")
    with pytest.raises(ConfigFileError) as err:
        load_text(text)
    assert err.value.line is not None and "not valid YAML" in err.value.reason


def test_unknown_keys_are_refused_not_ignored():
    with pytest.raises(ConfigFileError, match="unknown key 'pasword'"):
        load_text(office_yaml().replace("password: reception-pass", "pasword: reception-pass"))
