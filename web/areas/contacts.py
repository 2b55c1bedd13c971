"""Contacts: the customers the office knows, their personal manager, VIP, a note; and their import
from a spreadsheet's CSV file.

Contacts are part of the configuration document, so every change (one
contact or a whole file) goes through `web.office.save` and is a version.
Numbers are kept in routing's normal form, so `067 123 45 67` and
`+380671234567` are one contact, in a search too.  Managers the appliance
learned from answered calls are not in the document; they are shown, and
left as they are.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from appliance.errors import ConfigError
from appliance.routing.numbers import normalise
from web import office
from web.db import applied, get_store
from web.forms import ConfirmForm

bp = Blueprint("contacts", __name__, url_prefix="/contacts")
NAV = (65, _l("Contacts"))

PHONE = re.compile(r"\+?\d{2,15}")


class ContactForm(FlaskForm):
    number = StringField(_l("Phone number"), validators=[DataRequired(_l("Give the number."))])
    name = StringField(_l("Name"), validators=[Length(max=200)])
    # Not checked against the choices here: the validator names a manager that is not an extension.
    manager = SelectField(_l("Personal manager"), choices=[], validate_choice=False)
    vip = BooleanField(_l("VIP: goes first in queues"))
    note = TextAreaField(_l("Note"), validators=[Length(max=2000)])


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file from a spreadsheet"), validators=[FileRequired(_l("Choose a file."))])


# -- numbers and search ----------------------------------------------------------------


def phone_number(text: str) -> str | None:
    """The number in routing's normal form, or None when the text is not a phone number."""
    number = normalise(text or "")
    return number if PHONE.fullmatch(number) else None


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def matches(contact: dict[str, Any], query: str) -> bool:
    """A name containing the query, or a number containing its digits in any usual form."""
    query = query.strip()
    if not query:
        return True
    if query.casefold() in (contact.get("name") or "").casefold():
        return True
    if re.fullmatch(r"[\d\s\-().+]+", query):
        wanted = _digits(normalise(query))
        return bool(wanted) and wanted in _digits(str(contact["number"]))
    return False


# -- saving ---------------------------------------------------------------------------------


def saved(doc: dict[str, Any], summary: str, done: str) -> None:
    """Save the whole document (ConfigError goes to the caller), tell the running appliance, say so."""
    office.save(get_store(), doc, who="owner", summary=summary)
    applied(done)


def _find(doc: dict[str, Any], number: str) -> int | None:
    for i, c in enumerate(doc["contacts"]):
        if normalise(str(c["number"])) == number:
            return i
    return None


