"""Duty rosters: who takes the calls after hours, as a calendar of four weeks, and the forms that change
the roster's entries (weekdays or dates → a mobile) and its settings.

Each day of the calendar is asked of the routing core's own `on_duty` at that day's changeover time,
the function a live call and `pbx duty` use, so the calendar cannot disagree with what a call does.
Numbers are read the way routing compares them (`numbers.normalise`): 067 123 45 67, 380671234567 and
+380671234567 are one number, saved in the last form.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from appliance.errors import ConfigError
from appliance.routing.model import DutyRoster
from appliance.routing.numbers import is_external, normalise
from appliance.routing.router import on_duty
from appliance.routing.schedule import minutes_label, parse_clock, parse_days, zone
from web import destinations, office
from web.areas.schedules import DAY_SHORT, ID_RULE, ConfirmForm, new_ident, routing_of, split_list
from web.db import applied, get_store

bp = Blueprint("duty", __name__, url_prefix="/duty")
NAV = (60, _l("Duty roster"))

WEEKS = 4
# The validator's keys that the settings form shows as one field.
ALIASES = {"on_no_answer": "on_fail", "on_busy": "on_fail", "on_unavailable": "on_fail", "on_failure": "on_fail",
           "rings": "ring_time"}
SPECIFIC_EXITS = ("on_no_answer", "on_busy", "on_unavailable", "on_failure")


# ---- checks of what the owner typed --------------------------------------------------------------

def check_clock(form: FlaskForm, field: StringField) -> None:
    try:
        parse_clock((field.data or "").strip())
    except ValueError:
        raise ValidationError(_("Write a time of day like 08:00.")) from None


def check_weekdays(form: FlaskForm, field: StringField) -> None:
    text = (field.data or "").strip()
    if not text:
        return
    try:
        parse_days(text)
    except ValueError:
        raise ValidationError(_("'%(text)s' is not a day or days: write mon, mon-thu or sat,sun.", text=text)) from None


def check_dates(form: FlaskForm, field: StringField) -> None:
    for text in split_list((field.data or "").replace(" ", ",")):
        try:
            date.fromisoformat(text)
        except ValueError:
            raise ValidationError(_("'%(text)s' is not a date like 2026-12-31.", text=text)) from None
        if len(text) != 10:
            raise ValidationError(_("'%(text)s' is not a date like 2026-12-31.", text=text))


def check_number(form: FlaskForm, field: StringField) -> None:
    if not is_external(normalise(field.data or "")):
        raise ValidationError(_("'%(text)s' is not a phone number outside the office, like 067 123 45 67 "
                                "or +380671234567.", text=field.data or ""))


# ---- the forms ---------------------------------------------------------------------------------

class RosterForm(FlaskForm):
    ident = StringField(_l("Id of the roster"), validators=[Optional(), ID_RULE])
    name = StringField(_l("Name"), validators=[Length(max=80)])
    changeover = StringField(_l("Changeover time"), default="08:00", validators=[check_clock])
    ring_time = IntegerField(_l("Ring the duty mobile for (seconds)"), default=30,
                             validators=[NumberRange(5, 600, _l("From 5 to 600 seconds."))])
    confirm = BooleanField(_l("The duty phone presses a key to take the call"), default=True)
    nobody = SelectField(_l("When nobody is on duty, calls go to"))
    on_fail = SelectField(_l("When the duty mobile does not answer, calls go to"))


class EntryForm(FlaskForm):
    weekdays = StringField(_l("Weekdays on duty"), validators=[check_weekdays])
    dates = StringField(_l("Dates on duty"), validators=[check_dates])
    number = StringField(_l("Mobile on duty"), validators=[DataRequired(_l("Give the duty mobile's number.")), check_number])

    def validate(self, extra_validators=None) -> bool:
        """An entry needs weekdays or dates; when both are missing, it is said next to the weekdays."""
        ok = super().validate(extra_validators)
        if not (self.weekdays.data or "").strip() and not (self.dates.data or "").strip():
            self.weekdays.errors = [*self.weekdays.errors, _("Give weekdays or dates.")]
            return False
        return ok


# ---- the calendar --------------------------------------------------------------------------------

def duty_day(roster: DutyRoster, now: datetime) -> date:
    """The roster's day now: before the changeover, still yesterday's."""
    return on_duty(roster, now)[0]


def calendar(roster: DutyRoster, first: date, today: date) -> list[list[dict[str, Any]]]:
    """WEEKS rows of seven days from the Monday of `first`'s week: who is on duty each day, asked of the
    routing core at that day's changeover (the moment the day's duty begins)."""
    monday = first - timedelta(days=first.weekday())
    dated = {d for e in roster.entries for d in e.dates}
    weeks = []
    for w in range(WEEKS):
        week = []
        for i in range(7):
            day = monday + timedelta(days=7 * w + i)
            start = datetime.combine(day, time(0), tzinfo=zone(roster.timezone)) + timedelta(minutes=roster.changeover)
            week.append({"date": day, "number": on_duty(roster, start)[1], "by_date": day.isoformat() in dated,
                         "today": day == today, "past": day < today})
        weeks.append(week)
    return weeks


def first_day(today: date) -> date:
    """The calendar's first week: `?start=YYYY-MM-DD`, else this week."""
    try:
        return date.fromisoformat(request.args.get("start", ""))
    except ValueError:
        return today


