"""The night page with the appliance not running: the mode buttons change the switch's state in the store
(through the night service directly), and the switches' configuration is edited through the validator."""

from __future__ import annotations

import pytest

from appliance.configfile import export_config
from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office


@pytest.fixture
def office_switch(panel_data):
    """A schedule open Monday to Friday 09:00-18:00, the night switch `office` that follows it, and `lobby`
    that follows none (day unless set by hand, whatever the time the test runs at)."""
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["schedules"] = {"hours": {"name": "Office hours", "hours": {"mon-fri": "09:00-18:00"}}}
        doc["routing"]["night"] = {"office": {"name": "Front desk", "schedule": "hours", "day": "group:office",
                                              "night": "voicemail:101"},
                                   "lobby": {"name": "Lobby", "day": "102", "night": "hangup"}}
        doc["routing"]["unmatched"] = "night:office"
        office.save(store, doc, "owner", "a night switch")
    return panel_data


def state(data_dir, sid="office"):
    with Store(data_dir) as store:
        return store.night_states().get(sid)


def saved(data_dir):
    with Store(data_dir) as store:
        return export_config(store), len(PanelTables(store).versions())


def press(owner, mode, sid="office"):
    return post_form(owner, f"/night/{sid}/mode", {"mode": mode}, page="/night/")


def test_the_page_shows_each_switch_with_its_buttons_and_the_ways_to_switch(owner, office_switch):
    page = owner.get("/night/").data.decode()
    assert 'id="switch-office"' in page and "Front desk" in page
    for mode in ("night", "night-permanent", "day", "day-permanent", "auto"):
        assert f'id="mode-office-{mode}"' in page
    assert "*28" in page
    assert 'id="night-mode-office"' in page


def test_the_buttons_set_the_state_in_the_store_when_the_appliance_is_not_running(owner, office_switch):
    resp = press(owner, "night-permanent")
    assert resp.status_code == 302
    row = state(office_switch)
    assert (row["mode"], row["how"], row["by"]) == ("night", "permanent", "panel")
    page = owner.get("/night/").data.decode()
    assert "Ніч" in page.split('id="night-mode-office"')[1][:80]

    assert press(owner, "auto").status_code == 302
    assert state(office_switch)["how"] == "auto"

    assert press(owner, "day-permanent").status_code == 302
    row = state(office_switch)
    assert (row["mode"], row["how"]) == ("day", "permanent")


def test_until_the_next_change_is_temporary_and_back_to_the_schedule_ends_it(owner, office_switch):
    assert press(owner, "night", sid="lobby").status_code == 302
    row = state(office_switch, "lobby")
    assert (row["mode"], row["how"], row["by"]) == ("night", "temporary", "panel")
    page = owner.get("/night/").data.decode()
    assert "вручну" in page.split('id="night-how-lobby"')[1][:200]
    assert press(owner, "auto", sid="lobby").status_code == 302
    assert (state(office_switch, "lobby")["mode"], state(office_switch, "lobby")["how"]) == ("day", "auto")
    assert press(owner, "day-permanent", sid="lobby").status_code == 302
    assert state(office_switch, "lobby")["how"] == "permanent"
    assert press(owner, "night", sid="lobby").status_code == 302
    assert (state(office_switch, "lobby")["mode"], state(office_switch, "lobby")["how"]) == ("night", "temporary")
    assert press(owner, "day", sid="lobby").status_code == 302
    assert (state(office_switch, "lobby")["mode"], state(office_switch, "lobby")["how"]) == ("day", "auto"), \
        "day by hand where the switch is day anyway is the automatic state"
    assert state(office_switch)["how"] == "auto", "a switch's button sets that switch only"


def test_an_unknown_mode_or_switch_changes_nothing(owner, office_switch):
    press(owner, "night-permanent")
    before = state(office_switch)
    resp = press(owner, "sleep")
    assert resp.status_code == 400 and 'id="night-error"' in resp.data.decode()
    resp = press(owner, "day", sid="warehouse")
    assert resp.status_code == 400 and "warehouse" in resp.data.decode().split('id="night-error"')[1][:300]
    assert state(office_switch) == before


def test_edit_a_switch_saves_a_version(owner, office_switch):
    resp = post_form(owner, "/night/office", {"name": "Reception", "schedule": "", "day": "101",
                                              "night": "hangup"})
    assert resp.status_code == 302
    with Store(office_switch) as store:
        sw = office.document(store)["routing"]["night"]["office"]
        assert PanelTables(store).latest_version()["summary"] == "night switch office saved"
    assert sw == {"name": "Reception", "day": "ext:101", "night": "hangup"}


def test_a_bad_choice_is_shown_next_to_its_field_and_nothing_is_saved(owner, office_switch):
    before = saved(office_switch)
    resp = post_form(owner, "/night/office", {"name": "Reception", "schedule": "hours", "day": "group:nope",
                                              "night": "hangup"})
    assert resp.status_code == 400 and 'id="day-error"' in resp.data.decode()
    resp = post_form(owner, "/night/new", {"ident": "office", "name": "Again", "schedule": "", "day": "101",
                                           "night": "hangup"})
    assert resp.status_code == 400 and 'id="ident-error"' in resp.data.decode()
    assert saved(office_switch) == before


def test_add_a_switch_and_delete_one_no_call_needs(owner, office_switch):
    resp = post_form(owner, "/night/new", {"ident": "store", "name": "Warehouse", "schedule": "hours",
                                           "day": "102", "night": "voicemail:102"})
    assert resp.status_code == 302
    with Store(office_switch) as store:
        assert office.document(store)["routing"]["night"]["store"]["schedule"] == "hours"
    assert 'id="switch-store"' in owner.get("/night/").data.decode()
    assert post_form(owner, "/night/store/delete", {}, page="/night/").status_code == 302
    with Store(office_switch) as store:
        assert "store" not in office.document(store)["routing"]["night"]


def test_deleting_a_switch_a_route_uses_is_refused_with_the_reason(owner, office_switch):
    before = saved(office_switch)
    resp = post_form(owner, "/night/office/delete", {}, page="/night/")
    assert resp.status_code == 400
    assert "night:office" in resp.data.decode().split('id="night-error"')[1][:400]
    assert saved(office_switch) == before
