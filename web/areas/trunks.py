"""Trunks: the provider connections, whether each works (in words), and their settings.

Every key of `trunks` in docs/config.md is a field here.  The password is
write-only: an empty field keeps the one saved.  After a change to a trunk
that was working, `web.trunkwatch` checks that it works again and undoes the
change when it does not; the page shows what happened.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange

from appliance.errors import ConfigError
from appliance.store.panel import PanelTables
from web import office, trunkwatch
from web.db import applied, ask, get_store
from web.forms import ConfirmForm

bp = Blueprint("trunks", __name__, url_prefix="/trunks")
NAV = (20, _l("Trunks"))

KINDS = (
    ("register", _l("Registers with the provider"),
     _l("The appliance signs in to the provider with a username and password (most providers).")),
    ("ip", _l("Trusted by address"),
     _l("The provider sends calls from fixed addresses and takes ours without a password.")),
)
PHONE = re.compile(r"^\+?[0-9]{2,20}$")
ADDRESS = re.compile(r"^[A-Za-z0-9.:-]+$")


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class TrunkForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give the trunk a name.")), Length(max=40)])
    kind = RadioField(_l("How the provider knows the appliance"), default="register",
                      choices=[SelectChoice(k, label) for k, label, _hint in KINDS])
    host = StringField(_l("Provider's server"), validators=[DataRequired(_l("Give the provider's server."))])
    port = IntegerField(_l("Provider's port"), default=5060, validators=[NumberRange(1, 65535, _l("From 1 to 65535."))])
    transport = SelectField(_l("Transport (UDP or TCP)"), choices=[SelectChoice("udp", "UDP"), SelectChoice("tcp", "TCP")], default="udp")
    username = StringField(_l("Username at the provider"))
    password = PasswordField(_l("Password at the provider"))
    auth_username = StringField(_l("Authentication username"))
    from_domain = StringField(_l("Domain in the From header"))
    numbers = TextAreaField(_l("Numbers that arrive on this trunk"))
    addresses = TextAreaField(_l("Provider's addresses"))
    caller_id = StringField(_l("Number shown on outgoing calls"))
    pass_caller_id = BooleanField(_l("On forwarded calls, show the customer's number"))
    register_expires = IntegerField(_l("Registration lasts (seconds)"), default=300,
                                    validators=[NumberRange(60, 3600, _l("From 60 to 3600 seconds."))])
    enabled = BooleanField(_l("Enabled"), default=True)

    def validate(self, extra_validators=None) -> bool:
        """The checks that need two fields, said next to the field to fill in."""
        ok = super().validate(extra_validators)
        if self.kind.data == "register" and not (self.username.data or "").strip():
            self.username.errors.append(_("A trunk that registers needs the username the provider gave you."))
            ok = False
        if self.kind.data == "ip" and not _lines(self.addresses.data):
            self.addresses.errors.append(_("A trunk trusted by address needs the provider's addresses."))
            ok = False
        for field, pattern, message in ((self.numbers, PHONE, _l("%(line)s is not a phone number.")),
                                        (self.addresses, ADDRESS, _l("%(line)s is not an address."))):
            bad = [line for line in _lines(field.data) if not pattern.match(line)]
            if bad:
                field.errors.append(str(message) % {"line": bad[0]})
                ok = False
        return ok


def _fill(form: TrunkForm, item: dict[str, Any]) -> None:
    """Copy the form's fields into a document's trunk item; an empty password keeps the saved one."""
    item.update(
        name=form.name.data.strip(), kind=form.kind.data, host=form.host.data.strip(), port=form.port.data,
        transport=form.transport.data, username=(form.username.data or "").strip(),
        auth_username=(form.auth_username.data or "").strip(), from_domain=(form.from_domain.data or "").strip(),
        numbers=_lines(form.numbers.data), addresses=_lines(form.addresses.data),
        caller_id=(form.caller_id.data or "").strip(), pass_caller_id=bool(form.pass_caller_id.data),
        register_expires=form.register_expires.data, enabled=bool(form.enabled.data))
    if form.password.data:
        item["password"] = form.password.data
    item.setdefault("password", "")


def _load(form: TrunkForm, item: dict[str, Any]) -> None:
    for key in ("name", "kind", "host", "port", "transport", "username", "auth_username", "from_domain",
                "caller_id", "pass_caller_id", "register_expires", "enabled"):
        getattr(form, key).data = item.get(key)
    form.numbers.data = "\n".join(item.get("numbers") or [])
    form.addresses.data = "\n".join(item.get("addresses") or [])


def _find(doc: dict[str, Any], name: str) -> int:
    for i, t in enumerate(doc["trunks"]):
        if t["name"] == name:
            return i
    abort(404)


def live_states() -> tuple[dict[str, dict] | None, str | None]:
    """The running appliance's trunk states by name, or (None, why not)."""
    answer, error = ask("trunks.status")
    if answer is None:
        return None, error
    return {s["name"]: s for s in answer.get("trunks") or []}, None


