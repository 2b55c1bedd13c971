"""Settings: calls, time zone and missed-call rules saved whole; the owner's password changed."""

from __future__ import annotations

from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import OWNER_PASSWORD, log_in, post_form

GOOD = {"timezone": "Europe/Kyiv", "language": "en", "ringback": "tone", "confirm_seconds": "20",
        "confirm_key": "#", "transfer_ring_seconds": "", "voicemail_max": "120", "session_expires": "",
        "media_address": "", "trunk_public": "", "callback_seconds": "30", "short_abandon_seconds": "",
        "assign_to": "102", "deadline_minutes": "", "escalate_to": "", "working_hours": "",
        "auto_callback": "", "callback_attempts": "", "callback_spacing_minutes": "", "callback_anyone": "y"}


def settings_of(data_dir):
    with Store(data_dir) as store:
        return store.get_setting("engine"), store.get_setting("missed"), store.timezone


def test_calls_and_missed_rules_are_saved(owner, panel_data):
    resp = post_form(owner, "/settings/", GOOD)
    assert resp.status_code == 302
    calls, missed, tz = settings_of(panel_data)
    assert calls == {"language": "en", "ringback": "tone", "confirm_seconds": 20, "confirm_key": "#",
                     "voicemail_max": 120}
    assert missed == {"callback_seconds": 30, "assign_to": "102"}
    page = owner.get("/settings/").data.decode()
    assert 'value="20"' in page and 'value="120"' in page


def test_a_value_out_of_range_is_told_next_to_its_field_and_nothing_is_saved(owner, panel_data):
    before = settings_of(panel_data)
    resp = post_form(owner, "/settings/", {**GOOD, "confirm_seconds": "500"})
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="confirm_seconds-error"' in page and "3" in page
    assert settings_of(panel_data) == before
    assert PanelTables(Store(panel_data)).versions() == []


def test_a_bad_time_zone_and_address_are_refused_next_to_their_fields(owner, panel_data):
    before = settings_of(panel_data)
    resp = post_form(owner, "/settings/", {**GOOD, "timezone": "Europe/Atlantis"})
    assert resp.status_code == 400 and 'id="timezone-error"' in resp.data.decode()
    resp = post_form(owner, "/settings/", {**GOOD, "media_address": "192.168.1"})
    assert resp.status_code == 400 and 'id="media_address-error"' in resp.data.decode()
    resp = post_form(owner, "/settings/", {**GOOD, "voicemail_max": "many"})
    assert resp.status_code == 400 and 'id="voicemail_max-error"' in resp.data.decode()
    assert settings_of(panel_data) == before


def test_changing_the_owner_password_needs_the_current_one_and_ends_other_sessions(app, owner):
    other = app.test_client()
    log_in(other)
    assert other.get("/").status_code == 200
    resp = post_form(owner, "/settings/password",
                     {"current": "not-it", "password": "a-new-password-1", "confirm": "a-new-password-1"},
                     page="/settings/")
    assert resp.status_code == 400 and 'id="current-error"' in resp.data.decode()
    resp = post_form(owner, "/settings/password",
                     {"current": OWNER_PASSWORD, "password": "a-new-password-1", "confirm": "a-new-password-2"},
                     page="/settings/")
    assert resp.status_code == 400 and 'id="confirm-error"' in resp.data.decode()
    assert log_in(app.test_client(), OWNER_PASSWORD).status_code == 302, "a refused change keeps the old password"
    resp = post_form(owner, "/settings/password",
                     {"current": OWNER_PASSWORD, "password": "a-new-password-1", "confirm": "a-new-password-1"},
                     page="/settings/")
    assert resp.status_code == 302
    assert owner.get("/").status_code == 200, "the browser that changed it stays in"
    assert other.get("/").status_code == 302, "every other browser is logged out"
    assert log_in(app.test_client(), "a-new-password-1").status_code == 302


def test_escalation_of_missed_calls_is_set_and_checked(owner, panel_data):
    resp = post_form(owner, "/settings/", {**GOOD, "deadline_minutes": "60", "escalate_to": "103", "working_hours": ""})
    assert resp.status_code == 302
    assert settings_of(panel_data)[1] == {"callback_seconds": 30, "assign_to": "102", "deadline_minutes": 60,
                                          "escalate_to": "103"}
    before = settings_of(panel_data)
    resp = post_form(owner, "/settings/", {**GOOD, "deadline_minutes": "0", "escalate_to": "103"})
    assert resp.status_code == 400 and 'id="deadline_minutes-error"' in resp.data.decode()
    assert settings_of(panel_data) == before


def test_automatic_callbacks_are_set_and_checked_next_to_their_fields(owner, panel_data):
    resp = post_form(owner, "/settings/", {**GOOD, "auto_callback": "y", "callback_attempts": "5",
                                           "callback_spacing_minutes": "2.5", "callback_anyone": ""})
    assert resp.status_code == 302
    assert settings_of(panel_data)[1] == {"callback_seconds": 30, "assign_to": "102", "auto_callback": True,
                                          "callback_attempts": 5, "callback_spacing_minutes": 2.5,
                                          "callback_anyone": False}
    page = owner.get("/settings/").data.decode()
    assert 'id="auto_callback" name="auto_callback" type="checkbox" value="y"' in page and 'value="2.5"' in page
    before = settings_of(panel_data)
    for key, bad in (("callback_attempts", "11"), ("callback_spacing_minutes", "0"),
                     ("callback_spacing_minutes", "soon")):
        resp = post_form(owner, "/settings/", {**GOOD, "auto_callback": "y", key: bad})
        assert resp.status_code == 400 and f'id="{key}-error"' in resp.data.decode(), (key, bad)
    assert settings_of(panel_data) == before
    post_form(owner, "/settings/", {**GOOD, "callback_spacing_minutes": "10"})
    assert settings_of(panel_data)[1] == {"callback_seconds": 30, "assign_to": "102", "callback_spacing_minutes": 10}
