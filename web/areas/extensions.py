"""Extensions: the desk phones of the office, where each is registered from, and what to type into one.

Every change edits the whole configuration document and goes through
`web.office.save`, so a duplicate number or an extension that a group, route
or contact still uses is refused with the validator's reason.  A SIP password
is made by the appliance and shown once, on the page that answers the form
that made it; the store keeps only its digests.

A desk phone assigned here (MAC address and vendor) fetches its settings
from the appliance, password included (docs/provisioning.md): assigning it
gives the extension a new password, which the store's provisioning table
keeps for the phone's file.  A softphone gets a QR code of a one-time
address instead.
"""

from __future__ import annotations

import time
from typing import Any, Callable
from urllib.parse import urlsplit

import segno
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, NumberRange, Regexp

from appliance.errors import ConfigError
from appliance.netaddr import primary_address
from appliance.provision import VENDORS, make_secret, make_token, normalise_mac
from appliance.store import Store, generate_password
from appliance.store.provisioning import ProvisioningTables
from web import office
from web.db import applied, get_store
from web.forms import ConfirmForm

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


class PhoneForm(FlaskForm):
    """A desk phone that fetches its settings: its MAC address and its vendor's format."""

    mac = StringField(_l("MAC address"), validators=[DataRequired(_l("Give the phone's MAC address."))])
    vendor = SelectField(_l("Make"), choices=[(key, v.label) for key, v in VENDORS.items()])


SOFTPHONE_SECONDS = 24 * 3600  # how long a QR code's address waits for its one use


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


def _save(doc: dict[str, Any], summary: str, done: str, also: Callable[[Store], None] | None = None) -> None:
    """Save the document (ConfigError goes to the caller) and tell the running appliance.

    `also` writes what goes with the change (a provisioned phone's password) in the same transaction."""
    store = get_store()
    with store.transaction():
        office.save(store, doc, who="owner", summary=summary)
        if also:
            also(store)
    applied(done)


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


def _edit_page(number: str, item: dict[str, Any], form: ExtensionForm, remove: ConfirmForm | None = None,
               phone: PhoneForm | None = None):
    store = get_store()
    phones = [{**p, "url": _phone_url(p), "base": _public_root() + url_for("provision.index") + p["secret"] + "/",
               "vendor_label": VENDORS[p["vendor"]].label if p["vendor"] in VENDORS else p["vendor"]}
              for p in ProvisioningTables(store).phones(number)]
    return render_template("extensions/edit.html", number=number, item=item, form=form,
                           remove=remove or ConfirmForm(), password=ConfirmForm(), rules=DIAL_RULES,
                           phones=phones, phone=phone or PhoneForm(formdata=None), button=ConfirmForm())


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

    def phones_too(store: Store) -> None:
        # A provisioned phone gets the new password with its next fetch of its file.
        ProvisioningTables(store).set_password(number, new_password, time.time())

    try:
        _save(doc, f"new password for extension {number}", _("Extension %(n)s has a new password.", n=number),
              also=phones_too)
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
        _save(doc, f"removed extension {number}", _("Extension %(n)s was removed.", n=number),
              also=lambda store: ProvisioningTables(store).forget_extension(number))
    except ConfigError as err:
        form.form_errors.append(_("Extension %(n)s is still in use, so it stays: %(why)s", n=number, why=str(err)))
        edit_form = ExtensionForm(formdata=None)
        _load(edit_form, item)
        return _edit_page(number, item, edit_form, remove=form), 400
    return redirect(url_for("extensions.index"))


# ---- phones that configure themselves (docs/provisioning.md) -----------------------------------


def _public_root() -> str:
    """The panel's address as phones on the network reach it: the one the owner's browser used,
    unless that is the machine itself (a browser on it, or an SSH tunnel)."""
    parts = urlsplit(request.host_url)
    host = parts.hostname or ""
    if host == "localhost" or host.startswith("127.") or host == "::1":
        return f"{parts.scheme}://{primary_address()}" + (f":{parts.port}" if parts.port else "")
    return request.host_url.rstrip("/")


def _phone_url(phone: dict[str, Any]) -> str:
    name = VENDORS[phone["vendor"]].file_name.format(mac=phone["mac"]) if phone["vendor"] in VENDORS else phone["mac"]
    return _public_root() + url_for("provision.phone_file", secret=phone["secret"], filename=name)


@bp.route("/<number>/phone", methods=("POST",))
def assign_phone(number: str):
    """A desk phone for the extension: the extension gets a new password, which the phone's file carries."""
    store = get_store()
    doc = office.document(store)
    i = _find(doc, number)
    phone = PhoneForm()
    valid = phone.validate_on_submit()
    mac = normalise_mac(phone.mac.data) if valid else None
    if valid and mac is None:
        phone.mac.errors = [_("Not a MAC address: 12 hexadecimal digits, as on the label under the phone "
                              "(00:15:65:AB:CD:EF).")]
    elif mac is not None:
        taken = ProvisioningTables(store).phone(mac)
        if taken is not None:
            phone.mac.errors = [_("This phone is already assigned to extension %(n)s; remove it there first.",
                                  n=taken["extension"])]
            mac = None
    if mac is None:
        form = ExtensionForm(formdata=None)
        _load(form, doc["extensions"][i])
        return _edit_page(number, doc["extensions"][i], form, phone=phone), 400
    password = _new_password(doc["extensions"][i])
    try:
        _save(doc, f"phone {mac} assigned to extension {number}",
              _("The phone %(mac)s will set itself up as extension %(n)s.", mac=mac, n=number),
              also=lambda s: ProvisioningTables(s).assign(mac, number, phone.vendor.data, make_secret(), password,
                                                          time.time()))
    except ConfigError as err:
        flash(_("The change was not saved: %(why)s", why=str(err)), "error")
    return redirect(url_for("extensions.edit", number=number) + "#provisioning")


@bp.route("/<number>/phone/<mac>/remove", methods=("POST",))
def unassign_phone(number: str, mac: str):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    tables = ProvisioningTables(get_store())
    phone = tables.phone(mac)
    if phone is None or phone["extension"] != number:
        abort(404)
    tables.unassign(mac)
    flash(_("The phone %(mac)s no longer fetches its settings; it keeps those it has.", mac=mac), "ok")
    return redirect(url_for("extensions.edit", number=number) + "#provisioning")


def qr_svg(text: str) -> Markup:
    """The QR code of `text` as inline SVG (presentation attributes only: the CSP forbids style)."""
    svg = segno.make(text, error="m", micro=False).svg_inline(
        scale=5, border=4, dark="#000", light="#fff", svgclass="qr", lineclass=None, omitsize=False,
        title=None)
    return Markup(svg)


@bp.route("/<number>/softphone", methods=("POST",))
def softphone(number: str):
    """A QR code for a softphone: its address works once, and a new one ends the one before."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    store = get_store()
    doc = office.document(store)
    item = doc["extensions"][_find(doc, number)]
    token, digest = make_token()
    ProvisioningTables(store).new_token(number, digest, time.time() + SOFTPHONE_SECONDS)
    url = _public_root() + url_for("provision.softphone", token=token)
    return render_template("extensions/softphone.html", number=number, name=item.get("name", ""), url=url,
                           qr=qr_svg(url), hours=SOFTPHONE_SECONDS // 3600)
