"""Missed calls: the open cases first (oldest first) with who called, how often, how long they waited,
whom the case is given to and how long it is open; the closed ones below.  A case is closed with a note,
given to another extension, or the customer is called back from an extension (click-to-call).

The running appliance does every change (`missed.done`, `missed.assign`, `calls.originate` on the control
socket), so its events and e-mails go out at once; when it is not running the missed service works on
the store directly (`missed.*` only: calling back needs the appliance) and the outbox waits for its start.
The e-mail settings (`mail`) are saved through the configuration's validator like every other page.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import get_locale, gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from appliance.control import ControlError
from appliance.errors import ConfigError
from appliance.missed import letters
from appliance.missed.service import MAX_NOTE, MissedError, MissedService
from appliance.store.mail import MailOutbox
from web import office
from web.db import applied, ask, control, get_store

bp = Blueprint("missed", __name__, url_prefix="/missed")
NAV = (5, _l("Missed calls"))

CLOSED_SHOWN = 50
BY = "panel"


class DoneForm(FlaskForm):
    note = TextAreaField(_l("What was done"), validators=[Length(max=MAX_NOTE)])


class AssignForm(FlaskForm):
    ext = SelectField(_l("Give to"), validators=[DataRequired(_l("Choose whom to give it to."))])


class CallForm(FlaskForm):
    ext = SelectField(_l("Call from"), validators=[DataRequired(_l("Choose whose phone calls."))])


class MailForm(FlaskForm):
    host = StringField(_l("SMTP server"), validators=[Optional()])
    port = IntegerField(_l("SMTP port"), validators=[Optional()])
    security = SelectField(_l("Connection security"), choices=[
        ("starttls", _l("STARTTLS (port 587)")), ("tls", _l("TLS from the start (port 465)")),
        ("none", _l("none (a server in the office only)"))])
    username = StringField(_l("SMTP login"), validators=[Optional()])
    # Write-only: the page never shows the password; empty keeps the one saved.
    password = PasswordField(_l("SMTP password"), validators=[Optional()])
    sender = StringField(_l("Sender address"), validators=[Optional()])
    owner = StringField(_l("Owner's address for the daily summary"), validators=[Optional()])
    summary_at = StringField(_l("Time of the daily summary"), validators=[Optional()])


# -- asking the appliance, else the store ------------------------------------------------


def _change(cmd: str, direct: Callable[[MissedService], dict], **args: Any) -> tuple[dict | None, str | None]:
    """Run a missed command in the running appliance; when none runs, the same change on the store."""
    client = control()
    try:
        client.connect()
    except ControlError:
        try:
            return direct(MissedService(get_store())), None
        except MissedError as e:
            return None, str(e)
    try:
        with client:
            return client.request(cmd, **args), None
    except ControlError as e:
        return None, str(e)


def cases() -> tuple[list[dict], str | None]:
    """Every case the appliance lists (open first), and why the appliance did not answer (None: it did)."""
    answer, down = ask("missed.list", all=True)
    if answer is None:
        answer = MissedService(get_store()).list(include_closed=True)
    return answer["cases"], down


# -- what the page shows -------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """"2 год 5 хв" / "2 h 5 min": the words the e-mails use, in the panel's language."""
    return letters.duration(seconds, str(get_locale() or "uk"))


def _since(iso: str | None, now: datetime) -> float:
    if not iso:
        return 0.0
    at = datetime.fromisoformat(iso)
    return (now - (at if at.tzinfo else at.replace(tzinfo=timezone.utc))).total_seconds()


def ending(how: str | None) -> str:
    return {"called back": _("called back by an extension"), "answered": _("answered when they called again"),
            "callback": _("automatic callback"), "done": _("marked done"),
            "short abandon": _("short abandon (hung up at once)")}.get(how or "", how or "")


def attempt_result(result: str | None) -> str:
    """An automatic callback attempt's result in the panel's language (the store keeps the engine's words)."""
    if result is None:
        return _("under way")
    if result.startswith("refused: "):
        return _("refused: %(why)s", why=result[len("refused: "):])
    return {"the customer answered": _("the customer answered"),
            "the customer did not answer": _("the customer did not answer"),
            "the customer was busy": _("the customer was busy"),
            "the agent did not answer": _("the agent did not answer"),
            "the agent's phone was busy": _("the agent's phone was busy"),
            "the agent hung up before the customer answered": _("the agent hung up before the customer answered"),
            "no trunk carried the call to the customer": _("no trunk carried the call to the customer"),
            "the appliance stopped during the attempt": _("the appliance stopped during the attempt"),
            }.get(result, result)


def local_time(iso: str | None, tz: str) -> str:
    """"03.03 11:05" in the office's time zone."""
    if not iso:
        return ""
    at = datetime.fromisoformat(iso)
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(ZoneInfo(tz)).strftime("%d.%m %H:%M")


def _extension_choices() -> list[tuple[str, str]]:
    return [("", _("— choose —"))] + [(e["number"], f"{e['number']} {e['name']}") for e in get_store().extensions()]


def _row_forms(case: dict, choices: list[tuple[str, str]], failed: dict) -> dict[str, FlaskForm]:
    """A case's three forms: the one that was just refused (with its errors), else fresh ones."""
    out: dict[str, FlaskForm] = {}
    for kind, cls in (("done", DoneForm), ("assign", AssignForm), ("call", CallForm)):
        form = failed.get((case["id"], kind)) or cls(formdata=None)
        if kind != "done":
            form.ext.choices = choices
            if not form.ext.data:
                form.ext.data = case.get("assigned_to") or ""
        out[kind] = form
    return out


