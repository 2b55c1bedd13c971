"""Reports: the figures of a range of office days, tables by hour, weekday, day, person, group, number
and menu, the lost calls, staffing advice by Erlang C beside the load by hour, and each table as CSV.

The figures come from `appliance.reports.build_report` (the same as `pbx report`); the charts are SVG
drawn here from the figures (no script, no style attributes: the content security policy allows
neither; web/static/reports.css colours them by class).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField
from wtforms.validators import InputRequired, NumberRange, Optional, ValidationError

from appliance.reports import build_report
from appliance.reports.periods import MAX_DAYS, Period
from web.areas.calls import local_time
from web.db import get_store

bp = Blueprint("reports", __name__, url_prefix="/reports")
NAV = (85, _l("Reports"))

TABLES = ("hour", "weekday", "day", "person", "group", "number", "menu", "lost")
TITLES = {
    "hour": _l("By hour of day"), "weekday": _l("By weekday"), "day": _l("By day"),
    "person": _l("By person (who answered)"), "group": _l("By group and queue"),
    "number": _l("By dialled number"), "menu": _l("Where callers leave a menu"), "lost": _l("Lost calls"),
}
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"),
            _l("Sunday"))
ON_WEEKDAYS = (_l("Mondays"), _l("Tuesdays"), _l("Wednesdays"), _l("Thursdays"), _l("Fridays"), _l("Saturdays"),
               _l("Sundays"))
WHERE = {"menu": _l("in a menu"), "queue": _l("in a queue"), "ringing": _l("while it rang"), "other": _l("elsewhere")}
FIGURES = (
    ("calls_in", _l("Calls in")), ("calls_out", _l("Calls out")), ("offered", _l("Offered")),
    ("answered", _l("Answered")), ("missed", _l("Missed")), ("abandoned", _l("Abandoned")),
    ("short", _l("Short abandons")), ("voicemail", _l("Messages")), ("avg_wait", _l("Average wait, s")),
    ("p90_wait", _l("90th percentile of the wait, s")), ("service_level", _l("Service level")),
    ("avg_talk", _l("Average talk, s")),
)
DEST_COLUMNS = (("name", _l("Name")), ("entered", _l("Calls")), ("answered", _l("Answered")),
                ("lost", _l("Lost")), ("abandoned", _l("Abandoned")), ("avg_wait", _l("Average wait, s")))
MENU_COLUMNS = (("name", _l("Name")), ("entered", _l("Callers")), ("went_on", _l("Chose and went on")),
                ("gave_up", _l("Hung up in the menu")), ("ended", _l("Ended there otherwise")),
                ("went_to", _l("Went on to")))
LOST_COLUMNS = (("when", _l("When")), ("caller", _l("Caller")), ("dialled", _l("Dialled number")),
                ("wait_s", _l("Wait, s")), ("where", _l("Gave up")), ("called_back", _l("Called back")))


class RangeForm(FlaskForm):
    class Meta:
        csrf = False  # a report changes nothing, and its address can be bookmarked

    day_from = DateField(_l("First day"), validators=[InputRequired(_l("Choose the first day."))])
    day_to = DateField(_l("Last day"), validators=[InputRequired(_l("Choose the last day."))])
    within = IntegerField(_l("Answered within, s"), default=20,
                          validators=[Optional(), NumberRange(1, 600, _l("From 1 to 600 seconds."))])

    def validate_day_to(self, field: DateField) -> None:
        if field.data and self.day_from.data:
            if field.data < self.day_from.data:
                raise ValidationError(_("The last day comes before the first."))
            if (field.data - self.day_from.data).days + 1 > MAX_DAYS:
                raise ValidationError(_("A report covers at most %(n)d days.", n=MAX_DAYS))


def _form() -> RangeForm:
    args = request.args
    if not args:
        today = datetime.now(ZoneInfo(get_store().timezone)).date()   # the office's today
        args = {"day_from": (today - timedelta(days=6)).isoformat(), "day_to": today.isoformat(), "within": "20"}
    return RangeForm(formdata=_Args(args))


class _Args(dict):
    """A plain mapping as form data (wtforms asks for getlist)."""

    def getlist(self, key: str) -> list:
        value = self.get(key)
        return [] if value is None else [value]


def _report(form: RangeForm):
    store = get_store()
    period = Period(form.day_from.data, form.day_to.data, store.timezone)
    return build_report(store, period, answer_within_s=float(form.within.data or 20)), store.timezone


def _labelled(rep: Any, tz: str) -> dict[str, list[dict]]:
    """The report's tables with keys and values in words."""
    tables = {k: [dict(r) for r in rows] for k, rows in rep.tables.items()}
    for r in tables.get("hour", []):
        r["label"], r["tick"] = f"{r['key']:02d}:00", f"{r['key']:02d}"
    for r in tables.get("weekday", []):
        r["label"] = str(WEEKDAYS[r["key"]])
        r["tick"] = r["label"][:2]
    for name in ("day", "person", "number", "group", "menu"):
        for r in tables.get(name, []):
            r["label"] = r.get("name") or r["key"] or "-"
    lost = []
    for c in rep.lost:
        back = ""
        if c["called_back_at"]:
            back = _("yes, %(when)s", when=local_time(c["called_back_at"], tz))
        elif c["ended_how"] == "answered":
            back = _("called again and was answered")
        elif c["ended_how"] == "done":
            back = _("handled by %(who)s", who=c["closed_by"] or "-")
        elif c["case_status"] == "open":
            back = _("not yet")
        where = str(WHERE[c["where"]]) + (f" ({c['dest_name']})" if c.get("dest_name") else "")
        lost.append({**c, "when": local_time(c["started_at"], tz), "where": where,
                     "caller": c["caller"] or _("withheld number"), "called_back": back})
    tables["lost"] = lost
    return tables


