"""The queues page: add, change, reorder and delete queues through the whole-document validator."""

from __future__ import annotations

import re
import wave

from appliance.routing.config import parse
from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office

VALID = {
    "ident": "support", "name": "Support", "members": ["101", "102"], "strategy": "longest_idle",
    "ring_time": "15", "retry": "5", "wrapup": "10", "music": "default", "greeting": "",
    "announce_position": "y", "announce_wait": "y", "announce_every": "30", "vip_first": "y",
    "max_wait": "120", "on_no_answer": "voicemail:101", "on_unavailable": "group:office",
    "exit_key": "", "exit_to": "", "callback_key": "1",
}


def saved(data_dir) -> tuple[dict, list]:
    """The saved routing section and the versions, newest first."""
    with Store(data_dir) as store:
        return office.document(store)["routing"], PanelTables(store).versions()


def parsed(data_dir):
    """The saved routing as the routing core reads it."""
    with Store(data_dir) as store:
        doc = office.document(store)
    return parse(doc["routing"], {str(e["number"]): e["name"] for e in doc["extensions"]})


def add_queue(data_dir, qid: str = "support", **extra) -> None:
    with Store(data_dir) as store:
        doc = office.document(store)
        doc["routing"].setdefault("queues", {})[qid] = {
            "name": qid.title(), "members": ["101", {"ext": "102", "tier": 2}, "103"], "widen_after": 20,
            "on_fail": "hangup", **extra}
        office.save(store, doc, "owner", f"test queue {qid}")


def wav(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)


def test_a_queue_is_added_with_several_agents_at_once_and_the_page_shows_the_preview(owner, panel_data):
    page = owner.get("/queues/add").data.decode()
    assert 'type="checkbox"' in page and 'value="103"' in page and 'id="route-preview"' in page
    resp = post_form(owner, "/queues/add", VALID)
    assert resp.status_code == 302, resp.data.decode()[:2000]
    versions = saved(panel_data)[1]
    q = parsed(panel_data).queues["support"]
    assert [m.target for m in q.members] == ["101", "102"] and q.max_wait == 120 and q.announce_every == 30
    assert q.exits.no_answer == "voicemail:101" and q.exits.unavailable == "group:office"
    assert q.exits.busy == "voicemail:101" and q.availability.wrapup == 10
    assert q.callback is False and q.exit_key is None and q.greeting is None
    assert versions[0]["summary"] == "added queue support"
    after = owner.get(resp.headers["Location"]).data.decode()
    assert 'id="route-preview"' in after and 'id="preview-steps"' in after
    assert 'id="queue-support"' in owner.get("/queues/").data.decode()


def test_a_wrong_number_or_id_is_shown_next_to_its_field_and_nothing_is_saved(owner, panel_data):
    resp = post_form(owner, "/queues/add", {**VALID, "ring_time": "0", "ident": "two words"})
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="ring_time-error"' in page and 'id="ident-error"' in page
    routing, versions = saved(panel_data)
    assert not routing.get("queues") and versions == []


def test_a_queue_without_agents_is_refused_with_the_validators_reason(owner, panel_data):
    resp = post_form(owner, "/queues/add", {**VALID, "members": []})
    assert resp.status_code == 400
    page = resp.data.decode()
    error = re.search(r'id="members-error">([^<]*)<', page)
    assert error and "has no members" in error.group(1)
    routing, versions = saved(panel_data)
    assert not routing.get("queues") and versions == []


def test_an_existing_id_is_refused(owner, panel_data):
    add_queue(panel_data)
    resp = post_form(owner, "/queues/add", VALID)
    assert resp.status_code == 400 and 'id="ident-error"' in resp.data.decode()
    assert len(saved(panel_data)[1]) == 2  # the first change's "before" version and the test's own


def test_editing_keeps_what_the_form_does_not_show(owner, panel_data):
    add_queue(panel_data)
    page = owner.get("/queues/support").data.decode()
    assert 'id="member-order"' in page and 'selected value="longest_idle"' in page
    data = {k: v for k, v in VALID.items() if k != "ident"}
    data.update(members=["102", "103"], strategy="linear", exit_key="0", exit_to="voicemail:102",
                callback="y", callback_key="5", greeting="")
    resp = post_form(owner, "/queues/support", data)
    assert resp.status_code == 302, resp.data.decode()[:3000]
    versions = saved(panel_data)[1]
    q = parsed(panel_data).queues["support"]
    assert [(m.target, m.tier) for m in q.members] == [("102", 2), ("103", 1)], "kept members keep their tier"
    assert q.widen_after == 20 and q.strategy == "linear"
    assert (q.exit_key, q.exit_to, q.callback, q.callback_key) == ("0", "voicemail:102", True, "5")
    assert versions[0]["summary"] == "changed queue support"


