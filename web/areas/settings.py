"""Settings: the owner's password, how calls are carried out (`calls`), the time zone, and the
rules of missed-call cases (`missed`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import BooleanField, FloatField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from appliance.errors import ConfigError
from appliance.store.panel import PanelTables
from web import office
from web.auth import MIN_PASSWORD, PASSWORD_HASH
from web.db import applied, get_store

bp = Blueprint("settings", __name__, url_prefix="/settings")
NAV = (95, _l("Settings"))

CALL_NUMBERS = ("confirm_seconds", "transfer_ring_seconds", "voicemail_max", "session_expires")
MISSED_NUMBERS = ("callback_seconds", "short_abandon_seconds")


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[
        DataRequired(), Length(min=MIN_PASSWORD, max=200, message=_l("At least %(min)d characters.", min=MIN_PASSWORD))])
    confirm = PasswordField(_l("The same password again"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))])


class CallsForm(FlaskForm):
    timezone = StringField(_l("Time zone of the office"), validators=[DataRequired()])
    language = SelectField(_l("What callers and desk phones hear"),
                           choices=[("uk", "Українська"), ("en", "English")])
    ringback = SelectField(_l("What a caller hears while phones ring"), choices=[
        ("180", _l("the provider's own ringing")), ("tone", _l("a ringing tone from the appliance")),
        ("music", _l("music from the appliance"))])
    confirm_seconds = IntegerField(_l("Seconds a mobile has to press the key that takes a group call"),
                                   validators=[Optional()])
    confirm_key = SelectField(_l("That key"), choices=[(k, k) for k in "1234567890*#"])
    transfer_ring_seconds = IntegerField(_l("Seconds the target of a blind transfer rings"), validators=[Optional()])
    voicemail_max = IntegerField(_l("Longest voicemail message, seconds"), validators=[Optional()])
    session_expires = IntegerField(_l("Session timer, seconds"), validators=[Optional()])
    media_address = StringField(_l("Address phones send call audio to"), validators=[Optional()])
    trunk_public = StringField(_l("Public address providers send call audio to"), validators=[Optional()])
    callback_seconds = IntegerField(_l("A call back closes a missed call when it talked at least (seconds)"),
                                    validators=[Optional()])
    short_abandon_seconds = IntegerField(_l("A caller who hangs up sooner than this is a short abandon (seconds)"),
                                         validators=[Optional()])
    assign_to = SelectField(_l("Missed calls of unknown callers go to"))
    deadline_minutes = IntegerField(_l("A missed call nobody handled for this many minutes is escalated"),
                                    validators=[Optional()])
    escalate_to = SelectField(_l("Escalated to"))
    working_hours = SelectField(_l("The deadline counts only while this schedule is open"))
    auto_callback = BooleanField(_l("Call missed customers back automatically"))
    callback_attempts = IntegerField(_l("Attempts per missed call"), validators=[Optional()])
    callback_spacing_minutes = FloatField(_l("Minutes between two attempts"), validators=[Optional()])
    callback_anyone = BooleanField(_l("When the person a missed call is given to is busy, any free member of "
                                      "the group the call was for"))


def _calls_form(doc: dict[str, Any]) -> CallsForm:
    calls, missed = doc.get("calls") or {}, doc.get("missed") or {}
    form = CallsForm()
    form.assign_to.choices = [("", _("the first extension the call rang"))] + [
        (str(e["number"]), f"{e['number']} {e.get('name') or ''}".strip()) for e in doc.get("extensions") or []]
    people = [(str(e["number"]), f"{e['number']} {e.get('name') or ''}".strip()) for e in doc.get("extensions") or []]
    form.escalate_to.choices = [("", _("nobody: no escalation"))] + people
    schedules = (doc.get("routing") or {}).get("schedules") or {}
    form.working_hours.choices = [("", _("every minute of the week"))] + [
        (f"schedule:{sid}", (item or {}).get("name") or sid) for sid, item in schedules.items()]
    if request.method == "GET":
        form.timezone.data = doc.get("timezone") or "Europe/Kyiv"
        form.language.data = calls.get("language", "uk")
        ringback = calls.get("ringback", "180")
        form.ringback.data = ringback if isinstance(ringback, str) else ringback.get("default", "180")
        form.confirm_key.data = calls.get("confirm_key", "1")
        for key in CALL_NUMBERS:
            getattr(form, key).data = calls.get(key)
        form.media_address.data = calls.get("media_address", "")
        form.trunk_public.data = calls.get("trunk_public", "")
        for key in MISSED_NUMBERS:
            getattr(form, key).data = missed.get(key)
        form.assign_to.data = missed.get("assign_to", "")
        form.deadline_minutes.data = missed.get("deadline_minutes")
        form.escalate_to.data = missed.get("escalate_to", "")
        form.working_hours.data = missed.get("working_hours", "")
        form.auto_callback.data = bool(missed.get("auto_callback", False))
        form.callback_attempts.data = missed.get("callback_attempts")
        form.callback_spacing_minutes.data = missed.get("callback_spacing_minutes")
        form.callback_anyone.data = bool(missed.get("callback_anyone", True))
    return form


def _apply(form: CallsForm, doc: dict[str, Any]) -> None:
    calls = dict(doc.get("calls") or {})
    doc["timezone"] = form.timezone.data.strip()
    calls["language"] = form.language.data
    old = calls.get("ringback")
    if isinstance(old, dict):  # per-destination choices stay; the page sets the default
        calls["ringback"] = {**old, "default": form.ringback.data}
    else:
        calls["ringback"] = form.ringback.data
    calls["confirm_key"] = form.confirm_key.data
    for key in CALL_NUMBERS:
        _set(calls, key, getattr(form, key).data)
    for key in ("media_address", "trunk_public"):
        _set(calls, key, (getattr(form, key).data or "").strip() or None)
    doc["calls"] = calls
    missed = dict(doc.get("missed") or {})
    for key in MISSED_NUMBERS:
        _set(missed, key, getattr(form, key).data)
    _set(missed, "assign_to", form.assign_to.data or None)
    _set(missed, "deadline_minutes", form.deadline_minutes.data)
    _set(missed, "escalate_to", form.escalate_to.data or None)
    _set(missed, "working_hours", form.working_hours.data or None)
    # The defaults (off; anyone free) are left out, as in an imported file.
    _set(missed, "auto_callback", True if form.auto_callback.data else None)
    _set(missed, "callback_attempts", form.callback_attempts.data)
    spacing = form.callback_spacing_minutes.data
    _set(missed, "callback_spacing_minutes", int(spacing) if spacing is not None and spacing == int(spacing) else spacing)
    _set(missed, "callback_anyone", None if form.callback_anyone.data else False)
    doc["missed"] = missed


def _set(section: dict, key: str, value: Any) -> None:
    if value is None:
        section.pop(key, None)
    else:
        section[key] = value


@bp.route("/", methods=("GET", "POST"))
def index():
    store = get_store()
    doc = office.document(store)
    form = _calls_form(doc)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            _apply(form, doc)
            try:
                office.save(store, doc, "owner", _("settings of calls and missed calls"))
            except ConfigError as e:
                office.put_error(form, e, (e.path[0],) if e.path[:1] in (("calls",), ("missed",)) else ())
                status = 400
            else:
                applied(_("Saved."))
                return redirect(url_for("settings.index"))
        else:
            status = 400
    return render_template("settings/index.html", form=form, password=PasswordForm(formdata=None)), status


@bp.route("/password", methods=("POST",))
def password():
    store = get_store()
    form = PasswordForm()
    if form.validate_on_submit():
        if check_password_hash(store.get_setting(PASSWORD_HASH) or "", form.current.data):
            store.set_setting(PASSWORD_HASH, generate_password_hash(form.password.data))
            PanelTables(store).end_all_sessions(keep=session.get("sid"))
            flash(_("The owner password is changed; other browsers must log in again."), "ok")
            return redirect(url_for("settings.index"))
        form.current.errors = [_("Wrong password.")]
    doc = office.document(store)
    calls = _calls_form(doc)
    return render_template("settings/index.html", form=calls, password=form), 400