def _days_words(days: tuple[int, ...]) -> str:
    return ", ".join(str(DAY_SHORT[d]) for d in days)


def _roster_view(doc: dict[str, Any], rid: str, r: DutyRoster) -> dict[str, Any]:
    today = duty_day(r, datetime.now(timezone.utc))
    first = first_day(today)
    return {"id": rid, "r": r, "today": today, "on_duty": on_duty(r, datetime.now(timezone.utc))[1],
            "weeks": calendar(r, first, today), "changeover": minutes_label(r.changeover), "day_names": DAY_SHORT,
            "earlier": (first - timedelta(days=7 * WEEKS)).isoformat(),
            "later": (first + timedelta(days=7 * WEEKS)).isoformat(),
            "entries": [{"weekdays": _days_words(e.weekdays), "dates": ", ".join(e.dates), "number": e.number}
                        for e in r.entries],
            "nobody": destinations.describe(doc, r.nobody),
            "on_fail": destinations.describe(doc, r.exits.no_answer)}


# ---- pages ---------------------------------------------------------------------------------------

@bp.route("/")
def index(error: str | None = None):
    doc = office.document(get_store())
    rosters = [_roster_view(doc, rid, r) for rid, r in routing_of(doc).duty.items()]
    return render_template("duty/index.html", rosters=rosters, confirm=ConfirmForm(), error=error)


def _roster_page(rid: str, entry: EntryForm | None = None, settings: RosterForm | None = None,
                 error: str | None = None, status: int = 200):
    doc = office.document(get_store())
    config = routing_of(doc)
    if rid not in config.duty:
        abort(404)
    if settings is None:
        settings = RosterForm(formdata=None, data=_initial(doc, rid))
        _set_choices(settings, doc)
    if entry is None:
        entry = EntryForm(formdata=None)
    view = _roster_view(doc, rid, config.duty[rid])
    return render_template("duty/roster.html", roster=view, entry=entry, settings=settings, confirm=ConfirmForm(),
                           error=error), status


def _initial(doc: dict[str, Any], rid: str) -> dict[str, Any]:
    r = routing_of(doc).duty[rid]
    return {"name": r.name, "changeover": minutes_label(r.changeover), "ring_time": r.ring_time,
            "confirm": r.confirm, "nobody": r.nobody, "on_fail": r.exits.no_answer}


def _set_choices(form: RosterForm, doc: dict[str, Any]) -> None:
    form.nobody.choices = form.on_fail.choices = destinations.choices(doc)


def _apply_settings(form: RosterForm, item: dict[str, Any], ident: str, shown_on_fail: str | None) -> None:
    """Copy the settings into the roster's item; keys the form does not show (timezone, the roster) stay.

    The four separate exits a file may give are replaced only when the owner changed the one shown."""
    item["name"] = (form.name.data or "").strip() or ident
    item["changeover"] = form.changeover.data.strip()
    item.pop("rings", None)
    item["ring_time"] = form.ring_time.data
    item["confirm"] = bool(form.confirm.data)
    item["nobody"] = form.nobody.data
    if form.on_fail.data != shown_on_fail:
        for key in SPECIFIC_EXITS:
            item.pop(key, None)
        item["on_fail"] = form.on_fail.data


