"""Night mode kept in the store: commands, the schedule's boundaries, events, restarts (the time injected)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from appliance.night.service import NightError, NightService
from appliance.night.state import NightState
from appliance.routing.facts import Override, saved_switches
from appliance.store import Store
from tests.night.office import EXTENSIONS, ROUTING, kyiv

MON_2015 = kyiv(2025, 3, 10, 20, 15)
TUE_0900 = kyiv(2025, 3, 11, 9, 0)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def office(path) -> Store:
    from appliance.routing.config import dump, parse

    store = Store(path)
    for number, name in EXTENSIONS.items():
        store.add_extension(number, name)
    store.set_routing_document(dump(parse(ROUTING, EXTENSIONS, timezone=store.timezone)))
    return store


@pytest.fixture
def store(tmp_path):
    with office(tmp_path) as s:
        yield s


def saved_state(store: Store, switch: str) -> NightState:
    return NightState.from_dict(store.night_states()[switch])


def night_events(store: Store) -> list[dict]:
    return [e["data"] for e in reversed(list(store.events())) if e["kind"] == "NightModeChanged"]


def test_status_of_a_fresh_office_is_what_the_schedule_says(store):
    svc = NightService(store, clock=Clock(MON_2015))
    switches = svc.status()["switches"]
    assert switches["kyiv"]["mode"] == "night" and switches["kyiv"]["how"] == "auto"
    assert datetime.fromisoformat(switches["kyiv"]["until"]) == TUE_0900
    assert switches["warehouse"]["mode"] == "day" and switches["warehouse"]["until"] is None
    assert switches["kyiv"]["text"] == "night, automatic (schedule 'hours') until Tue 11 Mar 09:00 (by schedule at 20:15)"


def test_a_change_is_saved_with_its_event_and_the_copy_routing_reads(store):
    published = []
    svc = NightService(store, published.append, clock=Clock(MON_2015))
    moved = store.changes()["switches"]       # the engine re-reads the switches when this moves
    result = svc.set("off", switch="kyiv", by="command line")
    assert store.changes()["switches"] > moved
    assert result["changed"] == ["kyiv"]
    assert result["switches"]["kyiv"]["how"] == "temporary"
    saved = saved_state(store, "kyiv")
    assert (saved.mode, saved.how, saved.by, saved.until) == ("day", "temporary", "command line", TUE_0900)
    night, _ = saved_switches(store.routing_state("night"), None)
    assert night == {"kyiv": Override("day", False, MON_2015)}
    [event] = night_events(store)
    assert event == published[0]
    assert (event["switch"], event["mode"], event["how"], event["by"], event["was"]) == \
        ("kyiv", "day", "temporary", "command line", {"mode": "night", "how": "auto"})
    # The same again changes nothing and says so.
    assert svc.set("off", switch="kyiv", by="command line")["changed"] == []
    assert len(night_events(store)) == 1


def test_the_timer_ends_a_temporary_override_at_the_boundary_and_says_the_schedule_did(store):
    clock, published = Clock(MON_2015), []
    svc = NightService(store, published.append, clock=clock)
    svc.press(long=False, switch="kyiv", by="button")
    clock.now = TUE_0900 - timedelta(seconds=1)
    svc.tick()
    assert saved_state(store, "kyiv").how == "temporary"
    clock.now = TUE_0900
    svc.tick()
    s = saved_state(store, "kyiv")
    assert (s.mode, s.how, s.since, s.by) == ("day", "auto", TUE_0900, "schedule")
    assert [(e["how"], e["by"]) for e in published] == [("temporary", "button"), ("auto", "schedule")]
    assert saved_switches(store.routing_state("night"), None)[0] == {}
    # In automatic mode the schedule's own changes are events too.
    clock.now = kyiv(2025, 3, 11, 18, 0, 5)
    svc.tick()
    assert (published[-1]["mode"], published[-1]["how"], published[-1]["by"]) == ("night", "auto", "schedule")


def test_every_switch_follows_a_press_when_none_is_named(store):
    svc = NightService(store, clock=Clock(MON_2015))
    result = svc.press(long=False)          # kyiv is night by its schedule: both go to day
    assert sorted(result["changed"]) == ["kyiv"]            # the warehouse is day anyway
    assert {k: v["mode"] for k, v in result["switches"].items()} == {"kyiv": "day", "warehouse": "day"}
    held = svc.press(long=True)
    assert {k: (v["mode"], v["how"]) for k, v in held["switches"].items()} == \
        {"kyiv": ("day", "permanent"), "warehouse": ("day", "permanent")}
    back = svc.press(long=True, by="button")
    assert {v["how"] for v in back["switches"].values()} == {"auto"}


def test_the_state_survives_a_restart(tmp_path):
    with office(tmp_path) as store:
        NightService(store, clock=Clock(MON_2015)).set("on", permanent=True, switch="warehouse", by="extension 102")
    with Store(tmp_path) as again:
        later = kyiv(2025, 4, 1, 12, 0)
        view = NightService(again, clock=Clock(later)).status("warehouse")["switches"]["warehouse"]
    assert (view["mode"], view["how"], view["by"], datetime.fromisoformat(view["since"])) == \
        ("night", "permanent", "extension 102", MON_2015)


def test_refusals_name_the_switches_there_are(store, tmp_path):
    svc = NightService(store, clock=Clock(MON_2015))
    with pytest.raises(NightError, match=r"no night switch 'shop' \(switches: kyiv, warehouse\)"):
        svc.set("on", switch="shop", by="command line")
    with pytest.raises(NightError, match="on, off, auto or toggle"):
        svc.set("dusk", by="command line")
    with pytest.raises(NightError, match="who or what"):
        svc.set("on", by="  ")
    with Store(tmp_path / "bare") as bare:
        with pytest.raises(NightError, match="the routing has no night switch"):
            NightService(bare).status()


def test_a_state_saved_before_the_night_table_is_kept(tmp_path):
    """routing_state "night" written before the migration becomes the table's rows."""
    from sqlite_utils import Database

    from appliance.store import DB_NAME
    from appliance.store.schema import migrations

    with office(tmp_path) as store:
        store.db.execute("drop table night")
        store.db.execute("delete from _sqlite_migrations where name = 'm_night_001_switches'")
        since = MON_2015.isoformat()
        store.set_routing_state("night", {"kyiv": {"state": "day", "permanent": True, "since": since}})
    db = Database(str(tmp_path / DB_NAME))
    migrations.apply(db)
    db.conn.close()
    with Store(tmp_path) as store:
        s = saved_state(store, "kyiv")
        assert (s.mode, s.how, s.since) == ("day", "permanent", MON_2015)
        assert json.loads(json.dumps(store.routing_state("night")))["kyiv"]["permanent"] is True
        # One state for every switch (the older form) becomes each switch's.
        store.db.execute("drop table night")
        store.db.execute("delete from _sqlite_migrations where name = 'm_night_001_switches'")
        store.set_routing_state("night", {"state": "night", "permanent": False, "since": since})
        store.migrate()
        assert {k: (v["mode"], v["how"]) for k, v in store.night_states().items()} == \
            {"kyiv": ("night", "temporary"), "warehouse": ("night", "temporary")}
