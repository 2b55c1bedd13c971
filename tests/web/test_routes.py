"""Inbound routes through the panel: the ordered list, the unmatched destination, and the
validator's refusals shown next to the field with nothing saved."""

from __future__ import annotations

import re

from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office


def routing(data_dir) -> dict:
    with Store(data_dir) as store:
        return office.document(store)["routing"]


def versions(data_dir) -> int:
    with Store(data_dir) as store:
        return len(PanelTables(store).versions())


def steps(page: str) -> str:
    """The preview's steps on a page."""
    start = page.index('id="preview-steps"')
    return page[start:page.index("</ol>", start)]


def add_route(owner, **fields):
    data = {"name": "Shop", "numbers": "", "callers": "", "to": "group:office", **fields}
    return post_form(owner, "/routes/new", data)


def test_the_list_shows_routes_unmatched_and_the_preview(owner):
    page = owner.get("/routes/").data.decode()
    assert 'id="unmatched-form"' in page and 'name="unmatched"' in page
    assert 'id="route-preview"' in page
    assert re.search(r'<option selected value="group:office">', page)


def test_a_route_is_added_with_its_numbers_callers_and_destination(owner, panel_data):
    before = versions(panel_data)
    page = owner.get("/routes/new").data.decode()
    assert 'id="route-form"' in page
    resp = add_route(owner, numbers="0441234567\n\n+380441234568", callers="067*\nanonymous", to="101")
    assert resp.status_code == 302
    route = routing(panel_data)["routes"][0]
    assert route["name"] == "Shop" and route["numbers"] == ["+380441234567", "+380441234568"]
    assert route["callers"] == ["+38067*", "anonymous"] and route["to"] == "ext:101"
    assert versions(panel_data) > before
    page = owner.get("/routes/").data.decode()
    assert 'id="route-0"' in page and "+380441234567" in page


def test_a_route_with_a_bad_line_or_no_name_is_refused_next_to_the_field(owner, panel_data):
    before = versions(panel_data)
    for fields, field in (({"numbers": "0441234567\nshop"}, "numbers"), ({"callers": "067?"}, "callers"),
                          ({"name": ""}, "name"), ({"to": ""}, "to"), ({"to": "group:nope"}, "to")):
        resp = add_route(owner, **fields)
        assert resp.status_code == 400, fields
        assert f'id="{field}-error"' in resp.data.decode(), fields
    page = add_route(owner, numbers="0441234567\nshop").data.decode()
    assert re.search(r'id="numbers-error">[^<]*2[^<]*shop', page)
    assert not routing(panel_data).get("routes") and versions(panel_data) == before


def test_a_route_hidden_behind_one_that_takes_every_call_is_refused(owner, panel_data):
    assert add_route(owner, name="Everything").status_code == 302
    before = versions(panel_data)
    resp = add_route(owner, name="Shop", numbers="0441234567")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="numbers-error"' in page and "can never take a call" in page and "Everything" in page
    assert [r["name"] for r in routing(panel_data)["routes"]] == ["Everything"] and versions(panel_data) == before


def test_routes_move_up_and_down_but_never_behind_a_catch_all(owner, panel_data):
    add_route(owner, name="A", numbers="0441234567")
    add_route(owner, name="B", callers="067*")
    add_route(owner, name="C")
    resp = post_form(owner, "/routes/1/up", {}, page="/routes/")
    assert resp.status_code == 302
    assert [r["name"] for r in routing(panel_data)["routes"]] == ["B", "A", "C"]
    assert post_form(owner, "/routes/0/down", {}, page="/routes/").status_code == 302
    assert [r["name"] for r in routing(panel_data)["routes"]] == ["A", "B", "C"]
    before = versions(panel_data)
    resp = post_form(owner, "/routes/2/up", {}, page="/routes/")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="routes-error"' in page and "can never take a call" in page
    assert [r["name"] for r in routing(panel_data)["routes"]] == ["A", "B", "C"] and versions(panel_data) == before


