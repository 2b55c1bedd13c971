"""Reports: figures over a date range, by hour, weekday, day, person, group, number and menu; the
lost calls; staffing advice by Erlang C.

`build_report(store, period, ...)` reads the store's sums (appliance.store.reports)
and turns them into a `Report` with the pure functions of `figures` and
`staffing`; the CLI (`pbx report`) and the panel (web/areas/reports.py) both
call it.  docs/reports.md says what each figure means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appliance.reports import figures as f
from appliance.reports.periods import Period
from appliance.reports.staffing import Hour, Span, Target, hours, spans
from appliance.store import Store
from appliance.store.reports import CALLER_GAVE_UP, ReportTables

BY = ("hour", "weekday", "day", "person", "group", "number", "menu")
DEFAULT_SHORT_ABANDON_S = 5.0


@dataclass
class Report:
    period: Period
    answer_within_s: float
    short_abandon_s: float
    total: f.Tally
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    abandoned_where: dict[str, int] = field(default_factory=dict)
    lost: list[dict[str, Any]] = field(default_factory=list)
    cases: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)
    staffing_by_hour: list[Hour] = field(default_factory=list)      # every day of the range together
    staffing: list[Span] = field(default_factory=list)              # by weekday and hour

    def summary(self) -> dict[str, Any]:
        return {"from": self.period.first.isoformat(), "to": self.period.last.isoformat(),
                "timezone": self.period.tz, "answer_within_s": self.answer_within_s, **self.total.row(),
                "out_answered": self.total.out_answered, "avg_out_talk": f._round(self.total.avg_out_talk),
                "abandoned_where": self.abandoned_where, "cases": self.cases, "callbacks": self.callbacks}


def short_abandon_seconds(store: Store) -> float:
    """The missed-call rules' short abandon (setting `missed`), so both parts count the same calls."""
    setting = store.get_setting("missed") or {}
    return float(setting.get("short_abandon_seconds", DEFAULT_SHORT_ABANDON_S))


def _rows(by: dict[Any, f.Tally], label=lambda k: k) -> list[dict[str, Any]]:
    return [{"key": label(k), **t.row()} for k, t in by.items()]


def build_report(store: Store, period: Period, *, answer_within_s: float = 20.0, target: Target | None = None,
                 only: tuple[str, ...] | None = None) -> Report:
    """The figures of `period`; `only` limits what is made: "summary" (the total's figures with
    abandoned-where, cases and call-backs), BY's names, "lost", "staffing".  The total is always made."""
    want = set(only) if only is not None else {"summary", *BY, "lost", "staffing"}
    target = target or Target(within_s=answer_within_s)
    tables = ReportTables(store)
    start, end, shifts = period.start_utc, period.end_utc, period.shifts()
    short_s = short_abandon_seconds(store)
    need_hours = bool(want & {"hour", "weekday", "day", "staffing"})
    # Whole-hour offsets (most zones): group by the UTC hour in SQL, turn it into local time here.
    hour_key = "utc_hour" if all(sec % 3600 == 0 for _, sec in shifts) else "hour"
    to_local = period.local_hour if hour_key == "utc_hour" else (lambda k: k)
    if need_hours:
        by_hour = f.fold(f.tallies(tables.totals(hour_key, start, end, shifts, answer_within_s, short_s),
                                   tables.waits(hour_key, start, end, shifts)), to_local)
        total = f.fold(by_hour, lambda k: None).get(None, f.Tally())
    else:
        total = next(iter(f.tallies(tables.totals("all", start, end, shifts, answer_within_s, short_s),
                                    tables.waits("all", start, end, shifts)).values()), f.Tally())
    report = Report(period, answer_within_s, short_s, total)
    if "hour" in want:
        report.tables["hour"] = _rows(f.fold(by_hour, f.hour_of))
    if "weekday" in want:
        report.tables["weekday"] = _rows(f.fold(by_hour, f.weekday_of))
    if "day" in want:
        report.tables["day"] = _rows(f.fold(by_hour, lambda k: f.day_of(k).isoformat()))
    for key in ("person", "number"):
        if key in want:
            by = f.tallies(tables.totals(key, start, end, shifts, answer_within_s, short_s),
                           tables.waits(key, start, end, shifts))
            report.tables[key] = _rows({k: t for k, t in by.items() if k})
    if want & {"group", "menu"}:
        dests, menus = f.destinations(tables.routes(start, end), CALLER_GAVE_UP)
        report.tables["group"] = [{"key": k, **d.row()} for k, d in dests.items()]
        report.tables["menu"] = [{"key": k, **m.row()} for k, m in menus.items()]
    if want & {"summary", "lost"}:
        lost = tables.lost_calls(start, end)
        report.abandoned_where = f.abandoned_where(lost, CALLER_GAVE_UP, short_s)
    if "lost" in want:
        for call in lost:
            call["where"] = f.gave_up_at(call["step"])
            call["short"] = (call["reason"] in CALLER_GAVE_UP and call["outcome"] == "missed"
                             and (call["wait_s"] or 0) < short_s)
            call["called_back_at"] = (call["closed_at"] if call["ended_how"] in ("called back", "callback")
                                      else None)
        report.lost = lost
    if "summary" in want:
        report.cases = f.case_figures(tables.cases(start, end))
        report.callbacks = f.callback_figures(tables.callbacks(start, end))
    if "staffing" in want:
        people: dict[str, int] = {}
        for key, _person in set((to_local(k), p) for k, p in tables.people_by_hour(hour_key, start, end, shifts)):
            people[key] = people.get(key, 0) + 1
        days = {**period.weekdays(), None: len(period.days())}
        report.staffing_by_hour = hours(by_hour, people, days, target, by_weekday=False)
        report.staffing = spans(hours(by_hour, people, days, target, by_weekday=True))
    return report
