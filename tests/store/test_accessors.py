"""The store's accessors for the edge, the configuration import and the engine, on a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from appliance.store import IN_PROGRESS, Store, ha1


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "data") as s:
        s.add_extension("201", "Reception", "secret-201")
        s.add_extension("202", "Sales", "secret-202")
        yield s


def other_connection(store: Store) -> sqlite3.Connection:
    return sqlite3.connect(store.path)


def binding(extension: str, contact: str, expires_at: float = 2000.0) -> dict:
    return {"extension": extension, "contact": contact, "source_host": "192.0.2.7", "source_port": 5062,
            "transport": "udp", "user_agent": "desk", "call_id": "c1", "cseq": 3, "q": 1.0,
            "expires_at": expires_at, "registered_at": 1000.0, "instance": None}


def test_ha1_of_reads_the_digest_for_the_algorithm(store):
    assert store.ha1_of("201", "MD5") == ha1("201", "pbx", "secret-201", "MD5")
    assert store.ha1_of("201", "SHA-256") == ha1("201", "pbx", "secret-201", "SHA-256")
    assert store.ha1_of("299", "MD5") is None


def test_add_extensions_in_one_transaction(store):
    passwords = store.add_extensions([("301", "One", "pw-301"), ("302", "Two", None)])
    assert passwords["301"] == "pw-301" and len(passwords["302"]) == 12
    assert store.ha1_of("302", "MD5") == ha1("302", "pbx", passwords["302"])
    with pytest.raises(Exception):
        store.add_extensions([("303", "Three", None), ("303", "Again", None)])
    assert store.extension("303") is None  # all or nothing


def test_save_bindings_writes_removes_and_refuses_a_gone_extension(store):
    refused = store.save_bindings([binding("201", "sip:201@a"), binding("209", "sip:209@b"),
                                   binding("202", "sip:202@c")], [])
    assert refused == [1]  # no extension 209: the foreign key refuses it, the others are written
    assert [(r["extension"], r["contact"]) for r in store.bindings(now=0)] == [("201", "sip:201@a"), ("202", "sip:202@c")]
    assert store.save_bindings([binding("201", "sip:201@d")], [("201", "sip:201@a")]) == []
    assert [r["contact"] for r in store.bindings("201", now=0)] == ["sip:201@d"]
    assert store.save_bindings([], [("202", "sip:202@c")]) == []
    assert [r["contact"] for r in store.bindings(now=0)] == ["sip:201@d"]


def test_save_bindings_is_one_transaction(store, monkeypatch):
    # A failure half way leaves what was there: the delete is rolled back with the rest.
    store.save_bindings([binding("201", "sip:201@a")], [])

    class Broken(dict):
        def __getitem__(self, key):
            raise RuntimeError("broken row")

    row = Broken(binding("202", "sip:202@c"))
    with pytest.raises(RuntimeError):
        store.save_bindings([binding("202", "sip:202@b"), row], [("201", "sip:201@a")])
    assert [r["contact"] for r in store.bindings(now=0)] == ["sip:201@a"]
    assert not store.db.conn.in_transaction


def test_save_bindings_leaves_out_a_column_the_table_lacks(store):
    row = {**binding("201", "sip:201@a"), "instance": "<urn:uuid:1>", "not_a_column": 1}
    assert store.save_bindings([row], []) == []
    assert store.bindings(now=0)[0]["instance"] == "<urn:uuid:1>"


def test_load_bindings_drops_the_expired(store):
    store.save_bindings([binding("201", "sip:201@a", 900.0), binding("202", "sip:202@c", 1100.0)], [])
    assert [r["contact"] for r in store.load_bindings(1000.0)] == ["sip:202@c"]
    with other_connection(store) as conn:
        assert conn.execute("select count(*) from bindings").fetchone()[0] == 1


def test_bans(store):
    store.save_ban("203.0.113.9", 100.0, 700.0, "flood")
    store.save_ban("203.0.113.8", 100.0, 400.0, "auth failures")
    store.save_ban("203.0.113.7", 50.0, 150.0, "flood")
    assert [b["address"] for b in store.bans(200.0)] == ["203.0.113.8", "203.0.113.9"]
    assert store.bans(200.0)[0] == {"address": "203.0.113.8", "reason": "auth failures", "banned_at": 100.0, "until": 400.0}
    store.save_ban("203.0.113.9", 300.0, 900.0, "auth failures")  # a new ban replaces the old
    assert store.bans(200.0)[1]["reason"] == "auth failures"
    assert store.drop_ended_bans(200.0) == 1
    assert store.delete_ban("203.0.113.8") is True
    assert store.delete_ban("203.0.113.8") is False
    assert [b["address"] for b in store.bans(0.0)] == ["203.0.113.9"]


def test_data_version_moves_with_another_connections_commit_only(store):
    before = store.data_version()
    store.save_ban("203.0.113.9", 100.0, 700.0, "flood")
    assert store.data_version() == before
    with other_connection(store) as conn:
        conn.execute("delete from bans")
    assert store.data_version() != before


def test_transaction_is_all_or_nothing(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.set_setting("a", 1)
            raise RuntimeError("stop")
    assert store.get_setting("a") is None
    with store.transaction():
        with store.transaction():  # nested: a savepoint
            store.set_setting("a", 2)
    assert store.get_setting("a") == 2


def test_a_transaction_holds_the_write_lock_from_its_start(store):
    # A transaction that read first and then met another connection's commit
    # would fail at its first write, at once ("database is locked", whatever
    # busy_timeout says): so nobody else may commit while one is open.
    other = sqlite3.connect(store.path, timeout=0.05, isolation_level=None)
    try:
        with store.transaction():
            store.get_setting("a")
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("insert into settings (key, value) values ('b', '1')")
            store.set_setting("a", 1)
        other.execute("insert into settings (key, value) values ('b', '1')")
    finally:
        other.close()
    assert store.get_setting("a") == 1 and store.get_setting("b") == 1


def test_what_the_configuration_import_removes(store):
    store.save_bindings([binding("201", "sip:201@a"), binding("202", "sip:202@c")], [])
    store.put_trunk({"name": "main", "host": "sip.example.net"})
    store.put_contact({"number": "+380441111111", "name": "Listed", "learned": 0})
    store.put_contact({"number": "+380442222222", "manager": "201", "learned": 1})
    store.remove_extensions_except(["202"])
    assert [e["number"] for e in store.extensions()] == ["202"]
    assert [b["extension"] for b in store.bindings(now=0)] == ["202"]
    store.remove_trunks()
    store.remove_listed_contacts()
    assert store.trunks() == []
    assert [c["number"] for c in store.contacts()] == ["+380442222222"]  # a learned manager stays
    store.remove_extensions_except([])
    assert store.extensions() == [] and store.bindings(now=0) == []


def call(call_id: str) -> dict:
    return {"id": call_id, "started_at": "2026-01-05T09:00:00.000+00:00", "direction": "inbound",
            "caller": "+380501234567", "dialled": "+380441234567", "trunk": "main"}


def test_finish_call_writes_the_record_and_its_missed_call_together(store):
    store.call_started(call("c-1"))
    final = {**call("c-1"), "ended_at": "2026-01-05T09:00:30.000+00:00", "outcome": "missed",
             "wait_s": 30.0, "talk_s": 0.0, "path": [{"kind": "end", "reason": "no answer", "rung": ["201"]}]}
    store.finish_call(final, {"caller": "+380501234567", "dialled": "+380441234567",
                              "at": final["ended_at"], "manager": "201"})
    record = store.recent_calls()[0]
    assert record["outcome"] == "missed" and record["path"][0]["reason"] == "no answer"
    [missed] = store.open_missed()
    assert (missed["call_id"], missed["manager"], missed["status"]) == ("c-1", "201", "open")

    store.call_started(call("c-2"))
    store.finish_call({**call("c-2"), "outcome": "answered", "answered_by": "202"}, None)
    assert {c["id"]: c["outcome"] for c in store.recent_calls()}["c-2"] == "answered"
    assert len(store.open_missed()) == 1
    assert store.interrupted_calls() == []


def test_finish_call_is_one_transaction(store):
    store.call_started(call("c-1"))
    with pytest.raises(KeyError):
        store.finish_call({**call("c-1"), "outcome": "missed"}, {"dialled": "x", "at": "y"})  # no caller
    assert store.recent_calls()[0]["outcome"] == IN_PROGRESS
    assert store.open_missed() == []


def test_add_callback(store):
    row = {"call_id": "c-1", "queue": "sales", "caller": "+380501234567", "caller_name": "Client",
           "dialled": "+380441234567", "requested_at": "2026-01-05T09:00:00.000+00:00"}
    first = store.add_callback(row)
    second = store.add_callback({**row, "call_id": "c-2", "requested_at": "2026-01-05T09:01:00.000+00:00"})
    assert second == first + 1
    assert [(c["call_id"], c["status"]) for c in store.open_callbacks()] == [("c-1", "open"), ("c-2", "open")]
    with other_connection(store) as conn:  # committed: another process sees it
        assert conn.execute("select count(*) from callbacks").fetchone()[0] == 2



def test_every_writer_at_once_and_none_is_refused():
    # `pbx bench store` for a moment: the edge, the engine, readers and the panel in another process.
    from click.testing import CliRunner

    from appliance.store.bench import store as bench_store

    result = CliRunner().invoke(bench_store, ["--seconds", "1", "--bindings", "50", "--calls", "20",
                                              "--import-every", "0.5"])
    assert result.exit_code == 0, result.output
    table = result.output.splitlines()[2:]
    for writer in ("edge flush", "edge bans", "edge reads", "engine", "panel edits", "panel import", "readers"):
        [row] = [line for line in table if line.startswith(writer + " ")]
        writes, locked = row[len(writer):].split()[:2]
        assert int(writes) > 0 and locked == "0", row
    assert "failed" not in result.output and "locked in" not in result.output
