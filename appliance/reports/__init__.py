"""Reports: figures over a date range, by hour, weekday, day, person, group, number and menu; the
lost calls; staffing advice by Erlang C.

`build_report(store, period, ...)` reads the store's sums per office hour
(appliance.store.reports), adds them up (`hours`) and turns them into a
`Report` with the pure functions of `figures` and `staffing`; the CLI (`pbx report`) and the panel (web/areas/reports.py) both
call it.  docs/reports.md says what each figure means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.reports import figures as f
from appliance.reports import hours as h
from appliance.reports.periods import Period
from appliance.reports.staffing import Hour, Span, Target, hours, spans
from appliance.store import Store
from appliance.store.reports import CALLER_GAVE_UP, SUM_MEASURES, ReportTables

BY = ("hour", "weekday", "day", "person", "group", "number", "menu")
DEFAULT_SHORT_ABANDON_S = 5.0
LOST_LIMIT = 500   # the lost-call list shows the range's latest; `lost_count` says how many there are in all


@dataclass
class Report:
    period: Period
    answer_within_s: float
    short_abandon_s: float
    total: f.Tally
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    abandoned_where: dict[str, int] = field(default_factory=dict)
    lost: list[dict[str, Any]] = field(default_factory=list)   # the latest LOST_LIMIT, oldest first
    lost_count: int = 0
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


def whole_seconds(answer_within_s: float) -> int:
    """The service level's N: whole seconds (the sums keep the waits in whole seconds, rounded up)."""
    if float(answer_within_s) != int(answer_within_s):
        raise ValueError(f"the service level's seconds must be a whole number, not {answer_within_s}")
    return int(answer_within_s)


