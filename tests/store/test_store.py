"""The store: migrations, first-run defaults, extensions kept as digests only."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from appliance.defaults import canonical_routing, seed_defaults
from appliance.errors import ConfigError
from appliance.store import DB_NAME, DEFAULT_ROUTING, Store, ha1


def schema(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("select type, name, sql from sqlite_master order by name").fetchall()


def test_migrations_from_empty_are_idempotent(data_dir):
    Store(data_dir).close()
    first = schema(data_dir / DB_NAME)
    Store(data_dir).close()
    Store(data_dir).close()
    assert schema(data_dir / DB_NAME) == first
    names = {row[1] for row in first if row[0] == "table"}
    assert {"extensions", "bindings", "trunks", "routing", "calls", "missed", "events", "settings", "bans"} <= names
    with sqlite3.connect(data_dir / DB_NAME) as conn:
        applied = conn.execute("select count(*) from _sqlite_migrations").fetchone()[0]
        assert applied >= 1
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_first_run_seeds_timezone_and_three_extensions_once(data_dir):
    with Store(data_dir) as store:
        created = store.seed_defaults()
        assert sorted(created) == ["101", "102", "103"]
        assert len(set(created.values())) == 3
        assert store.timezone == "Europe/Kyiv"
        assert store.seed_defaults() is None
    with Store(data_dir) as store:
        assert store.seed_defaults() is None
        assert [e["number"] for e in store.extensions()] == ["101", "102", "103"]


def test_the_store_seeds_a_plain_routing_and_the_appliance_saves_it_as_routing_writes_it(tmp_path):
    # The store alone writes DEFAULT_ROUTING for the extensions there are;
    # the first start (appliance.defaults) has routing check it and saves the
    # canonical form an export writes.
    with Store(tmp_path / "plain") as store:
        store.seed_defaults()
        plain = store.routing_document()
        extensions = {e["number"]: e["name"] for e in store.extensions()}
    assert plain == {**DEFAULT_ROUTING, "groups": {"office": {**DEFAULT_ROUTING["groups"]["office"],
                                                             "members": ["101", "102", "103"]}}}
    with Store(tmp_path / "checked") as store:
        seed_defaults(store)
        checked = store.routing_document()
    assert checked == canonical_routing(plain, extensions, "Europe/Kyiv")
    assert checked["groups"]["office"]["members"] == [{"ext": "101"}, {"ext": "102"}, {"ext": "103"}]


def test_a_default_routing_routing_refuses_is_not_saved(tmp_path):
    def refuse(document, extensions, timezone):
        raise ConfigError("no")

    with Store(tmp_path) as store:
        with pytest.raises(ConfigError):
            store.seed_defaults(check_routing=refuse)
        assert store.routing_document() == {} and store.extensions() == []
        assert store.get_setting("seeded") is None


def test_passwords_are_never_stored_only_their_digests(data_dir):
    with Store(data_dir) as store:
        password = store.add_extension("104", "Warehouse", "correct horse")
        assert password == "correct horse"
        row = store.extension("104")
        assert row["ha1_md5"] == hashlib.md5(b"104:pbx:correct horse").hexdigest()
        assert row["ha1_sha256"] == hashlib.sha256(b"104:pbx:correct horse").hexdigest()
    raw = (data_dir / DB_NAME).read_bytes() + b"".join(p.read_bytes() for p in data_dir.glob("*-wal"))
    assert b"correct horse" not in raw


def test_bad_extension_numbers_are_refused_with_the_reason(data_dir):
    with Store(data_dir) as store:
        for bad, reason in [("1", "2 to 6 digits"), ("12a", "2 to 6 digits"), ("0501", "must not start with 0")]:
            with pytest.raises(ConfigError, match=reason):
                store.add_extension(bad, "x")
        store.add_extension("200", "Sales")
        with pytest.raises(ConfigError, match="already exists"):
            store.add_extension("200", "Again")


def test_new_password_changes_the_digest(data_dir):
    with Store(data_dir) as store:
        store.add_extension("105", "Desk", "first-password")
        before = store.extension("105")["ha1_md5"]
        store.set_password("105", "second-password")
        assert store.extension("105")["ha1_md5"] == ha1("105", "pbx", "second-password") != before


def test_removing_an_extension_removes_its_bindings(data_dir):
    with Store(data_dir) as store:
        store.add_extension("106", "Desk", "password-1")
        store.db["bindings"].insert({"extension": "106", "contact": "sip:106@10.0.0.5:5060", "expires_at": 4e9})
        assert len(store.bindings("106")) == 1
        store.remove_extension("106")
        assert store.bindings() == [] and store.extension("106") is None


def test_settings_round_trip_any_json_value(data_dir):
    with Store(data_dir) as store:
        store.set_setting("night", {"mode": "night", "until": None})
        assert store.get_setting("night") == {"mode": "night", "until": None}
        assert store.get_setting("missing", 7) == 7


def test_call_records_keep_their_path(data_dir):
    with Store(data_dir) as store:
        store.record_call({"id": "c1", "started_at": "2026-11-23T10:00:00+00:00", "caller": "+380671234567",
                           "outcome": "missed", "path": [{"kind": "ring", "targets": ["101"]}]})
        store.add_missed("c1", "+380671234567", "0441234567", "2026-11-23T10:00:30+00:00", "101")
        (call,) = store.recent_calls()
        assert call["path"] == [{"kind": "ring", "targets": ["101"]}]
        assert store.open_missed()[0]["manager"] == "101"