def _mail_form(doc: dict[str, Any]) -> MailForm:
    mail = doc.get("mail") or {}
    form = MailForm(formdata=None)
    for key in ("host", "port", "username", "owner", "summary_at"):
        getattr(form, key).data = mail.get(key)
    form.security.data = mail.get("security", "starttls")
    form.sender.data = mail.get("from")
    return form


@bp.route("/")
def index(failed: dict | None = None, mail_form: MailForm | None = None):
    store = get_store()
    rows, down = cases()
    now = datetime.now(timezone.utc)
    choices = _extension_choices()
    names = {e["number"]: e["name"] for e in store.extensions()}
    open_rows = [c for c in rows if c["status"] == "open"]
    closed = [c for c in rows if c["status"] != "open"][:CLOSED_SHOWN]
    for c in open_rows:
        c["open_s"] = _since(c.get("opened_at"), now)
        c["forms"] = _row_forms(c, choices, failed or {})
    # A refusal about a case no longer open (closed meanwhile) has no form on the page to stand next to.
    shown = {c["id"] for c in open_rows}
    lost = [e for (case_id, _kind), form in (failed or {}).items() if case_id not in shown
            for errors in form.errors.values() for e in errors]
    doc = office.document(store)
    waiting = MailOutbox(store).waiting()
    refused = next((m for m in reversed(waiting) if m.last_error), None)
    return render_template("missed/index.html", open_cases=open_rows, closed=closed, down=down, names=names,
                           duration=duration, ending=ending, lost=lost, attempt_result=attempt_result,
                           when=lambda iso: local_time(iso, store.timezone),
                           mail=mail_form or _mail_form(doc), password_saved=bool((doc.get("mail") or {}).get("password")),
                           waiting=waiting, refused=refused)


# -- the actions on a case -------------------------------------------------------------------


def _refused(case_id: int, kind: str, form: FlaskForm, message: str | None = None, field: str | None = None):
    if message:
        getattr(form, field).errors = [*getattr(form, field).errors, message]
    return index(failed={(case_id, kind): form}), 400


@bp.route("/<int:case_id>/done", methods=("POST",))
def done(case_id: int):
    form = DoneForm()
    if not form.validate_on_submit():
        return _refused(case_id, "done", form)
    note = (form.note.data or "").strip() or None
    _answer, error = _change("missed.done", lambda s: s.done(case_id, BY, note), id=case_id, note=note, by=BY)
    if error:
        return _refused(case_id, "done", form, error, "note")
    flash(_("Case %(id)d is closed.", id=case_id), "ok")
    return redirect(url_for("missed.index"))


@bp.route("/<int:case_id>/assign", methods=("POST",))
def assign(case_id: int):
    form = AssignForm()
    form.ext.choices = _extension_choices()
    if not form.validate_on_submit():
        return _refused(case_id, "assign", form)
    ext = form.ext.data
    _answer, error = _change("missed.assign", lambda s: s.assign(case_id, ext, BY), id=case_id, ext=ext, by=BY)
    if error:
        return _refused(case_id, "assign", form, error, "ext")
    flash(_("Case %(id)d is given to %(ext)s.", id=case_id, ext=ext), "ok")
    return redirect(url_for("missed.index"))


@bp.route("/<int:case_id>/call", methods=("POST",))
def call(case_id: int):
    """Click-to-call: the extension's phone rings, and when it answers the appliance dials the customer."""
    form = CallForm()
    form.ext.choices = _extension_choices()
    if not form.validate_on_submit():
        return _refused(case_id, "call", form)
    case = MissedService(get_store()).tables.case(case_id)
    if case is None or not case["caller"]:
        return _refused(case_id, "call", form, _("This case has no number to call."), "ext")
    _answer, error = ask("calls.originate", ext=form.ext.data, number=case["caller"])
    if error:
        return _refused(case_id, "call", form, _("The call was not placed: %(why)s", why=error), "ext")
    flash(_("Extension %(ext)s rings now; when it answers, %(number)s is dialled.", ext=form.ext.data,
            number=case["caller"]), "ok")
    return redirect(url_for("missed.index"))


# -- e-mail settings -----------------------------------------------------------------------


@bp.route("/mail", methods=("POST",))
def mail():
    store = get_store()
    doc = office.document(store)
    form = MailForm()
    if not form.validate_on_submit():
        return index(mail_form=form), 400
    old = doc.get("mail") or {}
    section: dict[str, Any] = {}
    for key, value in (("host", form.host.data), ("port", form.port.data), ("username", form.username.data),
                       ("from", form.sender.data), ("owner", form.owner.data), ("summary_at", form.summary_at.data)):
        value = value.strip() if isinstance(value, str) else value
        if value not in (None, ""):
            section[key] = value
    if section.get("host"):
        section["security"] = form.security.data
    if form.password.data:
        section["password"] = form.password.data
    elif old.get("password") and section.get("username"):
        section["password"] = old["password"]
    if "timeout_seconds" in old:
        section["timeout_seconds"] = old["timeout_seconds"]
    doc["mail"] = section
    try:
        office.save(store, doc, "owner", _("e-mail settings"))
    except ConfigError as e:
        office.put_error(form, e, ("mail",), aliases={"from": "sender"})
        return index(mail_form=form), 400
    applied(_("Saved."))
    return redirect(url_for("missed.index"))