def _staffing(tables: ReportTables, period: Period, rows: h.Rows, local: np.ndarray, total: f.Tally, within: int,
              target: Target) -> tuple[list[Hour], list[Span]]:
    """The advice by hour of the day (every day together) and by weekday and hour.  "You had": the
    different people who answered in each office hour, added up over the cell's hours (numpy: a year has
    tens of thousands of a person's hours)."""
    hour, weekday = (local // 3600) % 24, (local // 86400 + h.THURSDAY) % 7
    by_hour = h.add_up(rows, hour, [(None, x) for x in range(24)], within, waits=False)
    by_weekday = h.add_up(rows, weekday * 24 + hour, [(d, x) for d in range(7) for x in range(24)], within, waits=False)
    answered_by = tables.people_by_hour(period.start_at, period.end_at)
    their = h.local_seconds(np.array([at for at, _ in answered_by], dtype=np.int64), period.offsets()) // 3600
    person, _ = h.codes_of(np.array([p for _, p in answered_by], dtype=object))
    # An office hour that came twice (daylight saving's end) counts each person once, as one local hour.
    pairs = np.unique(their * (int(person.max()) + 1 if len(person) else 1) + person) if len(their) else their
    local_hours = pairs // (int(person.max()) + 1) if len(their) else their
    had_hour = np.bincount(local_hours % 24, minlength=24)
    had_weekday = np.bincount((local_hours // 24 + h.THURSDAY) % 7 * 24 + local_hours % 24, minlength=7 * 24)
    days = {**period.weekdays(), None: len(period.days())}
    aht_all = total.avg_talk or 0.0
    all_days = hours(by_hour, {(None, x): int(n) for x, n in enumerate(had_hour) if n}, aht_all, days, target)
    weekdays = hours(by_weekday, {(i // 24, i % 24): int(n) for i, n in enumerate(had_weekday) if n}, aht_all, days,
                     target)
    return all_days, spans(weekdays)


def _by_key(tables: ReportTables, key: str, period: Period, within: int, short_s: float) -> dict[Any, f.Tally]:
    """A Tally per person or dialled number: their sums added up in SQL, their waits here."""
    sums = tables.key_sums(key, period.start_at, period.end_at)
    waits = tables.key_waits(key, period.start_at, period.end_at)
    short = dict(tables.short_abandons(key, period.start_at, period.end_at, short_s)) if key == "number" else {}
    labels = [r[0] for r in sums]
    index = {k: i for i, k in enumerate(labels)}
    waits = [(k, blob) for k, blob in waits if k in index]
    rows = h.Rows.of([r[1:] for r in sums] + [[0.0] * len(SUM_MEASURES)] * len(waits),
                     [None] * len(sums) + [blob for _, blob in waits],
                     [short.get(k, 0) for k in labels] + [0] * len(waits))
    codes = np.array(list(range(len(sums))) + [index[k] for k, _ in waits], dtype=np.int64)
    return h.add_up(rows, codes, labels, within)


def build_report(store: Store, period: Period, *, answer_within_s: float = 20.0, target: Target | None = None,
                 only: tuple[str, ...] | None = None) -> Report:
    """The figures of `period`; `only` limits what is made: "summary" (the total's figures with
    abandoned-where, cases and call-backs), BY's names, "lost", "staffing".  The total is always made.

    Read from the store's sums per office hour (appliance.store.reports.HourSums); when some hours of the
    range were summed under another time zone than the office's, its records are summed again in memory."""
    want = set(only) if only is not None else {"summary", *BY, "lost", "staffing"}
    within = whole_seconds(answer_within_s)
    target = target or Target(within_s=answer_within_s)
    tables = ReportTables(store)
    start, end = period.start_utc, period.end_utc
    start_at, end_at, offsets = period.start_at, period.end_at, period.offsets()
    if tables.misaligned_hours(start_at, end_at, offsets):
        tables = ReportTables.summed_from_records(store, start, end, period.zone)
    short_s = short_abandon_seconds(store)

    if want & {"hour", "weekday", "day", "staffing"}:
        hour_rows = tables.hour_sums(start_at, end_at)
        shorts = dict(tables.short_abandons("hour", start_at, end_at, short_s))
        rows = h.Rows.of([r[1:-1] for r in hour_rows], [r[-1] for r in hour_rows],
                         [shorts.get(r[0], 0) for r in hour_rows])
        local = h.local_seconds(np.array([r[0] for r in hour_rows], dtype=np.int64), offsets)
    else:   # the total alone: added up in SQL, but for the waits
        sums, waits = tables.hour_total(start_at, end_at)
        short = sum(n for _, n in tables.short_abandons("all", start_at, end_at, short_s))
        rows = h.Rows.of([sums] + [[0.0] * len(SUM_MEASURES)] * len(waits), [None, *waits], [short] + [0] * len(waits))
    total = h.add_up(rows, np.zeros(len(rows), dtype=np.int64), [None], within).get(None, f.Tally())
    report = Report(period, answer_within_s, short_s, total)
    if "hour" in want:
        report.tables["hour"] = _rows(h.add_up(rows, (local // 3600) % 24, range(24), within))
    if "weekday" in want:
        report.tables["weekday"] = _rows(h.add_up(rows, (local // 86400 + h.THURSDAY) % 7, range(7), within))
    if "day" in want:
        codes, days = h.codes_of(local // 86400)
        report.tables["day"] = _rows(h.add_up(rows, codes, [h.day_label(d) for d in days], within))
    for key in ("person", "number"):
        if key in want:
            report.tables[key] = _rows(_by_key(tables, key, period, within, short_s))
    if "group" in want or "menu" in want:
        report.tables["group"] = [{"key": dest, **f.DestTally(name or dest, *sums).row()}
                                  for dest, name, *sums in tables.destination_sums(start_at, end_at)]
        menus = {menu: f.MenuTally(name or menu or "", *sums) for menu, name, *sums in tables.menu_sums(start_at, end_at)}
        for menu, nxt, n in tables.menu_next(start_at, end_at):
            if menu in menus:
                menus[menu].next[nxt] += n
        report.tables["menu"] = [{"key": k, **m.row()} for k, m in menus.items()]
    if "summary" in want:
        report.abandoned_where = {w: 0 for w in f.WHERE}
        for step, n in tables.abandoned_at(start_at, end_at, short_s):
            report.abandoned_where[f.gave_up_at(step)] += n
    if "lost" in want:
        lost, report.lost_count = tables.lost_calls(start, end, LOST_LIMIT)
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
        report.staffing_by_hour, report.staffing = _staffing(tables, period, rows, local, total, within, target)
    return report