def test_the_same_key_for_exit_and_call_back_is_refused_next_to_the_call_back_key(owner, panel_data):
    add_queue(panel_data)
    data = {k: v for k, v in VALID.items() if k != "ident"}
    data.update(exit_key="1", exit_to="voicemail:101", callback="y", callback_key="1")
    resp = post_form(owner, "/queues/support", data)
    assert resp.status_code == 400
    assert re.search(r'id="callback_key-error">[^<]*same key', resp.data.decode())
    routing, versions = saved(panel_data)
    assert "exit_key" not in routing["queues"]["support"] and len(versions) == 2


def test_an_exit_key_without_a_destination_is_refused_next_to_the_destination(owner, panel_data):
    add_queue(panel_data)
    data = {k: v for k, v in VALID.items() if k != "ident"}
    data.update(exit_key="9", exit_to="")
    resp = post_form(owner, "/queues/support", data)
    assert resp.status_code == 400 and 'id="exit_to-error"' in resp.data.decode()
    assert len(saved(panel_data)[1]) == 2


def test_agents_move_up_and_down(owner, panel_data):
    add_queue(panel_data)
    resp = post_form(owner, "/queues/support/move", {"member": "2", "direction": "up"}, page="/queues/support")
    assert resp.status_code == 302
    versions = saved(panel_data)[1]
    assert [m.target for m in parsed(panel_data).queues["support"].members] == ["101", "103", "102"]
    assert versions[0]["summary"] == "reordered queue support"
    resp = post_form(owner, "/queues/support/move", {"member": "0", "direction": "up"}, page="/queues/support")
    assert resp.status_code == 400


def test_deleting_a_queue_a_route_uses_is_refused_and_an_unused_one_is_deleted(owner, panel_data):
    add_queue(panel_data)
    add_queue(panel_data, "spare")
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["unmatched"] = "queue:support"
        office.save(store, doc, "owner", "calls to the queue")
    before = saved(panel_data)[1]
    resp = post_form(owner, "/queues/support/delete", {}, page="/queues/")
    assert resp.status_code == 400
    error = re.search(r'id="delete-error">([^<]*)<', resp.data.decode())
    assert error and "queue:support: no such destination" in error.group(1)
    routing, versions = saved(panel_data)
    assert "support" in routing["queues"] and versions == before
    resp = post_form(owner, "/queues/spare/delete", {}, page="/queues/")
    assert resp.status_code == 302
    routing, versions = saved(panel_data)
    assert "spare" not in routing["queues"] and versions[0]["summary"] == "deleted queue spare"


def test_music_and_greeting_offer_the_sound_files_present(owner, panel_data):
    wav(panel_data / "music" / "jazz.wav")
    wav(panel_data / "prompts" / "welcome-support.wav")
    page = owner.get("/queues/add").data.decode()
    music = re.search(r'<select[^>]*id="music".*?</select>', page, re.S).group(0)
    greeting = re.search(r'<select[^>]*id="greeting".*?</select>', page, re.S).group(0)
    assert 'value="default"' in music and 'value="jazz"' in music
    assert 'value="welcome-support"' in greeting
    resp = post_form(owner, "/queues/add", {**VALID, "music": "jazz", "greeting": "welcome-support"})
    assert resp.status_code == 302
    q = parsed(panel_data).queues["support"]
    assert (q.music, q.greeting) == ("jazz", "welcome-support")


def test_every_field_has_its_one_line_explanation(owner):
    page = owner.get("/queues/add").data.decode()
    for field in ("members", "strategy", "music", "announce_every", "vip_first", "max_wait", "on_no_answer",
                  "on_unavailable", "exit_key", "callback", "callback_key"):
        assert re.search(rf'id="{field}".*?<small class="hint">', page, re.S), field
    assert "VIP" in page