def _save(doc: dict[str, Any], summary: str) -> None:
    office.save(get_store(), doc, who="owner", summary=summary)


@bp.route("/new", methods=("GET", "POST"))
def new():
    doc = office.document(get_store())
    form = RosterForm()
    _set_choices(form, doc)
    if request.method == "GET":
        return render_template("duty/new.html", form=form)
    valid = form.validate()
    ident = new_ident(form, routing_of(doc).duty)
    if valid and ident:
        item: dict[str, Any] = {"roster": []}
        _apply_settings(form, item, ident, None)
        doc["routing"].setdefault("duty", {})[ident] = item
        try:
            _save(doc, f"duty roster {ident} added")
        except ConfigError as e:
            office.put_error(form, e, ("routing", "duty", ident), ALIASES)
        else:
            applied(_("Saved."))
            return redirect(url_for("duty.roster", rid=ident))
    return render_template("duty/new.html", form=form), 400


@bp.route("/<rid>", methods=("GET", "POST"))
def roster(rid: str):
    if request.method == "GET":
        return _roster_page(rid)
    doc = office.document(get_store())
    if rid not in (doc["routing"].get("duty") or {}):
        abort(404)
    form = RosterForm()
    _set_choices(form, doc)
    if form.validate():
        _apply_settings(form, doc["routing"]["duty"][rid], rid, _initial(doc, rid)["on_fail"])
        try:
            _save(doc, f"duty roster {rid} saved")
        except ConfigError as e:
            office.put_error(form, e, ("routing", "duty", rid), ALIASES)
        else:
            applied(_("Saved."))
            return redirect(url_for("duty.roster", rid=rid))
    return _roster_page(rid, settings=form, status=400)


@bp.route("/<rid>/entries", methods=("POST",))
def add_entry(rid: str):
    doc = office.document(get_store())
    if rid not in (doc["routing"].get("duty") or {}):
        abort(404)
    form = EntryForm()
    if form.validate():
        entries = doc["routing"]["duty"][rid].setdefault("roster", [])
        entry: dict[str, Any] = {"number": normalise(form.number.data)}
        if (form.weekdays.data or "").strip():
            entry["weekdays"] = [form.weekdays.data.strip().lower()]
        if (form.dates.data or "").strip():
            entry["dates"] = split_list(form.dates.data.replace(" ", ","))
        entries.append(entry)
        try:
            _save(doc, f"duty roster {rid}: {entry['number']} added")
        except ConfigError as e:
            office.put_error(form, e, ("routing", "duty", rid))
        else:
            applied(_("Saved."))
            return redirect(url_for("duty.roster", rid=rid))
    return _roster_page(rid, entry=form, status=400)


@bp.route("/<rid>/entries/<int:index>/delete", methods=("POST",))
def remove_entry(rid: str, index: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    doc = office.document(get_store())
    entries = ((doc["routing"].get("duty") or {}).get(rid) or {}).get("roster") or []
    if not 0 <= index < len(entries):
        abort(404)
    removed = entries.pop(index)
    try:
        _save(doc, f"duty roster {rid}: {removed.get('number')} removed")
    except ConfigError as e:
        return _roster_page(rid, error=_("The change was not saved: %(why)s", why=e.message), status=400)
    applied(_("Saved."))
    return redirect(url_for("duty.roster", rid=rid))


@bp.route("/<rid>/delete", methods=("POST",))
def delete(rid: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    doc = office.document(get_store())
    if rid not in (doc["routing"].get("duty") or {}):
        abort(404)
    del doc["routing"]["duty"][rid]
    try:
        _save(doc, f"duty roster {rid} deleted")
    except ConfigError as e:
        return index(error=_("The change was not saved: %(why)s", why=e.message)), 400
    applied(_("Duty roster deleted."))
    return redirect(url_for("duty.index"))
