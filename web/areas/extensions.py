"""Extensions: the desk phones of the office, where each is registered from, and what to type into one.

Every change edits the whole configuration document and goes through
`web.office.save`, so a duplicate number or an extension that a group, route
or contact still uses is refused with the validator's reason.  A SIP password
is made by the appliance and shown once, on the page that answers the form
that made it; the store keeps only its digests.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import DataRequired, NumberRange, Regexp

from appliance.errors import ConfigError
from appliance.netaddr import primary_address
from appliance.store import generate_password
from web import office
from web.db import get_store, tell_appliance

bp = Blueprint("extensions", __name__, url_prefix="/extensions")
NAV = (10, _l("Extensions"))

SIP_PORT = 5060

# (dial rule, its label, what it lets the phone call) in the order the form shows them.
DIAL_RULES = (
    ("local", _l("Landlines"), _l("Landline numbers in Ukraine (044…, 032…) and short service numbers.")),
    ("mobile", _l("Mobiles"), _l("Ukrainian mobile numbers (050…, 067…, 093…).")),
    ("international", _l("Abroad"), _l("Numbers in other countries (+ or 00 and the country code).")),
    ("premium", _l("Paid lines"), _l("Premium-rate lines (0900…, 070…): every call costs money, often a lot per minute.")),
)


class ExtensionForm(FlaskForm):
    """The fields of an existing extension; its number is fixed (the password's digest is made with it)."""

    name = StringField(_l("Name"), validators=[DataRequired(_l("Give a name: who or where the phone is."))])
    dnd = BooleanField(_l("Do not disturb"))
    rule_local = BooleanField(DIAL_RULES[0][1])
    rule_mobile = BooleanField(DIAL_RULES[1][1])
    rule_international = BooleanField(DIAL_RULES[2][1])
    rule_premium = BooleanField(DIAL_RULES[3][1])
    max_outbound = IntegerField(_l("Outside calls at once"), default=2,
                                validators=[NumberRange(0, 10, _l("From 0 to 10 calls."))])
    email = StringField(_l("E-mail for missed calls and voicemail"))
    secure = BooleanField(_l("Encrypted only (TLS and SRTP)"))


class NewExtensionForm(ExtensionForm):
    number = StringField(_l("Number"), validators=[
        DataRequired(_l("Give the extension's number.")),
        Regexp(r"^[1-9][0-9]{1,5}$", message=_l("2 to 6 digits, not starting with 0 (0 starts an outside number)."))])


class ConfirmForm(FlaskForm):
    """A button's form (remove, make a new password): only its CSRF token."""


# The validator's key for a field, where it differs from the form's name.
ALIASES = {"dial_rules": "rule_local"}


def _find(doc: dict[str, Any], number: str) -> int:
    for i, e in enumerate(doc["extensions"]):
        if str(e["number"]) == number:
            return i
    abort(404)


def _fill(form: ExtensionForm, item: dict[str, Any]) -> None:
    """Copy the form's fields into a document's extension item."""
    item["name"] = form.name.data.strip()
    item["dnd"] = bool(form.dnd.data)
    item["dial_rules"] = [rule for rule, _label, _hint in DIAL_RULES if getattr(form, f"rule_{rule}").data]
    item["max_outbound"] = form.max_outbound.data
    if form.secure.data:
        item["secure"] = True
    else:
        item.pop("secure", None)
    email = (form.email.data or "").strip()
    if email:
        item["email"] = email
    else:
        item.pop("email", None)


def _load(form: ExtensionForm, item: dict[str, Any]) -> None:
    form.name.data = item.get("name", "")
    form.dnd.data = bool(item.get("dnd"))
    for rule, _label, _hint in DIAL_RULES:
        getattr(form, f"rule_{rule}").data = rule in (item.get("dial_rules") or [])
    form.max_outbound.data = item.get("max_outbound", 2)
    form.email.data = item.get("email", "")
    form.secure.data = bool(item.get("secure"))


def _new_password(item: dict[str, Any]) -> str:
    """Give a document's extension a new password; the validator turns it into digests."""
    password = generate_password()
    item["password"] = password
    item.pop("ha1_md5", None)
    item.pop("ha1_sha256", None)
    return password


def _save(doc: dict[str, Any], summary: str, done: str) -> None:
    """Save the document (ConfigError goes to the caller) and tell the running appliance."""
    office.save(get_store(), doc, who="owner", summary=summary)
    error = tell_appliance()
    if error:
        flash(_("Saved; the running appliance did not take it yet (%(why)s).", why=error), "error")
    else:
        flash(done, "ok")


def _phone_setup(number: str, name: str, password: str):
    """The one page that shows a password: what to type into the desk phone."""
    store = get_store()
    return render_template("extensions/phone.html", number=number, name=name, password=password,
                           server=primary_address(), port=SIP_PORT, realm=store.realm, tls=sip_tls(store))


def sip_tls(store) -> dict | None:
    """SIP over TLS as the running appliance last started it: {"port", "fingerprint"}, or None when off."""
    value = store.get_setting("sip_tls")
    return value if isinstance(value, dict) and value.get("port") else None


def _registered(store) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for b in store.bindings():
        out.setdefault(str(b["extension"]), []).append(b)
    return out


@bp.route("/")
def index():
    store = get_store()
    doc = office.document(store)
    return render_template("extensions/index.html", extensions=doc["extensions"], bindings=_registered(store),
                           tls=sip_tls(store), server=primary_address())


@bp.route("/new", methods=("GET", "POST"))
def new():
    form = NewExtensionForm()
    if not form.is_submitted():
        form.rule_local.data = form.rule_mobile.data = True
        return render_template("extensions/new.html", form=form, rules=DIAL_RULES)
    if not form.validate():
        return render_template("extensions/new.html", form=form, rules=DIAL_RULES), 400
    doc = office.document(get_store())
    item: dict[str, Any] = {"number": form.number.data}
    _fill(form, item)
    password = _new_password(item)
    doc["extensions"].append(item)
    try:
        _save(doc, f"added extension {item['number']}", _("Extension %(n)s was added.", n=item["number"]))
    except ConfigError as err:
        office.put_error(form, err, ("extensions", len(doc["extensions"]) - 1), ALIASES)
        return render_template("extensions/new.html", form=form, rules=DIAL_RULES), 400
    return _phone_setup(item["number"], item["name"], password)


def _edit_page(number: str, item: dict[str, Any], form: ExtensionForm, remove: ConfirmForm | None = None):
    return render_template("extensions/edit.html", number=number, item=item, form=form,
                           remove=remove or ConfirmForm(), password=ConfirmForm(), rules=DIAL_RULES)


@bp.route("/<number>", methods=("GET", "POST"))
def edit(number: str):
    doc = office.document(get_store())
    i = _find(doc, number)
    form = ExtensionForm()
    if not form.is_submitted():
        _load(form, doc["extensions"][i])
        return _edit_page(number, doc["extensions"][i], form)
    if not form.validate():
        return _edit_page(number, doc["extensions"][i], form), 400
    _fill(form, doc["extensions"][i])
    try:
        _save(doc, f"changed extension {number}", _("Saved."))
    except ConfigError as err:
        office.put_error(form, err, ("extensions", i), ALIASES)
        return _edit_page(number, doc["extensions"][i], form), 400
    return redirect(url_for("extensions.index"))


@bp.route("/<number>/password", methods=("POST",))
def password(number: str):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    doc = office.document(get_store())
    item = doc["extensions"][_find(doc, number)]
    new_password = _new_password(item)
    try:
        _save(doc, f"new password for extension {number}", _("Extension %(n)s has a new password.", n=number))
    except ConfigError as err:
        flash(_("The change was not saved: %(why)s", why=str(err)), "error")
        return redirect(url_for("extensions.edit", number=number))
    return _phone_setup(number, item["name"], new_password)


@bp.route("/<number>/remove", methods=("POST",))
def remove(number: str):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    doc = office.document(get_store())
    i = _find(doc, number)
    item = doc["extensions"].pop(i)
    try:
        _save(doc, f"removed extension {number}", _("Extension %(n)s was removed.", n=number))
    except ConfigError as err:
        form.form_errors.append(_("Extension %(n)s is still in use, so it stays: %(why)s", n=number, why=str(err)))
        edit_form = ExtensionForm(formdata=None)
        _load(edit_form, item)
        return _edit_page(number, item, edit_form, remove=form), 400
    return redirect(url_for("extensions.index"))
