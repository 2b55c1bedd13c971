"""Night switches: each switch's mode now and how it was set, the buttons that set it by hand, and its
configuration (name, the schedule it follows, where calls go by day and by night).

A mode change goes to the running appliance's night service (`night.set`, so the LEDs and every
listener hear of it at once), or, when the appliance is not running, to `NightService` on the store
directly, as `pbx night` and the dashboard do; the service keeps the state and its record.  A change
of configuration is a whole document checked by the import validator like every other page's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional

from appliance.errors import ConfigError
from appliance.routing.schedule import zone
from web import destinations, office, preview
from web.areas.dashboard import night_view
from web.areas.schedules import ID_RULE, ConfirmForm, new_ident, routing_of
from web.db import applied, ask, get_store

bp = Blueprint("night", __name__, url_prefix="/night")
NAV = (55, _l("Day and night"))

WHO = "panel"

# A button's value -> (the night service's mode, permanent).
BUTTONS = {
    "night": ("on", False),
    "night-permanent": ("on", True),
    "day": ("off", False),
    "day-permanent": ("off", True),
    "auto": ("auto", False),
}


class SwitchForm(FlaskForm):
    ident = StringField(_l("Id of the night switch"), validators=[Optional(), ID_RULE])
    name = StringField(_l("Name"), validators=[Length(max=80)])
    schedule = SelectField(_l("Follows the schedule"))
    day = SelectField(_l("By day, calls go to"))
    night = SelectField(_l("By night, calls go to"))


class ModeForm(FlaskForm):
    """The mode buttons: the pressed button's value comes in `mode`."""


def set_mode(sid: str, mode: str, permanent: bool) -> str | None:
    """Set a switch through the running appliance, or on the store when it is not running; None when set."""
    answer, error = ask("night.set", mode=mode, permanent=permanent, switch=sid, by=WHO)
    if answer is not None:
        return None
    from appliance.night.service import NightError, NightService

    try:
        NightService(get_store()).set(mode, permanent=permanent, switch=sid, by=WHO)
    except NightError as e:
        return str(e)
    return None


def local(iso: str | None, tz: str) -> str:
    """An ISO time as the office's wall clock, "2026-03-10 09:00"."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M")


def how_words(view: dict[str, Any], tz: str) -> str:
    """How the switch got its mode, in the owner's words."""
    by = view.get("by") or ""
    if view.get("how") == "permanent":
        return _("set by hand until changed back (%(by)s)", by=by)
    if view.get("how") == "temporary":
        if view.get("until"):
            return _("set by hand until %(until)s, when the schedule next changes (%(by)s)",
                     until=local(view["until"], tz), by=by)
        return _("set by hand until switched back (%(by)s)", by=by)
    return _("by the schedule")


def _switch_rows(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    config = routing_of(doc)
    tz = str(doc.get("timezone") or "Europe/Kyiv")
    views, down = night_view() if config.night else ({}, None)
    rows = []
    for sid, n in config.night.items():
        view = (views or {}).get(sid) or {}
        sched = config.schedules.get(n.schedule) if n.schedule else None
        rows.append({"id": sid, "name": n.name, "mode": view.get("mode"), "how": view.get("how"),
                     "how_words": how_words(view, tz) if view else "", "since": local(view.get("since"), tz),
                     "schedule": sched.name if sched else None, "day": destinations.describe(doc, n.day),
                     "night": destinations.describe(doc, n.night)})
    return rows, down


@bp.route("/")
def index(error: str | None = None):
    store = get_store()
    doc = office.document(store)
    rows, down = _switch_rows(doc)
    form, result = preview.from_request(store)
    return render_template("night/index.html", switches=rows, down=down, modes=ModeForm(), confirm=ConfirmForm(),
                           error=error, preview_form=form, preview_result=result,
                           preview_action=url_for("night.index"))


@bp.route("/<sid>/mode", methods=("POST",))
def mode(sid: str):
    if not ModeForm().validate_on_submit():
        abort(400)
    pressed = request.form.get("mode", "")
    if pressed not in BUTTONS:
        return index(error=_("'%(mode)s' is not a mode this page knows; nothing changed.", mode=pressed)), 400
    mode_word, permanent = BUTTONS[pressed]
    error = set_mode(sid, mode_word, permanent)
    if error:
        return index(error=_("Night mode did not change: %(why)s", why=error)), 400
    flash(_done(pressed), "ok")
    return redirect(url_for("night.index"))


def _done(pressed: str) -> str:
    return {"night": _("Night until the schedule next changes."), "night-permanent": _("Night until changed back."),
            "day": _("Day until the schedule next changes."), "day-permanent": _("Day until changed back."),
            "auto": _("The switch follows its schedule again.")}[pressed]


@bp.route("/new", methods=("GET", "POST"))
def new():
    return _edit(None)


@bp.route("/<sid>", methods=("GET", "POST"))
def edit(sid: str):
    return _edit(sid)


def _item(form: SwitchForm, ident: str) -> dict[str, Any]:
    item: dict[str, Any] = {"name": (form.name.data or "").strip() or ident, "day": form.day.data,
                            "night": form.night.data}
    if form.schedule.data:
        item["schedule"] = form.schedule.data
    return item


def _edit(sid: str | None):
    store = get_store()
    doc = office.document(store)
    config = routing_of(doc)
    if sid is not None and sid not in config.night:
        abort(404)
    if request.method == "GET":
        n = config.night.get(sid) if sid else None
        initial = {"name": n.name, "schedule": n.schedule or "", "day": n.day, "night": n.night} if n else {}
        form = SwitchForm(data=initial)
    else:
        form = SwitchForm()
    form.schedule.choices = [("", _("none: day until switched by hand"))] + \
        [(i, s.name) for i, s in config.schedules.items()]
    form.day.choices = form.night.choices = destinations.choices(doc, exclude=f"night:{sid}" if sid else None)
    status = 200
    if request.method == "POST":
        status = 400
        valid = form.validate()
        ident = sid if sid is not None else new_ident(form, config.night)
        if valid and ident:
            doc["routing"].setdefault("night", {})[ident] = _item(form, ident)
            try:
                office.save(store, doc, who="owner", summary=f"night switch {ident} saved")
            except ConfigError as e:
                office.put_error(form, e, ("routing", "night", ident))
            else:
                applied(_("Saved."))
                return redirect(url_for("night.index"))
    form_action = url_for("night.edit", sid=sid) if sid else url_for("night.new")
    return render_template("night/edit.html", form=form, sid=sid, action=form_action), status


@bp.route("/<sid>/delete", methods=("POST",))
def delete(sid: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    store = get_store()
    doc = office.document(store)
    if sid not in (doc["routing"].get("night") or {}):
        abort(404)
    del doc["routing"]["night"][sid]
    try:
        office.save(store, doc, who="owner", summary=f"night switch {sid} deleted")
    except ConfigError as e:
        return index(error=_("The change was not saved: %(why)s", why=e.message)), 400
    applied(_("Night switch deleted."))
    return redirect(url_for("night.index"))
