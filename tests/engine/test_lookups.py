"""The engine's in-memory lookups: re-read when bindings, contacts or settings change, not when records are written."""

from __future__ import annotations

import time

from appliance.engine.lookups import Lookups
from appliance.store import Store


def wait_for(cond, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def bind(store: Store, ext: str, port: int) -> None:
    store.db["bindings"].insert({
        "extension": ext, "contact": f"sip:{ext}@127.0.0.1:{port}", "source_host": "127.0.0.1",
        "source_port": port, "transport": "udp", "q": 1.0, "expires_at": time.time() + 3600,
        "registered_at": time.time()})


def test_triggers_count_writes_to_each_watched_table(data_dir):
    with Store(data_dir) as st:
        st.seed_defaults()
        before = st.changes()
        bind(st, "101", 5062)
        st.put_contact({"number": "+380501234567", "name": "Shop", "manager": "101"})
        st.db["bindings"].delete_where("extension = ?", ["101"])
        st.append_event("CallStarted", {"caller": "x"}, "c1")
        after = st.changes()
    assert after["bindings"] == before["bindings"] + 2
    assert after["contacts"] == before["contacts"] + 1
    assert after["settings"] == before["settings"]


def test_a_new_binding_and_contact_are_seen_and_records_cause_no_reread(data_dir):
    with Store(data_dir) as st:
        st.seed_defaults()
    lookups = Lookups(data_dir, period=0.02)
    with Store(data_dir) as st:
        lookups.refresh(st)
    lookups.start()
    try:
        first = lookups.snapshot
        assert "101" not in first.bindings
        with Store(data_dir) as other:  # another connection, as the edge or the panel would write
            bind(other, "101", 5062)
            assert wait_for(lambda: "101" in lookups.snapshot.bindings), "a new binding was not seen"
            other.put_contact({"number": "+380501234567", "name": "Shop", "manager": "101"})
            assert wait_for(lambda: "+380501234567" in lookups.snapshot.contacts), "a new contact was not seen"
            settled = lookups.snapshot
            # What the engine writes all the time: events and call records.
            for i in range(20):
                other.append_event("CallStarted", {"n": i}, f"c{i}")
            time.sleep(0.2)
            assert lookups.snapshot is settled, "writing events re-read the lookups"
            other.set_setting("timezone", "Europe/Warsaw")
            assert wait_for(lambda: str(lookups.snapshot.timezone) == "Europe/Warsaw")
            assert lookups.snapshot.bindings is settled.bindings, "bindings re-read for a settings change"
    finally:
        lookups.stop()