def state_words(state: dict) -> str:
    """A trunk's state in the owner's words, from the provider's last reply."""
    if state.get("up"):
        return _("registered") if state.get("kind") == "register" else _("in use: calls come from the provider's addresses")
    code = state.get("code")
    if code is None:
        if state.get("timed_out"):
            return _("no answer from the provider within %(s)d s", s=state.get("seconds") or trunkwatch.WATCH_SECONDS)
        return _("waiting for the provider's answer")
    if code in (401, 403, 407):
        return _("the provider refused the password (%(code)s)", code=code)
    if code == 404:
        return _("the provider does not know this username (404)")
    if code == 408:
        return _("no answer from the provider (408)")
    if code in (502, 503, 504):
        return _("the provider's server could not be reached (%(code)s)", code=code)
    if 200 <= code < 300:
        return _("not registered")
    return _("the provider answered %(code)s %(reason)s", code=code, reason=state.get("reason") or "")


def notice_words(notice: dict | None) -> str | None:
    """What the watcher left for the owner, if anything."""
    if not notice:
        return None
    why = state_words({"up": False, **notice})
    if notice.get("undone"):
        return _("The change to trunk %(name)s was undone: %(why)s.", name=notice["trunk"], why=why)
    return _("Trunk %(name)s stopped working after a change (%(why)s); the change stays, because a later "
             "change was saved after it.", name=notice["trunk"], why=why)


def _rows(doc: dict[str, Any], live: dict[str, dict] | None) -> list[dict]:
    """Each trunk with its state in words (and ok: True, False, or None when unknown)."""
    rows = []
    for t in doc["trunks"]:
        state = (live or {}).get(t["name"])
        if not t.get("enabled", True):
            ok, words = None, _("off")
        elif live is None:
            ok, words = None, _("unknown: the appliance is not running")
        elif state is None:
            ok, words = None, _("the appliance has not taken it yet")
        else:
            ok, words = bool(state["up"]), state_words(state)
        rows.append({"trunk": t, "ok": ok, "words": words, "since": (state or {}).get("since")})
    return rows


@bp.route("/")
def index():
    store = get_store()
    doc = office.document(store)
    live, down = live_states()
    return render_template("trunks/index.html", rows=_rows(doc, live), down=down,
                           notice=notice_words(store.get_setting(trunkwatch.NOTICE)), dismiss=ConfirmForm())


def _page(form: TrunkForm, name: str | None = None, remove: ConfirmForm | None = None):
    return render_template("trunks/edit.html", form=form, name=name, kinds=KINDS, remove=remove or ConfirmForm())


def _name_taken(doc: dict[str, Any], form: TrunkForm, index: int | None) -> bool:
    name = form.name.data.strip()
    if any(t["name"] == name for i, t in enumerate(doc["trunks"]) if i != index):
        form.name.errors.append(_("Another trunk has this name."))
        return True
    return False


