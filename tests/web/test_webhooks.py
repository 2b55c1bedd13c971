"""Webhooks through the panel: routing's webhook destinations (add, edit, delete; a bad URL refused
next to its field), the event URLs for the CRM with their secret, and the outbox's waiting deliveries."""

from __future__ import annotations

from appliance.configfile import export_document
from appliance.store import Store
from appliance.store.missed import Outbox
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office

HOOK = {"ident": "crm", "name": "Our CRM", "url": "https://crm.example.com/route", "timeout": "2.5",
        "fallback": "group:office", "ring_time": "20", "on_fail": ""}


def document(data_dir) -> dict:
    with Store(data_dir) as store:
        return export_document(store)


def versions(data_dir) -> int:
    with Store(data_dir) as store:
        return len(PanelTables(store).versions())


def test_a_webhook_is_added_edited_and_deleted(owner, panel_data):
    resp = post_form(owner, "/webhooks/new", {**HOOK, "allow_numbers": "y"})
    assert resp.status_code == 302, resp.data.decode()[-1500:]
    hook = document(panel_data)["routing"]["webhooks"]["crm"]
    assert (hook["url"], hook["timeout"], hook["fallback"], hook["allow_numbers"], hook["ring_time"]) == \
        ("https://crm.example.com/route", 2.5, "group:office", True, 20)
    assert versions(panel_data) == 2
    page = owner.get("/webhooks/").data.decode()
    assert "Our CRM" in page and "https://crm.example.com/route" in page
    edit_page = owner.get("/webhooks/crm").data.decode()
    assert "paid" in edit_page or "платн" in edit_page  # the warning beside allow_numbers
    resp = post_form(owner, "/webhooks/crm", {**HOOK, "url": "http://10.0.0.5/route", "on_fail": "101"})
    assert resp.status_code == 302
    hook = document(panel_data)["routing"]["webhooks"]["crm"]
    assert hook["url"] == "http://10.0.0.5/route" and hook["on_fail"] == "ext:101" and hook["allow_numbers"] is False
    assert '<option selected value="101">' in owner.get("/webhooks/crm").data.decode()
    before = versions(panel_data)
    resp = post_form(owner, "/webhooks/crm", {**HOOK, "url": "crm.example.com", "on_fail": "101"})
    assert resp.status_code == 400 and 'id="url-error"' in resp.data.decode()
    assert document(panel_data)["routing"]["webhooks"]["crm"]["url"] == "http://10.0.0.5/route"
    assert versions(panel_data) == before
    resp = post_form(owner, "/webhooks/crm/delete", {}, page="/webhooks/crm")
    assert resp.status_code == 302
    assert "crm" not in document(panel_data)["routing"].get("webhooks", {})


def test_a_bad_webhook_is_refused_next_to_its_field_and_nothing_is_saved(owner, panel_data):
    for data, where in (({**HOOK, "url": "ftp://crm.example.com"}, "url"),
                        ({**HOOK, "url": ""}, "url"),
                        ({**HOOK, "timeout": "600"}, "timeout"),
                        ({**HOOK, "timeout": "soon"}, "timeout"),
                        ({**HOOK, "ident": "my crm"}, "ident"),
                        ({**HOOK, "fallback": "group:nowhere"}, "fallback")):
        resp = post_form(owner, "/webhooks/new", data)
        assert resp.status_code == 400, data
        assert f'id="{where}-error"' in resp.data.decode(), data
    assert "webhooks" not in document(panel_data)["routing"] or not document(panel_data)["routing"]["webhooks"]
    assert versions(panel_data) == 0


def test_a_webhook_a_route_uses_is_not_deleted(owner, panel_data):
    post_form(owner, "/webhooks/new", HOOK)
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["routing"]["unmatched"] = "webhook:crm"
        office.save(store, doc, "owner", "calls ask the CRM")
    before = versions(panel_data)
    resp = post_form(owner, "/webhooks/crm/delete", {}, page="/webhooks/crm")
    assert resp.status_code == 400
    assert "no such destination" in resp.data.decode()
    assert "crm" in document(panel_data)["routing"]["webhooks"]
    assert versions(panel_data) == before
    # A second one with the same id is refused next to the id.
    resp = post_form(owner, "/webhooks/new", HOOK)
    assert resp.status_code == 400 and 'id="ident-error"' in resp.data.decode()


def test_event_urls_are_saved_with_a_secret_and_the_secret_can_be_renewed(owner, panel_data):
    data = {"urls": "https://crm.example.com/a\n\nhttp://10.0.0.5:8080/b\n", "secret": "", "timeout_seconds": "7"}
    resp = post_form(owner, "/webhooks/notify", data, page="/webhooks/")
    assert resp.status_code == 302
    notify = document(panel_data)["notify"]
    assert notify["urls"] == ["https://crm.example.com/a", "http://10.0.0.5:8080/b"]
    assert notify["timeout_seconds"] == 7 and len(notify["secret"]) >= 32
    first = notify["secret"]
    assert owner.post("/webhooks/secret").status_code == 400  # no form token: the secret stays
    assert document(panel_data)["notify"]["secret"] == first
    resp = post_form(owner, "/webhooks/secret", {}, page="/webhooks/")
    assert resp.status_code == 302
    notify = document(panel_data)["notify"]
    assert notify["secret"] != first and notify["urls"] == ["https://crm.example.com/a", "http://10.0.0.5:8080/b"]
    assert notify["secret"] in owner.get("/webhooks/").data.decode()


def test_bad_event_urls_are_refused_next_to_the_field_and_nothing_is_saved(owner, panel_data):
    eleven = "\n".join(f"https://crm.example.com/{i}" for i in range(11))
    for data, where in (({"urls": "ftp://crm.example.com/a", "secret": "s", "timeout_seconds": "5"}, "urls"),
                        ({"urls": eleven, "secret": "s", "timeout_seconds": "5"}, "urls"),
                        ({"urls": "https://crm.example.com/a", "secret": "s", "timeout_seconds": "90"},
                         "timeout_seconds")):
        resp = post_form(owner, "/webhooks/notify", data, page="/webhooks/")
        assert resp.status_code == 400, data
        assert f'id="{where}-error"' in resp.data.decode(), data
    assert "notify" not in document(panel_data)
    assert versions(panel_data) == 0


def test_the_outbox_shows_what_waits_for_delivery(owner, panel_data):
    with Store(panel_data) as store:
        with store.transaction():
            event = Outbox(store).add("CallStarted", "2026-03-10T09:00:00+00:00", {"call_id": "c1"},
                                      ["https://crm.example.com/a"])
        Outbox(store).failed(event, "https://crm.example.com/a", 1773133200.0, "connection refused")
    page = owner.get("/webhooks/").data.decode()
    assert 'id="outbox"' in page and "CallStarted" in page and "https://crm.example.com/a" in page
