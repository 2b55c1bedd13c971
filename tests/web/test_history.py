"""History, undo and backup through the panel: versions of whole files, restored all or nothing."""

from __future__ import annotations

from io import BytesIO

from appliance.configfile import export_config, load_text
from appliance.errors import ConfigError
from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form
from web import office


def rename(data_dir, number: str, name: str) -> int:
    with Store(data_dir) as store:
        doc = office.document(store)
        for e in doc["extensions"]:
            if e["number"] == number:
                e["name"] = name
        return office.save(store, doc, "owner", f"renamed {number}")


def test_a_saved_change_is_a_version_with_a_readable_diff_and_can_be_undone(owner, panel_data):
    with Store(panel_data) as store:
        before = export_config(store)
    vid = rename(panel_data, "101", "Reception desk")
    page = owner.get("/history/").data.decode()
    assert "renamed 101" in page
    diff = owner.get(f"/history/{vid}").data.decode()
    assert "+  name: Reception desk" in diff and "-  name:" in diff
    first = min(v["id"] for v in PanelTables(Store(panel_data)).versions())
    resp = post_form(owner, "/history/restore", {"version": str(first)}, page="/history/")
    assert resp.status_code == 302
    with Store(panel_data) as store:
        assert load_text(export_config(store)) == load_text(before)
        assert store.extension("101")["name"] == "Extension 101"
        latest = PanelTables(store).latest_version()
        assert latest["restored_from"] == first and latest["summary"] == f"restored version {first}"


def test_a_change_the_validator_refuses_saves_nothing(panel_data):
    with Store(panel_data) as store:
        doc = office.document(store)
        doc["extensions"][0]["number"] = "0101"
        try:
            office.save(store, doc, "owner", "bad")
        except ConfigError as e:
            assert e.path[:2] == ("extensions", 0)
        else:
            raise AssertionError("an extension number starting with 0 was accepted")
        assert PanelTables(store).versions() == []
        assert [e["number"] for e in store.extensions()] == ["101", "102", "103"]


def test_backup_downloads_and_a_broken_file_is_refused_next_to_the_field(owner, panel_data):
    resp = owner.get("/history/backup.yaml")
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    text = resp.data.decode()
    assert "extensions:" in text and 'number: "101"' in text
    broken = text.replace('number: "102"', 'number: "0102"')
    resp = post_form(owner, "/history/upload", {"file": (BytesIO(broken.encode()), "office.yaml")},
                     page="/history/", content_type="multipart/form-data")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="file-error"' in page and "0102" in page
    with Store(panel_data) as store:
        assert export_config(store) == text, "a refused file changes nothing"
        assert PanelTables(store).versions() == []
    renamed = text.replace("name: Extension 102", "name: Warehouse")
    resp = post_form(owner, "/history/upload", {"file": (BytesIO(renamed.encode()), "office.yaml")},
                     page="/history/", content_type="multipart/form-data")
    assert resp.status_code == 302
    with Store(panel_data) as store:
        assert store.extension("102")["name"] == "Warehouse"
        assert "office.yaml" in PanelTables(store).latest_version()["summary"]


def test_field_for_names_the_field_a_refusal_belongs_to():
    err = ConfigError("at least 8 characters", ("extensions", 2, "password"))
    assert office.field_for(err, ("extensions", 2), ["name", "password"]) == "password"
    assert office.field_for(err, ("extensions", 1), ["name", "password"]) is None
    deep = ConfigError("no such extension", ("routing", "groups", "sales", "members", 1))
    assert office.field_for(deep, ("routing", "groups", "sales"), ["members", "strategy"]) == "members"
