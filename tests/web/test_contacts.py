"""Contacts through the panel: add, edit, delete, search in any form of a number, and import from a
spreadsheet's CSV file (comma or semicolon, UTF-8 with or without BOM, Windows-1251), all or nothing."""

from __future__ import annotations

from io import BytesIO

from appliance.store import Store
from appliance.store.panel import PanelTables
from tests.web.conftest import post_form


def contacts(data_dir) -> dict[str, dict]:
    with Store(data_dir) as store:
        return {c["number"]: c for c in store.contacts()}


def versions(data_dir) -> int:
    with Store(data_dir) as store:
        return len(PanelTables(store).versions())


def add(owner, **fields):
    data = {"number": "", "name": "", "manager": "", "note": "", **fields}
    return post_form(owner, "/contacts/new", data)


def upload(owner, data: bytes, name: str = "contacts.csv"):
    return post_form(owner, "/contacts/import", {"file": (BytesIO(data), name)}, page="/contacts/",
                     content_type="multipart/form-data")


def test_a_contact_is_added_in_normal_form_and_found_by_another_form_of_its_number(owner, panel_data):
    resp = add(owner, number="067 123-45-67", name="Petrenko Ltd", manager="102", vip="y", note="pays late")
    assert resp.status_code == 302
    saved = contacts(panel_data)["+380671234567"]
    assert (saved["name"], saved["manager"], saved["vip"], saved["note"]) == ("Petrenko Ltd", "102", 1, "pays late")
    assert versions(panel_data) == 2  # the state before the panel's first change, and this one
    page = owner.get("/contacts/?q=380671234567").data.decode()
    assert "Petrenko Ltd" in page
    assert "Petrenko Ltd" in owner.get("/contacts/?q=petrenko").data.decode()
    assert "Petrenko Ltd" not in owner.get("/contacts/?q=0501112233").data.decode()


def test_a_bad_number_or_manager_is_refused_next_to_its_field_and_nothing_is_saved(owner, panel_data):
    resp = add(owner, number="not a phone", name="X")
    assert resp.status_code == 400
    assert 'id="number-error"' in resp.data.decode()
    resp = add(owner, number="0671234567", name="X", manager="109")
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="manager-error"' in page and "109 is not an extension" in page
    resp = add(owner, number="", name="X")
    assert resp.status_code == 400 and 'id="number-error"' in resp.data.decode()
    assert contacts(panel_data) == {}
    assert versions(panel_data) == 0


def test_a_contact_is_edited_and_deleted(owner, panel_data):
    add(owner, number="0671234567", name="Petrenko")
    add(owner, number="0501112233", name="Shevchenko")
    resp = post_form(owner, "/contacts/+380671234567", {"number": "+380671234567", "name": "Petrenko and Sons",
                                                       "manager": "101", "note": ""})
    assert resp.status_code == 302
    assert contacts(panel_data)["+380671234567"]["name"] == "Petrenko and Sons"
    # Changing its number to another contact's is refused next to the number.
    before = versions(panel_data)
    resp = post_form(owner, "/contacts/+380671234567", {"number": "050 111 22 33", "name": "P", "manager": "",
                                                       "note": ""})
    assert resp.status_code == 400 and 'id="number-error"' in resp.data.decode()
    assert versions(panel_data) == before
    assert owner.post("/contacts/+380671234567/delete").status_code == 400  # no form token: nothing deleted
    assert "+380671234567" in contacts(panel_data)
    resp = post_form(owner, "/contacts/+380671234567/delete", {}, page="/contacts/+380671234567")
    assert resp.status_code == 302
    assert set(contacts(panel_data)) == {"+380501112233"}
    assert owner.get("/contacts/+380999999999").status_code == 404


def test_learned_managers_are_shown_and_kept(owner, panel_data):
    with Store(panel_data) as store:
        store.put_contact({"number": "+380931112233", "name": "", "manager": "103", "learned": 1})
    assert "+380931112233" in owner.get("/contacts/").data.decode()
    add(owner, number="0671234567", name="Petrenko")
    assert contacts(panel_data)["+380931112233"]["learned"] == 1


def test_csv_with_semicolons_in_windows_1251_is_imported_with_ukrainian_headings(owner, panel_data):
    add(owner, number="0671234567", name="Old name", manager="101", note="keep")
    text = ("Телефон;Ім’я;Менеджер;VIP\r\n"
            "067 123 45 67;Петренко;102;так\r\n"
            "+380501112233;Шевченко;;\r\n"
            "\r\n"
            "380931234567;Коваль;103;ні\r\n")
    resp = upload(owner, text.encode("cp1251"))
    assert resp.status_code == 302
    follow = owner.get("/contacts/").data.decode()
    assert "2 added, 1 updated" in follow or "додано 2, оновлено 1" in follow
    saved = contacts(panel_data)
    assert saved["+380671234567"]["name"] == "Петренко" and saved["+380671234567"]["manager"] == "102"
    assert saved["+380671234567"]["note"] == "keep", "a column the file lacks keeps its value"
    assert saved["+380671234567"]["vip"] == 1
    assert saved["+380501112233"]["manager"] is None
    assert saved["+380931234567"]["name"] == "Коваль"


def test_csv_with_commas_in_utf8_with_a_bom_and_english_headings(owner, panel_data):
    text = 'number,name,note\n0671234567,"Smith, John",first\n0501112233,Олена,\n'
    resp = upload(owner, b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert resp.status_code == 302
    saved = contacts(panel_data)
    assert saved["+380671234567"]["name"] == "Smith, John" and saved["+380671234567"]["note"] == "first"
    assert saved["+380501112233"]["name"] == "Олена"


def test_a_bad_row_is_named_next_to_the_file_field_and_nothing_is_imported(owner, panel_data):
    rows = ["номер;ім'я;менеджер"] + [f"06712345{i:02d};Client {i};101" for i in range(12)]
    rows.append("0501112233;Wrong manager;109")  # row 14
    before = versions(panel_data)
    resp = upload(owner, ("\n".join(rows) + "\n").encode("utf-8"))
    assert resp.status_code == 400
    page = resp.data.decode()
    assert 'id="file-error"' in page
    assert "row 14: manager 109 is not an extension" in page or "рядок 14: менеджер 109" in page
    assert contacts(panel_data) == {}
    assert versions(panel_data) == before


def test_other_bad_files_are_refused_with_their_row(owner, panel_data):
    for data, words in (
        (b"number;company\n0671234567;X\n", ("company",)),
        (b"name\nX\n", ("number",)),
        (b"number;vip\n0671234567;maybe\n", ("row 2", "рядок 2")),
        (b"number\n0671234567\n+380671234567\n", ("row 3", "рядок 3")),
        (b"number\nabc\n", ("row 2", "рядок 2")),
        (b"", ()),
    ):
        resp = upload(owner, data)
        assert resp.status_code == 400, data
        page = resp.data.decode()
        assert 'id="file-error"' in page
        assert not words or any(w in page for w in words), (data, page[-2000:])
    resp = post_form(owner, "/contacts/import", {}, page="/contacts/", content_type="multipart/form-data")
    assert resp.status_code == 400 and 'id="file-error"' in resp.data.decode()
    assert contacts(panel_data) == {}
