"""The IVR menus page: settings, options added, changed and removed, menus nested and deleted,
each saved whole through the validator."""

from __future__ import annotations

import re
import wave

from appliance.routing.config import parse
from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office

SETTINGS = {
    "name": "Main menu", "prompt": "welcome", "timeout": "5", "inter_digit": "2", "retries": "2",
    "invalid_prompt": "", "timeout_prompt": "", "on_timeout": "group:office", "on_invalid": "hangup",
    "direct_dial": "off",
}


def wav(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)


def parsed(data_dir):
    """The saved routing as the routing core reads it."""
    with Store(data_dir) as store:
        doc = office.document(store)
    return parse(doc["routing"], {str(e["number"]): e["name"] for e in doc["extensions"]})


def versions(data_dir) -> list[dict]:
    with Store(data_dir) as store:
        return PanelTables(store).versions()


def add_menu(data_dir, mid: str = "main", reached: bool = True, **extra) -> None:
    """A menu saved directly; `reached`: calls that match no route go to it."""
    wav(data_dir / "prompts" / "welcome.wav")
    with Store(data_dir) as store:
        doc = office.document(store)
        doc["routing"].setdefault("menus", {})[mid] = {
            "name": mid.title(), "prompt": "welcome", "options": {"1": "group:office", "2": "101"},
            "on_fail": "hangup", **extra}
        if reached:
            doc["routing"]["unmatched"] = f"menu:{mid}"
        office.save(store, doc, "owner", f"test menu {mid}")


def test_a_menu_is_added_with_its_first_option_and_the_preview_follows_a_call(owner, panel_data):
    wav(panel_data / "prompts" / "welcome.wav")
    page = owner.get("/menus/add").data.decode()
    assert 'id="route-preview"' in page and 'value="welcome"' in page
    resp = post_form(owner, "/menus/add", {**SETTINGS, "ident": "main", "first_key": "1",
                                           "first_to": "group:office"})
    assert resp.status_code == 302, resp.data.decode()[:3000]
    mn = parsed(panel_data).menus["main"]
    assert (mn.name, mn.prompt, dict(mn.options)) == ("Main menu", "welcome", {"1": "group:office"})
    assert (mn.on_timeout, mn.on_invalid, mn.direct_dial) == ("group:office", "hangup", False)
    assert versions(panel_data)[0]["summary"] == "added menu main"
    after = owner.get(resp.headers["Location"]).data.decode()
    assert 'id="preview-steps"' in after and 'id="option-row-1"' in after


def test_a_wrong_key_or_no_prompt_is_shown_next_to_its_field_and_nothing_is_saved(owner, panel_data):
    resp = post_form(owner, "/menus/add", {**SETTINGS, "prompt": "", "ident": "main", "first_key": "12345",
                                           "first_to": "group:office"})
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="first_key-error"' in page and 'id="prompt-error"' in page
    assert not parsed(panel_data).menus and versions(panel_data) == []


def test_a_first_option_leading_nowhere_is_refused_with_the_validators_reason(owner, panel_data):
    wav(panel_data / "prompts" / "welcome.wav")
    resp = post_form(owner, "/menus/add", {**SETTINGS, "ident": "main", "first_key": "1", "first_to": "group:gone"})
    assert resp.status_code == 400
    error = re.search(r'id="first_to-error">([^<]*)<', resp.data.decode())
    assert error and "group:gone: no such destination" in error.group(1)
    assert not parsed(panel_data).menus and versions(panel_data) == []


def test_options_are_added_changed_and_removed(owner, panel_data):
    add_menu(panel_data)
    add_menu(panel_data, "sales", reached=False)
    resp = post_form(owner, "/menus/main/options", {"key": "3#", "destination": "menu:sales"}, page="/menus/main")
    assert resp.status_code == 302, resp.data.decode()[:3000]
    assert parsed(panel_data).menus["main"].options["3#"] == "menu:sales", "a nested menu"
    assert versions(panel_data)[0]["summary"] == "menu main: added option 3#"
    page = owner.get("/menus/main").data.decode()
    assert 'id="option-row-3hash"' in page and 'id="option-3hash-remove"' in page
    resp = post_form(owner, "/menus/main/option", {"key": "2", "destination": "voicemail:102", "action": "save"},
                     page="/menus/main")
    assert resp.status_code == 302
    assert parsed(panel_data).menus["main"].options["2"] == "voicemail:102"
    resp = post_form(owner, "/menus/main/option", {"key": "1", "destination": "group:office", "action": "remove"},
                     page="/menus/main")
    assert resp.status_code == 302
    assert dict(parsed(panel_data).menus["main"].options) == {"2": "voicemail:102", "3#": "menu:sales"}
    assert versions(panel_data)[0]["summary"] == "menu main: removed option 1"


