"""Schedules (time switches) and holidays: the opening hours of each weekday, the holidays, and where
calls go while the office is open and while it is closed.

The edit page is a week grid: one text field of ranges per weekday, each read with the routing core's
own `parse_range`, so the page accepts exactly what `pbx config import` accepts.  The whole document
then goes through the import validator (`web.office.save`), which also refuses a week with a gap and
no `closed` destination; its reason is shown next to the field it names.

A schedule's own overrides (routing_state "overrides") are not offered here: nothing in the appliance
writes them yet (no service or control command), and writing the key from the panel would change
routing without the event and the record a night switch's change has.  The night page sets the
night switches, which is what the button and `*28` do.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional, Regexp, ValidationError

from appliance.errors import ConfigError
from appliance.routing.config import parse
from appliance.routing.model import WEEKDAYS, RoutingConfig, Schedule
from appliance.routing.schedule import DAY, Clock, minutes_label, parse_range
from web import destinations, office, preview
from web.db import applied, get_store
from web.forms import ConfirmForm

bp = Blueprint("schedules", __name__, url_prefix="/schedules")
NAV = (50, _l("Schedules and holidays"))

DAY_LABELS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
              _l("Sunday"))
DAY_SHORT = (_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun"))

# The caller the preview uses right after a save, so the page shows what a call now would do.
PREVIEW_CALLER = "0671234567"

ID_RULE = Regexp(r"^[A-Za-z0-9_.-]{1,40}$",
                 message=_l("Latin letters, digits, dots, dashes and underscores only, no spaces."))
HOLIDAY = re.compile(r"^(\d{4}-)?\d{2}-\d{2}$")


# ---- reading what the owner typed ----------------------------------------------------------------

def split_list(text: str | None) -> list[str]:
    """The items of a field that lists several (commas, semicolons or new lines between them)."""
    return [part.strip() for part in re.split(r"[,;\n]", text or "") if part.strip()]


def is_holiday(text: str) -> bool:
    """MM-DD (every year) or YYYY-MM-DD (once), a real date; 2000 is a leap year, so 02-29 is one."""
    if not HOLIDAY.match(text):
        return False
    try:
        date.fromisoformat(text if len(text) == 10 else f"2000-{text}")
    except ValueError:
        return False
    return True


def check_ranges(form: FlaskForm, field: StringField) -> None:
    for part in split_list(field.data):
        try:
            parse_range(part)
        except ValueError:
            raise ValidationError(_("'%(text)s' is not a range of hours like 09:00-18:00 "
                                    "(one past midnight, like 22:00-06:00, is fine).", text=part)) from None


def check_holidays(form: FlaskForm, field: TextAreaField) -> None:
    for line in split_list(field.data):
        if not is_holiday(line):
            raise ValidationError(_("'%(text)s' is not a date: write MM-DD for every year or YYYY-MM-DD "
                                    "for one day.", text=line))


# ---- the forms ---------------------------------------------------------------------------------

class ScheduleForm(FlaskForm):
    ident = StringField(_l("Id of the schedule"), validators=[Optional(), ID_RULE])
    name = StringField(_l("Name"), validators=[Length(max=80)])
    mon = StringField(DAY_LABELS[0], validators=[check_ranges])
    tue = StringField(DAY_LABELS[1], validators=[check_ranges])
    wed = StringField(DAY_LABELS[2], validators=[check_ranges])
    thu = StringField(DAY_LABELS[3], validators=[check_ranges])
    fri = StringField(DAY_LABELS[4], validators=[check_ranges])
    sat = StringField(DAY_LABELS[5], validators=[check_ranges])
    sun = StringField(DAY_LABELS[6], validators=[check_ranges])
    holidays = TextAreaField(_l("Holidays (closed all day)"), validators=[check_holidays])
    timezone = StringField(_l("Time zone of this schedule"), validators=[Optional(), Length(max=64)])
    open = SelectField(_l("While open, calls go to"))
    closed = SelectField(_l("While closed, calls go to"))

    def day_fields(self) -> list[StringField]:
        return [getattr(self, day) for day in WEEKDAYS]


# ---- shared with the night and duty pages ------------------------------------------------------------

def routing_of(doc: dict[str, Any]) -> RoutingConfig:
    """The document's routing as the routing core reads it (the saved document is always valid)."""
    extensions = {str(e["number"]): str(e.get("name") or "") for e in doc.get("extensions") or []}
    return parse(doc.get("routing") or {}, extensions, timezone=str(doc.get("timezone") or "Europe/Kyiv"))


def new_ident(form: FlaskForm, taken: dict[str, Any]) -> str | None:
    """The id typed on an "add" form, or None with the reason next to the field."""
    ident = (form.ident.data or "").strip()
    if not ident:
        form.ident.errors = [*form.ident.errors, _("This field is required.")]
        return None
    if ident in taken:
        form.ident.errors = [*form.ident.errors, _("%(id)s is taken; choose another id.", id=ident)]
        return None
    return ident


# ---- the week, read-only -------------------------------------------------------------------------

def day_ranges(schedule: Schedule) -> list[list[str]]:
    """Per weekday (Monday first), its ranges as the grid's fields show them ("22:00-06:00")."""
    out: list[list[str]] = [[] for _ in range(7)]
    for h in schedule.hours:
        end = h.end if h.end <= DAY else h.end - DAY
        out[h.day].append(f"{minutes_label(h.start)}-{minutes_label(end)}")
    return out


