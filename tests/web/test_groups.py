"""Hunt groups through the panel: a group with three members added in one post, members put in
order one move at a time, and the validator's refusals shown next to the field with nothing saved."""

from __future__ import annotations

from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office

SETTINGS = {"name": "Sales", "strategy": "linear", "ring_time": "15", "rounds": "2", "widen_after": "15",
            "wrapup": "0", "max_calls": "1", "skip_busy": "y", "skip_dnd": "y", "skip_unregistered": "y",
            "confirm": "y", "on_fail": "voicemail:101", "on_no_answer": "", "on_busy": "",
            "on_unavailable": "", "on_failure": ""}


def groups(data_dir) -> dict:
    with Store(data_dir) as store:
        return office.document(store)["routing"].get("groups") or {}


def versions(data_dir) -> int:
    with Store(data_dir) as store:
        return len(PanelTables(store).versions())


def targets(group: dict) -> list[str]:
    return [str(m["ext"] if isinstance(m, dict) and "ext" in m else m.get("number") if isinstance(m, dict) else m)
            for m in group["members"]]


def add_sales(owner, **fields):
    data = {**SETTINGS, "ident": "sales", "extensions": ["101", "102", "103"], "externals": "", **fields}
    return post_form(owner, "/groups/new", data)


def member_post(owner, index: int, action: str, target: str):
    return post_form(owner, f"/groups/sales/members/{index}/{action}", {"target": target}, page="/groups/sales/edit")


def test_a_group_with_three_members_is_added_in_one_post_and_offered_to_a_route(owner, panel_data):
    before = versions(panel_data)
    page = owner.get("/groups/new").data.decode()
    assert 'id="extensions-101"' in page and 'id="strategy-help-tiers"' in page
    assert '<option selected value="hangup">' in page
    resp = add_sales(owner, externals="0671234567\n")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/groups/sales/edit")
    sales = groups(panel_data)["sales"]
    assert targets(sales) == ["101", "102", "103", "+380671234567"]
    assert sales["strategy"] == "linear" and sales["ring_time"] == 15 and sales["rounds"] == 2
    assert sales["on_fail"] == "voicemail:101"
    assert versions(panel_data) > before
    page = owner.get(resp.headers["Location"]).data.decode()
    assert 'id="group-unreached"' in page
    assert 'href="/routes/new?to=group:sales"' in page and 'href="/routes/?unmatched=group:sales"' in page
    assert 'id="route-preview"' in page


def test_a_new_group_with_a_bad_id_or_no_members_is_refused_next_to_the_field(owner, panel_data):
    before = versions(panel_data)
    for ident in ("sa les", "sa:les", "office", ""):
        resp = add_sales(owner, ident=ident)
        assert resp.status_code == 400, ident
        assert 'id="ident-error"' in resp.data.decode()
    resp = add_sales(owner, extensions=[])
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="extensions-error"' in page and "has no members" in page
    resp = add_sales(owner, ring_time="0")
    assert resp.status_code == 400 and 'id="ring_time-error"' in resp.data.decode()
    resp = add_sales(owner, externals="not a number")
    assert resp.status_code == 400 and 'id="externals-error"' in resp.data.decode()
    assert "sales" not in groups(panel_data) and versions(panel_data) == before


def test_members_move_up_and_down_and_are_removed_one_post_at_a_time(owner, panel_data):
    add_sales(owner)
    assert member_post(owner, 0, "down", "101").status_code == 302
    assert targets(groups(panel_data)["sales"]) == ["102", "101", "103"]
    assert member_post(owner, 2, "up", "103").status_code == 302
    assert targets(groups(panel_data)["sales"]) == ["102", "103", "101"]
    before = versions(panel_data)
    assert member_post(owner, 1, "remove", "103").status_code == 302
    assert targets(groups(panel_data)["sales"]) == ["102", "101"]
    assert versions(panel_data) == before + 1
    page = owner.get("/groups/sales/edit").data.decode()
    assert page.index('id="member-0"') < page.index("102 Extension 102") < page.index("101 Extension 101")


def test_a_move_of_a_member_the_page_no_longer_shows_saves_nothing(owner, panel_data):
    add_sales(owner)
    before = versions(panel_data)
    resp = member_post(owner, 0, "down", "103")
    assert resp.status_code == 409 and 'id="members-error"' in resp.data.decode()
    assert targets(groups(panel_data)["sales"]) == ["101", "102", "103"] and versions(panel_data) == before