def _rename_in_routes(doc: dict[str, Any], old: str, new: str) -> None:
    """Routes that take calls from a trunk name it: keep them pointing at it under its new name."""
    for route in (doc.get("routing") or {}).get("routes") or []:
        if old in (route.get("trunks") or []):
            route["trunks"] = [new if t == old else t for t in route["trunks"]]


def _routes_using(doc: dict[str, Any], name: str) -> list[str]:
    return [str(r.get("name") or i + 1) for i, r in enumerate((doc.get("routing") or {}).get("routes") or [])
            if name in (r.get("trunks") or [])]


def _save(doc: dict[str, Any], summary: str, done: str) -> int:
    """Save the document (ConfigError goes to the caller), tell the running appliance; the version's id."""
    vid = office.save(get_store(), doc, who="owner", summary=summary)
    applied(done)
    return vid


@bp.route("/new", methods=("GET", "POST"))
def new():
    form = TrunkForm()
    if not form.is_submitted():
        return _page(form)
    doc = office.document(get_store())
    if not form.validate() or _name_taken(doc, form, None):
        return _page(form), 400
    item: dict[str, Any] = {}
    _fill(form, item)
    doc["trunks"].append(item)
    try:
        _save(doc, f"added trunk {item['name']}", _("Trunk %(name)s was added.", name=item["name"]))
    except ConfigError as err:
        office.put_error(form, err, ("trunks", len(doc["trunks"]) - 1))
        return _page(form), 400
    return redirect(url_for("trunks.index"))


@bp.route("/edit/<path:name>", methods=("GET", "POST"))
def edit(name: str):
    store = get_store()
    doc = office.document(store)
    i = _find(doc, name)
    form = TrunkForm()
    if not form.is_submitted():
        _load(form, doc["trunks"][i])
        return _page(form, name)
    if not form.validate() or _name_taken(doc, form, i):
        return _page(form, name), 400
    live, _down = live_states()
    was_up = bool(live and (live.get(name) or {}).get("up"))
    _fill(form, doc["trunks"][i])
    item = doc["trunks"][i]
    _rename_in_routes(doc, name, item["name"])
    try:
        vid = _save(doc, f"changed trunk {name}", _("Saved."))
    except ConfigError as err:
        office.put_error(form, err, ("trunks", i))
        return _page(form, name), 400
    if was_up and item["enabled"]:
        _watch(item["name"], vid)
    return redirect(url_for("trunks.index"))


def _watch(name: str, vid: int) -> None:
    """A trunk that worked before the change must work after it, or the change is undone."""
    before = PanelTables(get_store()).version_before(vid)
    if before is not None and trunkwatch.start(current_app.config["DATA_DIR"], name, before["id"], vid):
        flash(_("The appliance checks in the next %(s)d s that trunk %(name)s still works; if it does not, "
                "the change is undone.", s=trunkwatch.WATCH_SECONDS, name=name), "ok")


@bp.route("/remove/<path:name>", methods=("POST",))
def remove(name: str):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    doc = office.document(get_store())
    i = _find(doc, name)
    routes = _routes_using(doc, name)
    if routes:
        form.form_errors.append(_("Routes %(routes)s take calls only from this trunk; change them first.",
                                  routes=", ".join(routes)))
        return _refused(doc, i, name, form)
    doc["trunks"].pop(i)
    try:
        _save(doc, f"removed trunk {name}", _("Trunk %(name)s was removed.", name=name))
    except ConfigError as err:
        form.form_errors.append(_("The change was not saved: %(why)s", why=str(err)))
        return _refused(office.document(get_store()), i, name, form)
    return redirect(url_for("trunks.index"))


def _refused(doc: dict[str, Any], i: int, name: str, remove_form: ConfirmForm):
    form = TrunkForm(formdata=None)
    _load(form, doc["trunks"][i])
    return _page(form, name, remove=remove_form), 400


@bp.route("/notice", methods=("POST",))
def dismiss():
    """The owner has read what the watcher left."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    store = get_store()
    with store.transaction():
        store.set_setting(trunkwatch.NOTICE, None)
    return redirect(url_for("trunks.index"))