def _manager_choices(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [("", _("none"))] + [(str(e["number"]), f"{e['number']} {e.get('name') or ''}".strip())
                                for e in doc["extensions"]]


def _fill(form: ContactForm, number: str) -> dict[str, Any]:
    item: dict[str, Any] = {"number": number, "name": form.name.data.strip(), "vip": bool(form.vip.data),
                            "note": (form.note.data or "").strip()}
    if form.manager.data:
        item["manager"] = form.manager.data
    return item


def _load(form: ContactForm, item: dict[str, Any]) -> None:
    form.number.data = item["number"]
    form.name.data = item.get("name") or ""
    form.manager.data = item.get("manager") or ""
    form.vip.data = bool(item.get("vip"))
    form.note.data = item.get("note") or ""


# -- pages ------------------------------------------------------------------------------------


def _listed(doc: dict[str, Any], query: str) -> list[dict[str, Any]]:
    """The document's contacts and the learned managers (marked, not editable) that match the query."""
    rows = [dict(c, learned=False) for c in doc["contacts"]]
    listed = {c["number"] for c in rows}
    for c in get_store().contacts():
        if c["learned"] and c["number"] not in listed:
            rows.append({"number": c["number"], "name": c["name"] or "", "manager": c["manager"],
                         "vip": bool(c["vip"]), "note": c["note"] or "", "learned": True})
    return sorted((c for c in rows if matches(c, query)), key=lambda c: ((c["name"] or "").casefold(), c["number"]))


@bp.route("/")
def index(upload: ImportForm | None = None):
    doc = office.document(get_store())
    query = request.args.get("q", "")
    names = {str(e["number"]): e.get("name") or "" for e in doc["extensions"]}
    return render_template("contacts/index.html", contacts=_listed(doc, query), query=query, names=names,
                           upload=upload or ImportForm(), total=len(doc["contacts"]))


def _edit_page(form: ContactForm, number: str | None, status: int = 200):
    return render_template("contacts/edit.html", form=form, number=number, remove=ConfirmForm()), status


def _form(doc: dict[str, Any]) -> ContactForm:
    form = ContactForm()
    form.manager.choices = _manager_choices(doc)
    return form


def _store_contact(doc: dict[str, Any], form: ContactForm, old: str | None):
    """Check the form, put its contact into the document (new, or in place of `old`) and save."""
    if not form.validate():
        return _edit_page(form, old, 400)
    number = phone_number(form.number.data)
    i = _find(doc, old) if old else None
    if number is None:
        form.number.errors.append(_("This is not a phone number."))
        return _edit_page(form, old, 400)
    other = _find(doc, number)
    if other is not None and other != i:
        form.number.errors.append(_("%(n)s is already a contact.", n=number))
        return _edit_page(form, old, 400)
    item = _fill(form, number)
    if i is None:
        doc["contacts"].append(item)
        i = len(doc["contacts"]) - 1
    else:
        doc["contacts"][i] = item
    try:
        saved(doc, f"{'changed' if old else 'added'} contact {number}", _("Saved."))
    except ConfigError as err:
        office.put_error(form, err, ("contacts", i))
        return _edit_page(form, old, 400)
    return redirect(url_for("contacts.index"))


@bp.route("/new", methods=("GET", "POST"))
def new():
    doc = office.document(get_store())
    form = _form(doc)
    if not form.is_submitted():
        return _edit_page(form, None)
    return _store_contact(doc, form, None)


@bp.route("/<number>", methods=("GET", "POST"))
def edit(number: str):
    doc = office.document(get_store())
    i = _find(doc, number)
    if i is None:
        abort(404)
    form = _form(doc)
    if not form.is_submitted():
        _load(form, doc["contacts"][i])
        return _edit_page(form, number)
    return _store_contact(doc, form, number)


@bp.route("/<number>/delete", methods=("POST",))
def delete(number: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    doc = office.document(get_store())
    i = _find(doc, number)
    if i is None:
        abort(404)
    doc["contacts"].pop(i)
    try:
        saved(doc, f"deleted contact {number}", _("Contact %(n)s was deleted.", n=number))
    except ConfigError as err:
        flash(_("The change was not saved: %(why)s", why=str(err)), "error")
    return redirect(url_for("contacts.index"))


@bp.route("/import", methods=("POST",))
def import_csv():
    form = ImportForm()
    if not form.validate_on_submit():
        return index(upload=form), 400
    f = form.file.data
    doc = office.document(get_store())
    try:
        rows = read_csv(f.read(), {str(e["number"]) for e in doc["extensions"]})
        added, updated, where = merge(doc, rows)
    except CsvError as e:
        form.file.errors = [_("%(why)s; nothing was imported", why=str(e))]
        return index(upload=form), 400
    try:
        saved(doc, f"imported contacts from {f.filename or 'a CSV file'}",
              _("Imported: %(added)d added, %(updated)d updated.", added=added, updated=updated))
    except ConfigError as err:
        form.file.errors = [_("%(why)s; nothing was imported", why=_why_in_row(err, where))]
        return index(upload=form), 400
    return redirect(url_for("contacts.index"))


def _why_in_row(err: ConfigError, where: dict[int, int]) -> str:
    """The validator's refusal, said with the file's row when it is about an imported contact."""
    path = err.path or ()
    if len(path) >= 2 and path[0] == "contacts" and path[1] in where:
        return _("row %(row)d: %(why)s", row=where[path[1]], why=err.message)
    return str(err)


# -- reading a spreadsheet's CSV ----------------------------------------------------------------

# A column's heading, as a spreadsheet may spell it in English or Ukrainian (lower case, apostrophes as ').
HEADINGS = {
    "number": "number", "phone": "number", "номер": "number", "телефон": "number",
    "name": "name", "ім'я": "name", "імя": "name", "назва": "name",
    "manager": "manager", "менеджер": "manager",
    "vip": "vip", "віп": "vip",
    "note": "note", "notes": "note", "примітка": "note", "примітки": "note",
}
YES = {"1", "yes", "y", "true", "x", "+", "vip", "так", "т", "да"}
NO = {"", "0", "no", "n", "false", "-", "ні", "н", "нет"}
APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "`": "'", "‘": "'"})