def test_removing_the_last_member_of_a_group_calls_reach_is_refused_with_the_way_calls_get_there(owner, panel_data):
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["groups"]["office"]["members"] = ["101"]
        office.save(store, doc, "owner", "one member")
    before = versions(panel_data)
    resp = post_form(owner, "/groups/office/members/0/remove", {"target": "101"}, page="/groups/office/edit")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="members-error"' in page and "calls that match no route" in page and "has no members" in page
    assert targets(groups(panel_data)["office"]) == ["101"] and versions(panel_data) == before


def test_a_member_is_added_from_the_extensions_or_as_an_external_number(owner, panel_data):
    add_sales(owner, extensions=["101"])
    page = owner.get("/groups/sales/edit").data.decode()
    assert 'value="102"' in page and 'id="member-add-form"' in page
    resp = post_form(owner, "/groups/sales/members/add", {"new_extension": "102", "new_number": ""},
                     page="/groups/sales/edit")
    assert resp.status_code == 302
    resp = post_form(owner, "/groups/sales/members/add", {"new_extension": "", "new_number": "+380501112233"},
                     page="/groups/sales/edit")
    assert resp.status_code == 302
    assert targets(groups(panel_data)["sales"]) == ["101", "102", "+380501112233"]
    before = versions(panel_data)
    for data in ({"new_extension": "", "new_number": ""}, {"new_extension": "103", "new_number": "+380501112244"},
                 {"new_extension": "", "new_number": "12ab"}):
        resp = post_form(owner, "/groups/sales/members/add", data, page="/groups/sales/edit")
        assert resp.status_code == 400 and 'id="new_number-error"' in resp.data.decode(), data
    resp = post_form(owner, "/groups/sales/members/add", {"new_extension": "", "new_number": "+380501112233"},
                     page="/groups/sales/edit")
    assert resp.status_code == 400 and "is a member twice" in resp.data.decode()
    assert len(groups(panel_data)["sales"]["members"]) == 3 and versions(panel_data) == before


def test_the_settings_and_each_members_tier_are_saved_from_the_edit_form(owner, panel_data):
    add_sales(owner)
    data = {**SETTINGS, "strategy": "escalation", "on_busy": "hangup",
            "members-0-target": "101", "members-0-tier": "1", "members-0-ring_time": "",
            "members-1-target": "102", "members-1-tier": "2", "members-1-ring_time": "10",
            "members-2-target": "103", "members-2-tier": "2", "members-2-ring_time": ""}
    resp = post_form(owner, "/groups/sales/edit", data)
    assert resp.status_code == 302
    sales = groups(panel_data)["sales"]
    assert sales["strategy"] == "escalation"
    assert sales["on_busy"] == "hangup" and sales["on_no_answer"] == "voicemail:101"
    assert sales["members"][0] == {"ext": "101"}
    assert sales["members"][1] == {"ext": "102", "tier": 2, "ring_time": 10}
    before = versions(panel_data)
    resp = post_form(owner, "/groups/sales/edit", {**data, "members-1-tier": "0"})
    assert resp.status_code == 400 and 'id="members-1-tier-error"' in resp.data.decode()
    resp = post_form(owner, "/groups/sales/edit", {**data, "on_fail": ""})
    assert resp.status_code == 400 and 'id="on_fail-error"' in resp.data.decode()
    assert groups(panel_data)["sales"] == sales and versions(panel_data) == before


def test_an_exit_that_makes_a_loop_is_refused_next_to_it(owner, panel_data):
    add_sales(owner, on_fail="group:office")
    before = versions(panel_data)
    data = {**SETTINGS, "name": "Office", "strategy": "ringall", "on_fail": "group:sales",
            **{f"members-{i}-target": n for i, n in enumerate(("101", "102", "103"))}}
    resp = post_form(owner, "/groups/office/edit", data)
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="on_fail-error"' in page and "loop" in page
    assert groups(panel_data)["office"]["on_fail"] == "hangup" and versions(panel_data) == before


def test_deleting_a_group_a_route_uses_is_refused_and_an_unused_one_goes(owner, panel_data):
    add_sales(owner)
    before = versions(panel_data)
    resp = post_form(owner, "/groups/office/delete", {}, page="/groups/")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="groups-error"' in page and "calls that match no route" in page and "no such destination" in page
    assert "office" in groups(panel_data) and versions(panel_data) == before
    resp = post_form(owner, "/groups/sales/delete", {}, page="/groups/")
    assert resp.status_code == 302 and "sales" not in groups(panel_data)


def test_the_list_shows_each_group_and_the_preview(owner, panel_data):
    add_sales(owner)
    page = owner.get("/groups/?caller=0671234567&dialled=0441234567").data.decode()
    assert 'id="group-office"' in page and 'id="group-sales"' in page
    assert 'id="preview-steps"' in page and "Office" in page
    assert owner.get("/groups/nope/edit").status_code == 404