def test_a_bad_or_taken_key_is_refused_next_to_the_key(owner, panel_data):
    add_menu(panel_data)
    before = versions(panel_data)
    for key in ("12a", "1"):
        resp = post_form(owner, "/menus/main/options", {"key": key, "destination": "hangup"}, page="/menus/main")
        assert resp.status_code == 400 and 'id="key-error"' in resp.data.decode()
    assert versions(panel_data) == before


def test_an_option_leading_nowhere_is_refused_with_the_way_a_call_gets_there(owner, panel_data):
    add_menu(panel_data)
    before = versions(panel_data)
    resp = post_form(owner, "/menus/main/options", {"key": "4", "destination": "group:salse"}, page="/menus/main")
    assert resp.status_code == 400
    error = re.search(r'id="destination-error">([^<]*)<', resp.data.decode())
    assert error and "calls that match no route → menu &#39;Main&#39; → option 4 → group:salse: no such destination" \
        in error.group(1)
    resp = post_form(owner, "/menus/main/option", {"key": "2", "destination": "queue:none", "action": "save"},
                     page="/menus/main")
    assert resp.status_code == 400
    assert re.search(r'id="option-2-destination-error">[^<]*option 2 → queue:none: no such destination',
                     resp.data.decode())
    assert versions(panel_data) == before
    assert "4" not in parsed(panel_data).menus["main"].options


def test_removing_the_last_way_out_of_a_menu_is_refused(owner, panel_data):
    add_menu(panel_data, options={"1": "group:office"})
    before = versions(panel_data)
    resp = post_form(owner, "/menus/main/option", {"key": "1", "destination": "group:office", "action": "remove"},
                     page="/menus/main")
    assert resp.status_code == 400
    assert re.search(r'id="option-1-destination-error">[^<]*has no options and no direct dial', resp.data.decode())
    assert versions(panel_data) == before


def test_settings_are_changed_and_wrong_ones_refused_next_to_their_field(owner, panel_data):
    add_menu(panel_data)
    wav(panel_data / "prompts" / "sorry.wav")
    before = versions(panel_data)
    for bad, field in (({"timeout": "0"}, "timeout"), ({"direct_dial": "list"}, "direct_list"),
                       ({"name": ""}, "name")):
        resp = post_form(owner, "/menus/main", {**SETTINGS, **bad})
        assert resp.status_code == 400 and f'id="{field}-error"' in resp.data.decode(), field
    assert versions(panel_data) == before
    resp = post_form(owner, "/menus/main", {**SETTINGS, "retries": "3", "invalid_prompt": "sorry",
                                            "direct_dial": "list", "direct_list": ["101", "103"]})
    assert resp.status_code == 302, resp.data.decode()[:3000]
    mn = parsed(panel_data).menus["main"]
    assert (mn.retries, mn.invalid_prompt, mn.direct_dial) == (3, "sorry", ("101", "103"))
    assert dict(mn.options) == {"1": "group:office", "2": "ext:101"}, "options stay as they were"
    assert versions(panel_data)[0]["summary"] == "changed menu main"


def test_the_prompt_select_lists_a_recording_dropped_into_the_prompts_folder(owner, panel_data):
    add_menu(panel_data)
    page = owner.get("/menus/main").data.decode()
    assert 'value="greeting-2026"' not in page
    wav(panel_data / "prompts" / "greeting-2026.wav")
    page = owner.get("/menus/main").data.decode()
    select = re.search(r'<select[^>]*id="prompt".*?</select>', page, re.S).group(0)
    assert 'value="greeting-2026"' in select and 'selected value="welcome"' in select
    resp = post_form(owner, "/menus/main", {**SETTINGS, "prompt": "greeting-2026"})
    assert resp.status_code == 302
    assert parsed(panel_data).menus["main"].prompt == "greeting-2026"


def test_deleting_a_menu_a_route_uses_is_refused_and_an_unused_one_is_deleted(owner, panel_data):
    add_menu(panel_data)
    add_menu(panel_data, "spare", reached=False)
    before = versions(panel_data)
    resp = post_form(owner, "/menus/main/delete", {}, page="/menus/")
    assert resp.status_code == 400
    error = re.search(r'id="delete-error">([^<]*)<', resp.data.decode())
    assert error and "menu:main: no such destination" in error.group(1)
    assert "main" in parsed(panel_data).menus and versions(panel_data) == before
    resp = post_form(owner, "/menus/spare/delete", {}, page="/menus/")
    assert resp.status_code == 302
    assert "spare" not in parsed(panel_data).menus
    assert versions(panel_data)[0]["summary"] == "deleted menu spare"


def test_direct_dial_is_explained_next_to_the_choice(owner, panel_data):
    add_menu(panel_data)
    page = owner.get("/menus/main").data.decode()
    assert re.search(r'id="direct_dial".*?<small class="hint">[^<]+', page, re.S)
    assert 'type="radio"' in page and 'id="menus"' not in page
    assert 'id="menu-main"' in owner.get("/menus/").data.decode()
