"""The schedules page: the week grid saved into the routing document, ranges and holidays refused next to
their field, a gap with nowhere to go refused by the validator, and nothing saved on a refusal."""

from __future__ import annotations

from appliance.configfile import export_config
from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office

WEEK = {"mon": "09:00-13:00, 14:00-18:00", "tue": "09:00-18:00", "wed": "09:00-18:00", "thu": "09:00-18:00",
        "fri": "22:00-06:00", "sat": "", "sun": ""}


def form(**changes) -> dict:
    data = {"ident": "hours", "name": "Office hours", **WEEK, "holidays": "01-01\n2026-06-09",
            "timezone": "Europe/Kyiv", "open": "group:office", "closed": "voicemail:101"}
    data.update(changes)
    return data


def saved(data_dir):
    with Store(data_dir) as store:
        return export_config(store), len(PanelTables(store).versions())


def add(owner, **changes):
    return post_form(owner, "/schedules/new", form(**changes))


def route_to_schedule(data_dir):
    """Send unmatched calls to schedule:hours, so the schedule is on a call's way."""
    with Store(data_dir) as store:
        doc = office.document(store)
        doc["routing"]["unmatched"] = "schedule:hours"
        office.save(store, doc, "owner", "calls go through the schedule")


def test_the_week_grid_round_trips_into_the_routing_document(owner, panel_data):
    resp = add(owner)
    assert resp.status_code == 302, resp.data.decode()[:2000]
    assert "/schedules/hours" in resp.headers["Location"] and "caller=" in resp.headers["Location"]
    with Store(panel_data) as store:
        sched = office.document(store)["routing"]["schedules"]["hours"]
        assert PanelTables(store).latest_version()["summary"] == "schedule hours saved"
    assert sched["hours"] == {"mon": ["09:00-13:00", "14:00-18:00"], "tue": ["09:00-18:00"],
                              "wed": ["09:00-18:00"], "thu": ["09:00-18:00"], "fri": ["22:00-06:00"]}
    assert sched["holidays"] == ["01-01", "2026-06-09"]
    assert (sched["open"], sched["closed"], sched["timezone"]) == ("group:office", "voicemail:101", "Europe/Kyiv")

    page = owner.get(resp.headers["Location"]).data.decode()
    assert 'value="09:00-13:00, 14:00-18:00"' in page and 'value="22:00-06:00"' in page
    assert 'id="preview-steps"' in page, "the route preview runs after saving"
    assert "2026-06-09" in page

    grid = owner.get("/schedules/").data.decode()
    assert 'id="week-hours"' in grid
    monday = grid.split('id="week-hours-0"')[1].split("</tr>")[0]
    cells = monday.split("<td ")[1:]
    assert [c.split('"')[1] for c in cells[8:20]] == ["shut"] + ["open"] * 4 + ["shut"] + ["open"] * 4 + ["shut"] * 2
    saturday = grid.split('id="week-hours-5"')[1].split("</tr>")[0]
    assert [c.split('"')[1] for c in saturday.split("<td ")[1:]][:7] == ["open"] * 6 + ["shut"], \
        "Friday's night range shades Saturday morning"


def test_edit_changes_one_day_and_keeps_the_rest(owner, panel_data):
    add(owner)
    resp = post_form(owner, "/schedules/hours", form(sat="10:00-14:00", tue="", ident=""))
    assert resp.status_code == 302
    with Store(panel_data) as store:
        hours = office.document(store)["routing"]["schedules"]["hours"]["hours"]
    assert hours["sat"] == ["10:00-14:00"] and "tue" not in hours and hours["fri"] == ["22:00-06:00"]


def test_a_bad_range_is_shown_next_to_its_day_and_nothing_is_saved(owner, panel_data):
    before = saved(panel_data)
    resp = add(owner, wed="09:00-18:00, 25:00-26:00", thu="nine to six")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="wed-error"' in page and "25:00-26:00" in page.split('id="wed-error"')[1][:200]
    assert 'id="thu-error"' in page
    assert 'id="mon-error"' not in page
    assert saved(panel_data) == before


def test_a_bad_holiday_is_shown_next_to_the_holidays(owner, panel_data):
    before = saved(panel_data)
    resp = add(owner, holidays="01-01\n02-30")
    assert resp.status_code == 400
    assert "02-30" in resp.data.decode().split('id="holidays-error"')[1][:200]
    assert saved(panel_data) == before


def test_a_gap_without_closed_is_refused_with_the_validators_reason(owner, panel_data):
    add(owner)
    route_to_schedule(panel_data)
    before = saved(panel_data)
    resp = post_form(owner, "/schedules/hours", form(closed="", ident=""))
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="closed-error"' in page
    message = page.split('id="closed-error"')[1][:300]
    assert "nowhere to go" in message and "Sat 06:00" in message
    assert saved(panel_data) == before


def test_a_whole_week_needs_no_closed(owner, panel_data):
    resp = add(owner, closed="", holidays="", **{d: "00:00-24:00" for d in WEEK})
    assert resp.status_code == 302
    with Store(panel_data) as store:
        assert "closed" not in office.document(store)["routing"]["schedules"]["hours"]


def test_a_bad_timezone_and_a_taken_id_are_refused_next_to_their_fields(owner, panel_data):
    add(owner)
    before = saved(panel_data)
    resp = add(owner)
    assert resp.status_code == 400 and 'id="ident-error"' in resp.data.decode()
    resp = add(owner, ident="late", timezone="Mars/Olympus")
    assert resp.status_code == 400
    assert "Mars/Olympus" in resp.data.decode().split('id="timezone-error"')[1][:200]
    resp = add(owner, ident="two words")
    assert resp.status_code == 400 and 'id="ident-error"' in resp.data.decode()
    assert saved(panel_data) == before


def test_delete_is_refused_while_a_route_uses_the_schedule_and_works_after(owner, panel_data):
    add(owner)
    route_to_schedule(panel_data)
    before = saved(panel_data)
    resp = post_form(owner, "/schedules/hours/delete", {}, page="/schedules/")
    assert resp.status_code == 400
    assert "schedule:hours" in resp.data.decode().split('id="schedules-error"')[1][:400]
    assert saved(panel_data) == before
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["unmatched"] = "group:office"
        office.save(store, doc, "owner", "straight to the office")
    resp = post_form(owner, "/schedules/hours/delete", {}, page="/schedules/")
    assert resp.status_code == 302
    with Store(panel_data) as store:
        assert "hours" not in (office.document(store)["routing"].get("schedules") or {})


def test_pages_answer_in_both_languages_and_unknown_schedules_are_404(owner):
    assert owner.get("/schedules/").status_code == 200
    assert "Розклади" in owner.get("/schedules/").data.decode()
    assert owner.get("/schedules/new").status_code == 200
    assert owner.get("/schedules/nope").status_code == 404