def test_a_route_is_edited_and_deleted(owner, panel_data):
    add_route(owner, name="A", numbers="0441234567")
    page = owner.get("/routes/0/edit").data.decode()
    assert "0441234567" in page or "+380441234567" in page
    resp = post_form(owner, "/routes/0/edit", {"name": "Shop Kyiv", "numbers": "0441234567", "callers": "",
                                                "to": "102"})
    assert resp.status_code == 302
    assert routing(panel_data)["routes"][0]["name"] == "Shop Kyiv" and routing(panel_data)["routes"][0]["to"] == "ext:102"
    resp = post_form(owner, "/routes/0/edit", {"name": "Shop Kyiv", "numbers": "", "callers": "abc", "to": "102"})
    assert resp.status_code == 400 and 'id="callers-error"' in resp.data.decode()
    assert routing(panel_data)["routes"][0]["numbers"] == ["+380441234567"]
    assert post_form(owner, "/routes/0/delete", {}, page="/routes/").status_code == 302
    assert not routing(panel_data)["routes"]
    assert owner.get("/routes/5/edit").status_code == 404


def test_deleting_the_route_that_takes_every_call_is_refused_when_nothing_else_would(owner, panel_data):
    add_route(owner, name="Everything")
    assert post_form(owner, "/routes/unmatched", {"unmatched": ""}, page="/routes/").status_code == 302
    assert "unmatched" not in routing(panel_data)
    before = versions(panel_data)
    resp = post_form(owner, "/routes/0/delete", {}, page="/routes/")
    assert resp.status_code == 400 and "go nowhere" in resp.data.decode()
    assert len(routing(panel_data)["routes"]) == 1 and versions(panel_data) == before


def test_the_unmatched_destination_is_changed_on_the_list_page(owner, panel_data):
    resp = post_form(owner, "/routes/unmatched", {"unmatched": "voicemail:101"}, page="/routes/")
    assert resp.status_code == 302 and routing(panel_data)["unmatched"] == "voicemail:101"
    before = versions(panel_data)
    resp = post_form(owner, "/routes/unmatched", {"unmatched": ""}, page="/routes/")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="unmatched-error"' in page and "go nowhere" in page
    resp = post_form(owner, "/routes/unmatched", {"unmatched": "group:nope"}, page="/routes/")
    assert resp.status_code == 400 and 'id="unmatched-error"' in resp.data.decode()
    assert routing(panel_data)["unmatched"] == "voicemail:101" and versions(panel_data) == before


def test_a_route_to_a_new_group_is_traced_by_the_preview_after_the_save(owner, panel_data):
    resp = post_form(owner, "/groups/new", {
        "ident": "sales", "name": "Sales team", "strategy": "ringall", "extensions": ["101", "102", "103"],
        "ring_time": "20", "rounds": "1", "widen_after": "15", "wrapup": "0", "max_calls": "1",
        "on_fail": "hangup"})
    assert resp.status_code == 302
    page = owner.get("/routes/new?to=group:sales").data.decode()
    assert re.search(r'<option selected value="group:sales">', page)
    query = "?caller=0671234567&dialled=0441234567"
    assert "Sales team" not in steps(owner.get("/routes/" + query).data.decode())
    resp = post_form(owner, "/routes/new" + query, {"name": "Sales line", "numbers": "0441234567",
                                                    "callers": "", "to": "group:sales"}, page="/routes/new")
    assert resp.status_code == 302 and "caller=0671234567" in resp.headers["Location"]
    assert "Sales team" in steps(owner.get(resp.headers["Location"]).data.decode())


def test_unmatched_can_be_preselected_for_a_new_group(owner, panel_data):
    page = owner.get("/routes/?unmatched=voicemail:102").data.decode()
    assert re.search(r'<option selected value="voicemail:102">', page)
    assert routing(panel_data)["unmatched"] == "group:office"