def _bars(rows: list[dict], value: str, *, extra: str | None = None, height: int = 120) -> dict[str, Any]:
    """A bar chart's geometry (SVG user units): one bar per row, and a marker line for `extra`."""
    top = max([float(r.get(value) or 0) for r in rows] + [float(r.get(extra) or 0) for r in rows if extra] + [1])
    width, gap = 24, 4
    bars = []
    for i, r in enumerate(rows):
        v = float(r.get(value) or 0)
        h = round(v / top * height, 1)
        bar = {"x": i * (width + gap), "y": round(height - h, 1), "w": width, "h": h, "label": r["label"],
               "tick": r.get("tick") or r["label"],
               "value": r.get(value) or 0}
        if extra:
            e = float(r.get(extra) or 0)
            bar["mark_y"] = round(height - e / top * height, 1)
            bar["mark"] = e
        bars.append(bar)
    return {"bars": bars, "width": max(len(rows), 1) * (width + gap), "height": height, "top": top}


def _staffing(rep: Any) -> tuple[list[dict], list[tuple[str, bool]]]:
    """The load and the people needed by hour of day, and the advice as (sentence, short of people)."""
    by_hour = [{"label": f"{h.hour:02d}:00", "tick": f"{h.hour:02d}", "calls": h.calls_per_hour,
                "needed": h.needed, "had": h.had, "aht": h.aht_s} for h in rep.staffing_by_hour]
    sentences = []
    for s in rep.staffing:
        had = format(s.had, "g")
        sentences.append((_("%(days)s %(first)d–%(end)d: people needed %(needed)d, you had %(had)s",
                            days=ON_WEEKDAYS[s.weekday], first=s.first_hour, end=s.end_hour, needed=s.needed,
                            had=had), s.short_of > 0))
    return by_hour, sentences


@bp.route("/")
def index():
    form = _form()
    if not form.validate():
        return render_template("reports/index.html", form=form, rep=None), 400
    rep, tz = _report(form)
    tables = _labelled(rep, tz)
    by_hour, sentences = _staffing(rep)
    charts = {"hour": _bars(tables["hour"], "offered"), "weekday": _bars(tables["weekday"], "offered"),
              "staffing": _bars(by_hour, "needed", extra="had")}
    return render_template("reports/index.html", form=form, rep=rep, s=rep.summary(), tables=tables,
                           charts=charts, by_hour=by_hour, sentences=sentences, titles=TITLES, figures=FIGURES,
                           dest_columns=DEST_COLUMNS, menu_columns=MENU_COLUMNS, lost_columns=LOST_COLUMNS,
                           where_words=WHERE, args={k: v for k, v in request.args.items() if v})


@bp.route("/<table>.csv")
def export(table: str):
    if table not in TABLES:
        abort(404)
    form = _form()
    if not form.validate():
        abort(400)
    rep, tz = _report(form)
    rows = _labelled(rep, tz)[table]
    if table in ("group",):
        columns = DEST_COLUMNS
    elif table == "menu":
        columns = MENU_COLUMNS
    elif table == "lost":
        columns = LOST_COLUMNS
    else:
        columns = (("label", TITLES[table]), *FIGURES)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([str(label) for _, label in columns])
    for r in rows:
        w.writerow(["" if r.get(k) is None else r.get(k) for k, _ in columns])
    name = f"calls-{table}-{form.day_from.data.isoformat()}-{form.day_to.data.isoformat()}.csv"
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
