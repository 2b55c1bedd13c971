"""Every figure of a report against an independent computation in plain Python over the same records.

The records are generated (appliance.reports.sample, a fixed seed) and written through the store's bulk
accessor, plus a few written the way the engine's recorder writes them (call_started, call_answered,
finish_call) and missed-call cases through the missed tables' own methods."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from appliance.reports import build_report
from appliance.reports.periods import Period
from appliance.reports import sample
from appliance.store import Store
from appliance.store.missed import MissedTables
from appliance.store.reports import ReportTables

TZ = "Europe/Kyiv"
FIRST, LAST = date(2025, 3, 24), date(2025, 4, 6)   # daylight saving starts on 30 March
GAVE_UP = {"caller hung up", "caller gave up"}
LOST = {"missed", "voicemail", "interrupted", "abandoned"}


def engine_call(store: Store, call_id: str, at: datetime, by: str | None, wait: float, talk: float, path: list,
                outcome: str) -> dict:
    """A call written as the engine's recorder writes it."""
    started = at.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    store.call_started({"id": call_id, "started_at": started, "direction": "inbound", "caller": "+380501112233",
                        "dialled": "0441234567", "trunk": "provider", "extension": None, "invite": "INVITE",
                        "source": "x"})
    if by:
        store.call_answered(call_id, started, by)
    row = {"id": call_id, "started_at": started, "answered_at": started if by else None, "ended_at": started,
           "direction": "inbound", "caller": "+380501112233", "dialled": "0441234567", "trunk": "provider",
           "extension": None, "answered_by": by, "outcome": outcome, "wait_s": wait, "talk_s": talk,
           "path": path, "invite": None, "source": None}
    missed = None if by else {"caller": "+380501112233", "dialled": "0441234567", "at": started, "manager": None}
    store.finish_call(row, missed)
    return row


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    data = tmp_path_factory.mktemp("reports")
    rng = random.Random(7)
    start = datetime.combine(FIRST - timedelta(days=1), time(0), ZoneInfo(TZ))
    rows = list(sample.calls(rng, start, 16, 3000))   # a day either side of the range
    with Store(data) as store:
        store.set_setting("timezone", TZ)
        ReportTables(store).add_calls(rows)
        cases, links = sample.cases(rng, rows)
        ReportTables(store).add_cases(cases, links)
        # 23:30 on the last day in Kyiv is 20:30 UTC: inside the range, and the last office day's.
        at = datetime(2025, 4, 6, 23, 30, tzinfo=ZoneInfo(TZ))
        menu = [{"t": 0.0, "kind": "step", "step": "menu", "dest": "menu:main", "name": "Main menu"},
                {"kind": "end", "reason": "caller gave up", "rung": []}]
        rows.append(engine_call(store, "e1", at, None, 8.0, 0.0, menu, "missed"))
        ring = [{"t": 0.0, "kind": "step", "step": "ring", "dest": "group:sales", "name": "Sales"},
                {"t": 21.5, "kind": "answered", "by": "106"}, {"kind": "end", "reason": "caller hung up", "rung": []}]
        rows.append(engine_call(store, "e2", at + timedelta(minutes=5), "106", 21.5, 42.0, ring, "answered"))
        tables = MissedTables(store)
        case = tables.save_case({"id": None, "caller": "+380501112233", "dialled": "0441234567", "status": "closed",
                                 "short": 0, "count": 1, "opened_at": rows[-2]["started_at"],
                                 "last_at": rows[-2]["started_at"], "waited_s": 8.0, "gave_up": "step",
                                 "closed_at": "2025-04-07T08:00:00.000+00:00", "ended_how": "called back",
                                 "closed_by": "101", "took_s": 41400.0})
        tables.add_call(case, "e1", rows[-2]["started_at"], 8.0, False)
        cases.append({"id": case, "short": 0, "status": "closed", "ended_how": "called back", "took_s": 41400.0,
                      "closed_at": "2025-04-07T08:00:00.000+00:00",
                      "opened_at": rows[-2]["started_at"]})
        links.append(("e1", case, None, 8.0, 0))
        period = Period(FIRST, LAST, TZ)
        report = build_report(store, period, answer_within_s=20)
    return rows, cases, links, report, period


# -- the independent computation ----------------------------------------------------------------------


def in_range(rows, period):
    lo = datetime.combine(period.first, time(0), ZoneInfo(TZ))
    hi = datetime.combine(period.last + timedelta(days=1), time(0), ZoneInfo(TZ))
    return [r for r in rows if lo <= datetime.fromisoformat(r["started_at"]) < hi]


