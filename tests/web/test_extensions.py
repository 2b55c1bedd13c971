"""The extensions pages: list, add (with the password shown once), edit, a new password, remove."""

from __future__ import annotations

import re
import time

from appliance.sip.digest import ha1
from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office

NEW = {"number": "104", "name": "Warehouse", "rule_local": "y", "rule_mobile": "y", "max_outbound": "2"}


def versions(data_dir) -> int:
    with Store(data_dir) as store:
        return len(PanelTables(store).versions())


def extension(data_dir, number: str) -> dict | None:
    with Store(data_dir) as store:
        return store.extension(number)


def shown_password(page: str) -> str:
    m = re.search(r'id="setup-password">([^<]+)<', page)
    assert m, "the page shows no password"
    return m.group(1)


def test_the_list_shows_each_extension_and_where_it_is_registered_from(owner, panel_data):
    with Store(panel_data) as store:
        store.db["bindings"].insert({
            "extension": "102", "contact": "sip:102@192.168.1.50:5062", "source_host": "192.168.1.50",
            "source_port": 5062, "transport": "udp", "q": 1.0, "expires_at": time.time() + 600,
            "registered_at": time.time(), "user_agent": "Yealink T31P"})
    page = owner.get("/extensions/").data.decode()
    assert 'id="extension-101"' in page and 'id="extension-103"' in page
    row = re.search(r'id="extension-102">(.*?)</tr>', page, re.S).group(1)
    assert "192.168.1.50:5062" in row and "Yealink T31P" in row
    assert 'class="table-wrap"' in page


def test_adding_an_extension_shows_its_password_once_and_stores_only_digests(owner, panel_data):
    before = versions(panel_data)
    resp = post_form(owner, "/extensions/new", {**NEW, "rule_premium": "y", "dnd": "y"})
    assert resp.status_code == 200
    page = resp.data.decode()
    password = shown_password(page)
    assert len(password) == 12
    assert 'id="setup-user">104<' in page and 'id="setup-port">5060<' in page
    with Store(panel_data) as store:
        row = store.extension("104")
        assert row["name"] == "Warehouse" and row["dnd"] == 1 and row["max_outbound"] == 2
        assert row["ha1_md5"] == ha1("104", store.realm, password, "MD5")
        assert password not in office.dump_document(office.document(store))
        assert '"premium"' in row["dial_rules"] and '"international"' not in row["dial_rules"]
        assert 'id="setup-realm">' + store.realm in page
    assert versions(panel_data) == before + 2  # the "before the first change" version, and this one
    assert password not in owner.get("/extensions/104").data.decode()


def test_an_invalid_number_is_refused_next_to_the_field_and_nothing_is_saved(owner, panel_data):
    for bad in ("0104", "1", "1234567", "10a"):
        resp = post_form(owner, "/extensions/new", {**NEW, "number": bad}, page="/extensions/new")
        assert resp.status_code == 400, bad
        assert 'id="number-error"' in resp.data.decode()
    assert versions(panel_data) == 0
    assert extension(panel_data, "104") is None


def test_a_duplicate_number_is_refused_next_to_the_field(owner, panel_data):
    resp = post_form(owner, "/extensions/new", {**NEW, "number": "102"})
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="number-error"' in page and "listed twice" in page
    assert versions(panel_data) == 0
    assert extension(panel_data, "102")["name"] == "Extension 102"


def test_editing_changes_the_fields_and_keeps_the_password(owner, panel_data):
    old = extension(panel_data, "101")
    resp = post_form(owner, "/extensions/101", {"name": "Reception", "dnd": "y", "rule_local": "y",
                                                "rule_international": "y", "max_outbound": "4"})
    assert resp.status_code == 302
    new = extension(panel_data, "101")
    assert new["name"] == "Reception" and new["dnd"] == 1 and new["max_outbound"] == 4
    assert new["dial_rules"] == '["local", "international"]'
    assert new["ha1_md5"] == old["ha1_md5"]
    with Store(panel_data) as store:
        assert PanelTables(store).latest_version()["summary"] == "changed extension 101"


def test_an_invalid_edit_is_refused_next_to_its_field(owner, panel_data):
    resp = post_form(owner, "/extensions/101", {"name": "  ", "max_outbound": "11"})
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="name-error"' in page and 'id="max_outbound-error"' in page
    assert versions(panel_data) == 0
    assert extension(panel_data, "101")["name"] == "Extension 101"


def test_the_page_explains_each_dial_rule_and_warns_that_paid_lines_cost_money(owner):
    page = owner.get("/extensions/101", headers={"Accept-Language": "en"}).data.decode()
    for rule in ("local", "mobile", "international", "premium"):
        assert f'id="rule_{rule}"' in page
    assert "costs money" in page


def test_a_new_password_replaces_the_digests_and_is_shown_once(owner, panel_data):
    old = extension(panel_data, "102")
    resp = post_form(owner, "/extensions/102/password", {}, page="/extensions/102")
    assert resp.status_code == 200
    password = shown_password(resp.data.decode())
    with Store(panel_data) as store:
        new = store.extension("102")
        assert new["ha1_md5"] != old["ha1_md5"]
        assert new["ha1_sha256"] == ha1("102", store.realm, password, "SHA-256")


def test_removing_an_extension_a_group_uses_is_refused_with_the_reason(owner, panel_data):
    resp = post_form(owner, "/extensions/101/remove", {}, page="/extensions/101")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert "routing.groups.office.members" in page and "101 is not an extension" in page
    assert extension(panel_data, "101") is not None
    assert versions(panel_data) == 0


def test_removing_an_extension_nobody_uses(owner, panel_data):
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["groups"]["office"]["members"] = ["101", "102"]
        office.save(store, doc, "owner", "103 leaves the group")
    resp = post_form(owner, "/extensions/103/remove", {}, page="/extensions/103")
    assert resp.status_code == 302
    assert extension(panel_data, "103") is None
    with Store(panel_data) as store:
        assert PanelTables(store).latest_version()["summary"] == "removed extension 103"


def test_a_contact_that_names_the_extension_as_manager_keeps_it(owner, panel_data):
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["groups"]["office"]["members"] = ["101", "102"]
        doc["contacts"] = [{"number": "0671234567", "name": "Olena", "manager": "103"}]
        office.save(store, doc, "owner", "a contact of 103")
    resp = post_form(owner, "/extensions/103/remove", {}, page="/extensions/103")
    assert resp.status_code == 400
    assert "manager 103 is not an extension" in resp.data.decode()
    assert extension(panel_data, "103") is not None


def test_an_unknown_extension_is_not_found(owner):
    assert owner.get("/extensions/999").status_code == 404


def test_an_email_address_is_kept_and_a_bad_one_refused_next_to_its_field(owner, panel_data):
    base = {"name": "Reception", "rule_local": "y", "max_outbound": "2"}
    resp = post_form(owner, "/extensions/101", {**base, "email": "not an address"})
    assert resp.status_code == 400 and 'id="email-error"' in resp.data.decode()
    assert versions(panel_data) == 0
    resp = post_form(owner, "/extensions/101", {**base, "email": "desk101@office.example"})
    assert resp.status_code == 302
    with Store(panel_data) as store:
        doc = office.document(store)
    assert next(e for e in doc["extensions"] if e["number"] == "101")["email"] == "desk101@office.example"
