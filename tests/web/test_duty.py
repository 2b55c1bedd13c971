"""The duty roster page: the four-week calendar (a date entry beats a weekday entry), entries added and
removed, numbers read in any usual form, and refusals shown next to their field with nothing saved."""

from __future__ import annotations

import pytest

from appliance.configfile import export_config
from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office

URL = "/duty/after_hours"
START = "2026-03-02"   # a Monday: the calendar shows 2026-03-02 .. 2026-03-29


@pytest.fixture
def roster(panel_data):
    """Weekdays Monday to Thursday on one mobile, Friday to Sunday on another, 2026-03-11 (a Wednesday)
    on a third."""
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["duty"] = {"after_hours": {
            "name": "After hours", "changeover": "08:00", "nobody": "voicemail:101", "on_fail": "voicemail:101",
            "roster": [{"weekdays": ["mon-thu"], "number": "+380671110001"},
                       {"weekdays": ["fri-sun"], "number": "+380671110002"},
                       {"dates": ["2026-03-11"], "number": "+380671110004"}]}}
        office.save(store, doc, "owner", "a duty roster")
    return panel_data


def saved(data_dir):
    with Store(data_dir) as store:
        return export_config(store), len(PanelTables(store).versions())


def day_cell(page: str, day: str) -> str:
    return page.split(f'id="duty-after_hours-{day}"')[1].split("</td>")[0]


def test_the_calendar_shows_a_date_entry_over_the_weekday_entry(owner, roster):
    page = owner.get(f"/duty/?start={START}").data.decode()
    assert "+380671110001" in day_cell(page, "2026-03-04"), "a Wednesday by the weekday entry"
    assert "+380671110004" in day_cell(page, "2026-03-11"), "the date entry beats the Wednesday"
    assert "by-date" in page.split('id="duty-after_hours-2026-03-11"')[1].split(">")[0], "a date entry is shaded"
    assert "by-date" not in page.split('id="duty-after_hours-2026-03-04"')[1].split(">")[0]
    assert "+380671110001" in day_cell(page, "2026-03-18")
    assert "+380671110002" in day_cell(page, "2026-03-13"), "Friday"
    assert 'id="duty-after_hours-2026-03-29"' in page and 'id="duty-after_hours-2026-03-30"' not in page
    roster_page = owner.get(f"{URL}?start={START}").data.decode()
    assert "+380671110004" in day_cell(roster_page, "2026-03-11")


def test_an_entry_in_any_usual_form_is_saved_normalised_and_shown(owner, roster):
    resp = post_form(owner, f"{URL}/entries", {"weekdays": "", "dates": "2026-03-20", "number": "067 111 00 09"},
                     page=URL)
    assert resp.status_code == 302
    with Store(roster) as store:
        entries = office.document(store)["routing"]["duty"]["after_hours"]["roster"]
        assert PanelTables(store).latest_version()["summary"] == "duty roster after_hours: +380671110009 added"
    assert entries[-1] == {"number": "+380671110009", "dates": ["2026-03-20"]}
    page = owner.get(f"/duty/?start={START}").data.decode()
    assert "+380671110009" in day_cell(page, "2026-03-20")
    assert "+380671110002" in day_cell(page, "2026-03-21")


def test_bad_entries_are_refused_next_to_their_field_and_nothing_is_saved(owner, roster):
    before = saved(roster)
    cases = [
        ({"weekdays": "mon-thu", "dates": "", "number": "101"}, "number"),
        ({"weekdays": "mon-thu", "dates": "", "number": "not a number"}, "number"),
        ({"weekdays": "monday-friday", "dates": "", "number": "0671110009"}, "weekdays"),
        ({"weekdays": "", "dates": "2026-02-30", "number": "0671110009"}, "dates"),
        ({"weekdays": "", "dates": "", "number": "0671110009"}, "weekdays"),
    ]
    for data, field in cases:
        resp = post_form(owner, f"{URL}/entries", data, page=URL)
        assert resp.status_code == 400, data
        assert f'id="{field}-error"' in resp.data.decode(), data
    assert saved(roster) == before


def test_remove_an_entry(owner, roster):
    resp = post_form(owner, f"{URL}/entries/2/delete", {}, page=URL)
    assert resp.status_code == 302
    page = owner.get(f"/duty/?start={START}").data.decode()
    assert "+380671110001" in day_cell(page, "2026-03-11"), "without the date entry, the weekday holds"
    assert post_form(owner, f"{URL}/entries/7/delete", {}, page=URL).status_code == 404


def test_settings_are_saved_and_bad_ones_refused_next_to_the_field(owner, roster):
    data = {"name": "Nights", "changeover": "09:30", "ring_time": "40", "confirm": "", "nobody": "hangup",
            "on_fail": "voicemail:102"}
    before = saved(roster)
    for bad, field in (({"changeover": "9.30"}, "changeover"), ({"ring_time": "2"}, "ring_time"),
                       ({"nobody": "group:nope"}, "nobody")):
        resp = post_form(owner, URL, {**data, **bad})
        assert resp.status_code == 400, bad
        assert f'id="{field}-error"' in resp.data.decode(), bad
    assert saved(roster) == before
    assert post_form(owner, URL, data).status_code == 302
    with Store(roster) as store:
        r = office.document(store)["routing"]["duty"]["after_hours"]
    assert (r["name"], r["changeover"], r["ring_time"], r["confirm"], r["nobody"], r["on_fail"]) == \
        ("Nights", "09:30", 40, False, "hangup", "voicemail:102")
    assert len(r["roster"]) == 3, "the entries stay"


def test_add_a_roster_and_delete_it(owner, panel_data):
    data = {"ident": "weekend", "name": "Weekend", "changeover": "08:00", "ring_time": "30", "confirm": "y",
            "nobody": "hangup", "on_fail": "voicemail:101"}
    resp = post_form(owner, "/duty/new", {**data, "ident": "bad id"})
    assert resp.status_code == 400 and 'id="ident-error"' in resp.data.decode()
    resp = post_form(owner, "/duty/new", data)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/duty/weekend")
    assert 'id="no-entries"' in owner.get("/duty/weekend").data.decode()
    assert post_form(owner, "/duty/weekend/delete", {}, page="/duty/").status_code == 302
    with Store(panel_data) as store:
        assert "weekend" not in (office.document(store)["routing"].get("duty") or {})


def test_deleting_a_roster_a_call_uses_is_refused(owner, roster):
    with Store(roster) as store:
        doc = office.document(store)
        doc["routing"]["unmatched"] = "duty:after_hours"
        office.save(store, doc, "owner", "calls to the duty mobile")
    before = saved(roster)
    resp = post_form(owner, f"{URL}/delete", {}, page="/duty/")
    assert resp.status_code == 400
    assert "duty:after_hours" in resp.data.decode().split('id="duty-error"')[1][:400]
    assert saved(roster) == before