def local(r):
    return datetime.fromisoformat(r["started_at"]).astimezone(ZoneInfo(TZ))


def kind(r, short_s=5.0):
    """answered, short, missed (lost but not short), other; and whether the caller gave up."""
    if r["direction"] != "inbound":
        return "other", False
    if r["answered_by"]:
        return "answered", False
    if r["outcome"] not in LOST:
        return "other", False
    gave_up = r["path"][-1].get("reason") in GAVE_UP
    if gave_up and r["outcome"] == "missed" and r["wait_s"] < short_s:
        return "short", True
    return "missed", gave_up


def expected(rows, within=20):
    inbound = [r for r in rows if r["direction"] == "inbound"]
    answered = [r for r in inbound if kind(r)[0] == "answered"]
    missed = [r for r in inbound if kind(r)[0] == "missed"]
    waits = sorted(r["wait_s"] for r in answered)
    p90 = math.ceil(waits[math.ceil(0.9 * len(waits)) - 1]) if waits else None
    offered = len(answered) + len(missed)
    return {
        "calls_in": len(inbound), "calls_out": sum(r["direction"] == "outbound" for r in rows),
        "answered": len(answered), "missed": len(missed), "offered": offered,
        "short": sum(kind(r)[0] == "short" for r in inbound),
        "abandoned": sum(1 for r in missed if kind(r)[1]),
        "voicemail": sum(r["outcome"] == "voicemail" for r in inbound),
        "avg_wait": round(sum(waits) / len(waits), 1) if waits else None, "p90_wait": p90,
        "service_level": round(sum(w <= within for w in waits) / offered, 3) if offered else None,
        "avg_talk": round(sum(r["talk_s"] for r in answered) / len(answered), 1) if answered else None,
    }


def last_step(r):
    steps = [p for p in r["path"] if p.get("kind") == "step"]
    return steps[-1] if steps else {}


# -- the tests -----------------------------------------------------------------------------------------


def test_the_summary_figures(records):
    rows, _, _, report, period = records
    mine = in_range(rows, period)
    assert 2000 < len(mine) < len(rows)
    got = report.total.row()
    assert got == expected(mine)


def test_abandoned_by_where_the_caller_was(records):
    rows, _, _, report, period = records
    want = Counter()
    for r in in_range(rows, period):
        k, gave_up = kind(r)
        if k == "missed" and gave_up:
            step = last_step(r).get("step")
            want[{"menu": "menu", "queue": "queue", "ring": "ringing"}.get(step, "other")] += 1
    assert report.abandoned_where == {w: want[w] for w in ("menu", "queue", "ringing", "other")}
    assert report.abandoned_where["menu"] >= 1


@pytest.mark.parametrize("by, key", [
    ("hour", lambda r: local(r).hour),
    ("weekday", lambda r: local(r).weekday()),
    ("day", lambda r: local(r).date().isoformat()),
    ("number", lambda r: r["dialled"] if r["direction"] == "inbound" else None),
    ("person", lambda r: r["extension"] if r["direction"] == "outbound" else r["answered_by"]),
])
def test_each_table_row_against_the_records(records, by, key):
    rows, _, _, report, period = records
    groups = defaultdict(list)
    for r in in_range(rows, period):
        if key(r) not in (None, ""):
            groups[key(r)].append(r)
    got = {r["key"]: {k: v for k, v in r.items() if k != "key"} for r in report.tables[by]}
    assert set(got) == set(groups)
    for k, group in groups.items():
        assert got[k] == expected(group), (by, k)


def test_the_office_day_follows_daylight_saving(records):
    rows, _, _, report, period = records
    days = [r["key"] for r in report.tables["day"]]
    assert days[0] == "2025-03-24" and days[-1] == "2025-04-06"
    assert "e1" in {c["id"] for c in report.lost}   # 23:30 on the last day, local


def test_groups_and_queues(records):
    rows, _, _, report, period = records
    want = defaultdict(Counter)
    for r in in_range(rows, period):
        if r["direction"] != "inbound":
            continue
        k, gave_up = kind(r)
        dests = [p["dest"] for p in r["path"] if p.get("kind") == "step" and p["step"] in ("ring", "queue")]
        for d in set(dests):
            want[d]["entered"] += 1
        if dests:
            if k == "answered":
                want[dests[-1]]["answered"] += 1
            elif k in ("missed", "short"):
                want[dests[-1]]["lost"] += 1
                want[dests[-1]]["abandoned"] += r["path"][-1]["reason"] in GAVE_UP
    got = {r["key"]: r for r in report.tables["group"]}
    assert set(got) == set(want) == {"group:sales", "group:office", "queue:support"}
    for d, c in want.items():
        assert (got[d]["entered"], got[d]["answered"], got[d]["lost"], got[d]["abandoned"]) == \
            (c["entered"], c["answered"], c["lost"], c["abandoned"]), d