class CsvError(Exception):
    """Why a file cannot be imported, naming its row (1 is the heading row) and column."""


@dataclass(frozen=True)
class CsvContact:
    row: int
    fields: dict[str, Any]  # only the columns the file has


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without the BOM Excel writes), else Windows-1251, what Ukrainian Excel saves."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")


def _separator(first_line: str) -> str:
    return ";" if first_line.count(";") > first_line.count(",") else ","


def _columns(heading: list[str]) -> list[str | None]:
    """The field of each column; None for an empty heading (an unused column)."""
    out: list[str | None] = []
    for n, cell in enumerate(heading, start=1):
        key = cell.strip().casefold().translate(APOSTROPHES)
        if not key:
            out.append(None)
        elif key in HEADINGS:
            out.append(HEADINGS[key])
        else:
            raise CsvError(_("row 1: column %(col)d, %(name)s, is not one of: number, name, manager, vip, note",
                             col=n, name=cell.strip()))
    if "number" not in out:
        raise CsvError(_("row 1: no column with the number (number, номер or телефон)"))
    return out


def _vip(text: str, row: int) -> bool:
    value = text.strip().casefold()
    if value in YES:
        return True
    if value in NO:
        return False
    raise CsvError(_("row %(row)d: vip %(value)s is neither yes nor no", row=row, value=text.strip()))


def _contact(cells: list[str], columns: list[str | None], row: int, extensions: set[str]) -> CsvContact:
    fields: dict[str, Any] = {}
    padded = cells + [""] * (len(columns) - len(cells))  # a row whose last cells were left out
    for col, cell in zip(columns, padded):
        if col is not None:
            fields[col] = cell.strip()
    if any(c.strip() for c in cells[len(columns):]):
        raise CsvError(_("row %(row)d: more cells than the heading row has columns", row=row))
    number = phone_number(fields.get("number", ""))
    if number is None:
        raise CsvError(_("row %(row)d: number %(value)s is not a phone number", row=row,
                         value=fields.get("number", "")))
    fields["number"] = number
    if fields.get("manager"):
        if fields["manager"] not in extensions:
            raise CsvError(_("row %(row)d: manager %(m)s is not an extension", row=row, m=fields["manager"]))
    elif "manager" in fields:
        fields["manager"] = None
    if "vip" in fields:
        fields["vip"] = _vip(fields["vip"], row)
    return CsvContact(row, fields)


def read_csv(data: bytes, extensions: set[str]) -> list[CsvContact]:
    """Every contact of the file, checked, or CsvError for the first row that is wrong."""
    text = decode_csv(data)
    if not text.strip():
        raise CsvError(_("the file is empty"))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_separator(text.splitlines()[0]))
    out: list[CsvContact] = []
    seen: dict[str, int] = {}
    row = 0  # the last row read, as the spreadsheet numbers them: the heading is row 1
    try:
        columns = _columns(next(reader))
        row = 1
        for row, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            contact = _contact(cells, columns, row, extensions)
            number = contact.fields["number"]
            if number in seen:
                raise CsvError(_("row %(row)d: number %(n)s is already in row %(other)d",
                                 row=row, n=number, other=seen[number]))
            seen[number] = row
            out.append(contact)
    except csv.Error as e:
        raise CsvError(_("row %(row)d: %(why)s", row=row + 1, why=str(e))) from None
    return out


def merge(doc: dict[str, Any], rows: list[CsvContact]) -> tuple[int, int, dict[int, int]]:
    """Put the file's contacts into the document: a known number is updated with the file's columns,
    a new one added.  Returns how many were added and updated, and each document index's file row."""
    added = updated = 0
    where: dict[int, int] = {}
    for contact in rows:
        i = _find(doc, contact.fields["number"])
        if i is None:
            doc["contacts"].append({"number": contact.fields["number"], "name": "", "vip": False, "note": ""})
            i = len(doc["contacts"]) - 1
            added += 1
        else:
            updated += 1
        item = doc["contacts"][i]
        item.update({k: v for k, v in contact.fields.items() if k != "manager"})
        if "manager" in contact.fields:
            item.pop("manager", None)
            if contact.fields["manager"]:
                item["manager"] = contact.fields["manager"]
        where[i] = contact.row
    return added, updated, where