def week_grid(schedule: Schedule) -> list[dict[str, Any]]:
    """One row per weekday, with 24 hourly cells: "open", "part" (open for some of that hour) or "shut".

    The cells come from the routing core's compiled week (`Clock.by_day`), where a range past midnight
    already counts in the next morning's row."""
    clock = Clock(schedule)
    ranges = day_ranges(schedule)
    rows = []
    for day in range(7):
        cells = []
        for hour in range(24):
            start, end = hour * 60, hour * 60 + 60
            minutes = sum(max(0, min(end, b) - max(start, a)) for a, b, _back in clock.by_day[day])
            cells.append("open" if minutes >= 60 else "part" if minutes else "shut")
        rows.append({"day": DAY_SHORT[day], "label": DAY_LABELS[day], "cells": cells,
                     "ranges": ", ".join(ranges[day])})
    return rows


def used_by(config: RoutingConfig, sid: str) -> list[str]:
    """The night switches that follow this schedule (deleting it would leave them without one)."""
    return [n.name for n in config.night.values() if n.schedule == sid]


# ---- pages ---------------------------------------------------------------------------------------

def _page_preview(store: Any, action: str) -> dict[str, Any]:
    form, result = preview.from_request(store)
    return {"preview_form": form, "preview_result": result, "preview_action": action}


@bp.route("/")
def index(error: str | None = None):
    store = get_store()
    doc = office.document(store)
    config = routing_of(doc)
    rows = [{"id": sid, "s": s, "grid": week_grid(s), "used_by": used_by(config, sid),
             "open": destinations.describe(doc, s.open), "closed": destinations.describe(doc, s.closed)}
            for sid, s in config.schedules.items()]
    return render_template("schedules/index.html", schedules=rows, confirm=ConfirmForm(), error=error,
                           **_page_preview(store, url_for("schedules.index")))


@bp.route("/new", methods=("GET", "POST"))
def new():
    return _edit(None)


@bp.route("/<sid>", methods=("GET", "POST"))
def edit(sid: str):
    return _edit(sid)


def _initial(doc: dict[str, Any], config: RoutingConfig, sid: str | None) -> dict[str, Any]:
    """What the form shows first: the saved schedule, or office hours on weekdays for a new one."""
    if sid is None:
        return {**{day: "09:00-18:00" for day in WEEKDAYS[:5]}, "holidays": "01-01\n12-25",
                "timezone": doc.get("timezone") or "Europe/Kyiv"}
    s = config.schedules[sid]
    ranges = day_ranges(s)
    return {"name": s.name, **{day: ", ".join(ranges[i]) for i, day in enumerate(WEEKDAYS)},
            "holidays": "\n".join(s.holidays), "timezone": s.timezone, "open": s.open or "",
            "closed": s.closed or ""}


def _item(form: ScheduleForm, ident: str) -> dict[str, Any]:
    """The schedule as the routing section writes it."""
    item: dict[str, Any] = {
        "name": (form.name.data or "").strip() or ident,
        "hours": {day: split_list(getattr(form, day).data) for day in WEEKDAYS if split_list(getattr(form, day).data)},
        "holidays": split_list(form.holidays.data),
    }
    if (form.timezone.data or "").strip():
        item["timezone"] = form.timezone.data.strip()
    for key in ("open", "closed"):
        if getattr(form, key).data:
            item[key] = getattr(form, key).data
    return item


def _choices(doc: dict[str, Any], sid: str | None) -> tuple[list, list]:
    others = destinations.choices(doc, exclude=f"schedule:{sid}" if sid else None)
    return ([("", _("nowhere: this schedule is only a calendar for a night switch"))] + others,
            [("", _("nowhere (only when the hours cover the whole week, with no holidays)"))] + others)


def _edit(sid: str | None):
    store = get_store()
    doc = office.document(store)
    config = routing_of(doc)
    if sid is not None and sid not in config.schedules:
        abort(404)
    form = ScheduleForm(data=_initial(doc, config, sid)) if request.method == "GET" else ScheduleForm()
    form.open.choices, form.closed.choices = _choices(doc, sid)
    status = 200
    if request.method == "POST":
        status = 400
        valid = form.validate()
        ident = sid if sid is not None else new_ident(form, config.schedules)
        if valid and ident:
            doc["routing"].setdefault("schedules", {})[ident] = _item(form, ident)
            try:
                office.save(store, doc, who="owner", summary=f"schedule {ident} saved")
            except ConfigError as e:
                office.put_error(form, e, ("routing", "schedules", ident))
            else:
                applied(_("Schedule saved; below is what a call now would do."))
                return redirect(url_for("schedules.edit", sid=ident, caller=PREVIEW_CALLER,
                                        _anchor="route-preview"))
    page = render_template("schedules/edit.html", form=form, sid=sid,
                           grid=week_grid(config.schedules[sid]) if sid else None,
                           **_page_preview(store, url_for("schedules.edit", sid=sid) if sid else url_for("schedules.new")))
    return page, status


@bp.route("/<sid>/delete", methods=("POST",))
def delete(sid: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    store = get_store()
    doc = office.document(store)
    if sid not in (doc["routing"].get("schedules") or {}):
        abort(404)
    del doc["routing"]["schedules"][sid]
    try:
        office.save(store, doc, who="owner", summary=f"schedule {sid} deleted")
    except ConfigError as e:
        return index(error=_("The change was not saved: %(why)s", why=e.message)), 400
    applied(_("Schedule deleted."))
    return redirect(url_for("schedules.index"))