def test_where_callers_leave_the_menu(records):
    rows, _, _, report, period = records
    entered = went_on = gave_up = 0
    for r in in_range(rows, period):
        steps = [p for p in r["path"] if p.get("kind") == "step"]
        for i, p in enumerate(steps):
            if p["step"] == "menu":
                entered += 1
                went_on += i + 1 < len(steps)
                gave_up += i + 1 == len(steps) and r["path"][-1]["reason"] in GAVE_UP
    (menu,) = report.tables["menu"]
    assert (menu["key"], menu["entered"], menu["went_on"], menu["gave_up"]) == ("menu:main", entered, went_on, gave_up)


def test_the_lost_call_report_and_its_call_backs(records):
    rows, cases, links, report, period = records
    lost = [r for r in in_range(rows, period) if kind(r)[0] in ("missed", "short")]
    assert [c["id"] for c in report.lost] == [r["id"] for r in sorted(lost, key=lambda r: (r["started_at"], r["id"]))]
    case_of = {call: case for call, case, *_ in links}
    by_id = {c["id"]: c for c in cases}
    for c in report.lost:
        case = by_id[case_of[c["id"]]]
        back = case["ended_how"] in ("called back", "callback")
        assert (c["called_back_at"] is not None) == back, c["id"]
        if back:
            assert c["called_back_at"] == case["closed_at"]
    e1 = next(c for c in report.lost if c["id"] == "e1")
    assert (e1["where"], e1["dest_name"], e1["called_back_at"]) == ("menu", "Main menu", "2025-04-07T08:00:00.000+00:00")


def test_missed_cases_and_the_time_to_handle_them(records):
    rows, cases, _, report, period = records
    lo, hi = period.start_utc, period.end_utc
    mine = [c for c in cases if lo <= c["opened_at"] < hi]
    real = [c for c in mine if not c["short"]]
    closed = [c for c in real if c["status"] == "closed"]
    assert report.cases["opened"] == len(real) and report.cases["short"] == len(mine) - len(real)
    assert report.cases["closed"] == len(closed)
    assert report.cases["called_back"] == sum(c["ended_how"] in ("called back", "callback") for c in closed)
    assert report.cases["avg_took_s"] == round(sum(c["took_s"] for c in closed) / len(closed), 1)


def test_staffing_had_is_the_people_who_answered_on_average(records):
    rows, _, _, report, period = records
    people = defaultdict(set)
    for r in in_range(rows, period):
        if r["direction"] == "inbound" and r["answered_by"]:
            people[(local(r).date(), local(r).hour)].add(r["answered_by"])
    n_days = len(period.days())
    for h in report.staffing_by_hour:
        want = sum(len(v) for (d, hour), v in people.items() if hour == h.hour) / n_days
        assert h.had == round(want, 1), h.hour
        assert h.needed >= 1 if h.calls_per_hour > 0 else h.needed == 0


def test_an_office_half_an_hour_off_utc_groups_by_its_own_hours(tmp_path):
    # Kolkata is UTC+5:30: UTC hours are not its hours, so the store shifts each record's time in SQL.
    tz = "Asia/Kolkata"
    rng = random.Random(11)
    rows = list(sample.calls(rng, datetime.combine(date(2025, 5, 5), time(0), ZoneInfo(tz)), 3, 400))
    with Store(tmp_path) as store:
        store.set_setting("timezone", tz)
        ReportTables(store).add_calls(rows)
        report = build_report(store, Period(date(2025, 5, 5), date(2025, 5, 7), tz), only=("hour", "day"))
    groups = defaultdict(list)
    for r in rows:
        groups[datetime.fromisoformat(r["started_at"]).astimezone(ZoneInfo(tz)).hour].append(r)
    got = {r["key"]: {k: v for k, v in r.items() if k != "key"} for r in report.tables["hour"]}
    assert got == {h: expected(g) for h, g in groups.items()}
    assert [r["key"] for r in report.tables["day"]] == ["2025-05-05", "2025-05-06", "2025-05-07"]
