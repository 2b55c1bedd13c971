"""The sums per office hour: kept call by call they equal those the migration builds from the records;
office hours across daylight saving and in a +05:30 office; a change of time zone; any N and short
abandon; the lost-call list's limit."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import appliance.reports as reports
from appliance.reports import build_report, sample
from appliance.reports.periods import Period
from appliance.store import Store
from appliance.store.reports import LATEST_LOST, SUM_TABLES, ReportTables, decode_waits, office_hour
from appliance.store.schema import migrations
from tests.reports.test_figures import GAVE_UP, LOST, expected

KYIV = "Europe/Kyiv"


def utc(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def finish(store: Store, row: dict, missed: bool = True) -> None:
    """A record written as the engine's recorder writes it: started, answered, finished."""
    store.call_started({k: row[k] for k in ("id", "started_at", "direction", "caller", "dialled", "trunk",
                                            "extension")})
    if row["answered_by"]:
        store.call_answered(row["id"], row["started_at"], row["answered_by"])
    lost = None
    if missed and not row["answered_by"] and row["direction"] == "inbound":
        lost = {"caller": row["caller"], "dialled": row["dialled"], "at": row["ended_at"], "manager": None}
    store.finish_call(row, lost)


def dump(store: Store) -> dict:
    """Every sums table's rows, waits decoded and sums rounded (the order of additions differs)."""
    out = {}
    for table in SUM_TABLES:
        cur = store.db.execute(f"select * from {table}")
        cols = [d[0] for d in cur.description]
        rows = []
        for r in cur.fetchall():
            row = dict(zip(cols, r))
            if "waits" in row:
                row["waits"] = decode_waits(row["waits"])
            rows.append({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})
        live = [r for r in rows if any(r.get(k) for k in ("records", "entered", "n", "call_id"))]
        out[table] = sorted(live, key=repr)
    return out


def varied_records(rng: random.Random, zone: str, first: date, days: int, count: int) -> list[dict]:
    rows = list(sample.calls(rng, datetime.combine(first, time(0), ZoneInfo(zone)), days, count))
    # An internal call (a person's row with no figures) and one whose caller gave up at once in the menu.
    at = datetime.combine(first, time(11), ZoneInfo(zone))
    rows.append({**rows[0], "id": "internal", "started_at": utc(at), "direction": "internal", "extension": "101",
                 "answered_by": "102", "outcome": "answered"})
    rows.append({**rows[0], "id": "menu-quit", "started_at": utc(at), "direction": "inbound", "answered_by": None,
                 "outcome": "missed", "wait_s": 1.2,
                 "path": [{"t": 0, "kind": "step", "step": "menu", "dest": "menu:main", "name": "Main menu"},
                          {"kind": "end", "reason": "caller gave up", "rung": []}]})
    return rows


def test_the_sums_kept_call_by_call_equal_those_the_migration_builds(tmp_path):
    rng = random.Random(3)
    rows = varied_records(rng, KYIV, date(2025, 3, 28), 4, 600)
    # Call by call, as the recorder writes them; one finished twice (the second record replaces the first),
    # two interrupted (closed at the next start), one still in progress (not counted yet).
    with Store(tmp_path / "kept") as kept:
        for r in rows:
            finish(kept, r)
        first = rows[5]
        finish(kept, {**first, "answered_by": None, "outcome": "missed", "wait_s": 33.0,
                      "path": [{"kind": "end", "reason": "caller hung up", "rung": []}]}, missed=False)
        rows[5] = {**first, "answered_by": None, "outcome": "missed", "wait_s": 33.0,
                   "path": [{"kind": "end", "reason": "caller hung up", "rung": []}]}
        for name, by in (("cut-1", None), ("cut-2", "103")):
            row = {**rows[1], "id": name, "answered_by": by}
            kept.call_started({k: row[k] for k in ("id", "started_at", "direction", "caller", "dialled", "trunk",
                                                   "extension")})
            if by:
                kept.call_answered(name, row["started_at"], by)
        kept.call_started({"id": "up", "started_at": rows[2]["started_at"], "direction": "inbound", "caller": "x",
                           "dialled": "0441234567"})
        for call in [c for c in kept.interrupted_calls() if c["id"].startswith("cut")]:
            kept.close_interrupted(call, call["started_at"], "interrupted: the engine stopped during the call",
                                   None, not call["answered_by"])
        records = [dict(zip(*r)) for r in _all_calls(kept)]
        kept_sums = dump(kept)
    # The same records in a store made before the sums' migration, which then builds them.
    with Store(tmp_path / "migrated", migrate=False) as later:
        migrations.apply(later.db, stop_before="m_reports_002_sums")
        later.db["calls"].insert_all(records, pk="id", alter=True)
        later.migrate()
        assert dump(later) == kept_sums
    assert kept_sums["report_hours"] and kept_sums["report_dests"] and kept_sums["report_menu_next"]
    hours = sum(r["records"] for r in kept_sums["report_hours"])
    assert hours == len(rows) + 2   # the two interrupted; the call still up is not in


def _all_calls(store: Store):
    cur = store.db.execute("select * from calls")
    cols = [d[0] for d in cur.description]
    return [(cols, r) for r in cur.fetchall()]


def _by_local_hour(rows: list[dict], zone: str) -> dict:
    groups = defaultdict(list)
    for r in rows:
        groups[datetime.fromisoformat(r["started_at"]).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H")].append(r)
    return groups


def _calls_every_10_minutes(zone: str, first: datetime, hours: int) -> list[dict]:
    """Calls through the night, so the hours daylight saving moves have some."""
    rng = random.Random(5)
    out = []
    for i in range(hours * 6):
        at = first + timedelta(minutes=10 * i)
        out.append(sample.call(rng, f"n{i:05d}", at))
    return out


@pytest.mark.parametrize("zone, first, last", [
    (KYIV, date(2025, 3, 29), date(2025, 3, 30)),        # 03:00 becomes 04:00: a 23-hour day
    (KYIV, date(2025, 10, 25), date(2025, 10, 26)),      # 04:00 becomes 03:00: a 25-hour day
    ("Asia/Kolkata", date(2025, 5, 5), date(2025, 5, 6)),   # +05:30: office hours start at half past, UTC
    ("Asia/Kathmandu", date(2025, 5, 5), date(2025, 5, 5)),  # +05:45
])
def test_office_hours_and_days_across_daylight_saving_and_half_hour_offsets(tmp_path, zone, first, last):
    start = datetime.combine(first - timedelta(days=1), time(0), ZoneInfo(zone))
    rows = _calls_every_10_minutes(zone, start, 24 * ((last - first).days + 3))
    with Store(tmp_path) as store:
        store.set_setting("timezone", zone)
        for r in rows:
            finish(store, r)
        period = Period(first, last, zone)
        report = build_report(store, period, only=("hour", "day", "staffing"))
    lo, hi = period.start, period.end
    mine = [r for r in rows if lo <= datetime.fromisoformat(r["started_at"]) < hi]
    by_hour = defaultdict(list)
    by_day = defaultdict(list)
    for r in mine:
        local = datetime.fromisoformat(r["started_at"]).astimezone(ZoneInfo(zone))
        by_hour[local.hour].append(r)
        by_day[local.date().isoformat()].append(r)
    got = {r["key"]: {k: v for k, v in r.items() if k != "key"} for r in report.tables["hour"]}
    assert got == {k: expected(g) for k, g in by_hour.items()}
    got = {r["key"]: {k: v for k, v in r.items() if k != "key"} for r in report.tables["day"]}
    assert got == {k: expected(g) for k, g in by_day.items()}
    local_hours = _by_local_hour(mine, zone)
    if first == date(2025, 10, 25):
        assert len(by_hour[3]) == 12     # 03:00-04:00 came twice on 26 October
    if first == date(2025, 3, 29):
        assert "2025-03-30 03" not in local_hours
    assert len(report.staffing_by_hour) == 24


def test_office_hours_of_a_half_hour_office_and_of_the_hour_that_comes_twice():
    kolkata = ZoneInfo("Asia/Kolkata")
    at = datetime(2025, 5, 5, 10, 40, tzinfo=kolkata)
    assert office_hour(utc(at), kolkata) == (int(datetime(2025, 5, 5, 10, 0, tzinfo=kolkata).timestamp()),
                                             int(datetime(2025, 5, 5, 0, 0, tzinfo=kolkata).timestamp()))
    kyiv = ZoneInfo(KYIV)
    twice = datetime(2025, 10, 26, 0, 30, tzinfo=timezone.utc)   # 03:30 summer time
    again = datetime(2025, 10, 26, 1, 30, tzinfo=timezone.utc)   # 03:30 winter time
    assert office_hour(utc(twice), kyiv)[0] == int(datetime(2025, 10, 26, 0, 0, tzinfo=timezone.utc).timestamp())
    assert office_hour(utc(again), kyiv)[0] == int(datetime(2025, 10, 26, 1, 0, tzinfo=timezone.utc).timestamp())
    assert office_hour(utc(again), kyiv)[1] == int(datetime(2025, 10, 25, 21, 0, tzinfo=timezone.utc).timestamp())


@pytest.mark.parametrize("moved_to", ["Asia/Kolkata", "Europe/Berlin"])
def test_a_change_of_time_zone_sums_the_range_from_its_records(tmp_path, moved_to):
    # Sums made in Kyiv's hours and days; the office moves to Kolkata (+05:30: other hours) or Berlin (the
    # same hours, other midnights): the report sums the range's records again, in memory, as exactly.
    rows = _calls_every_10_minutes(KYIV, datetime(2025, 5, 4, tzinfo=ZoneInfo(KYIV)), 72)
    with Store(tmp_path) as store:
        for r in rows:
            finish(store, r)
        store.set_setting("timezone", moved_to)
        period = Period(date(2025, 5, 5), date(2025, 5, 5), moved_to)
        assert ReportTables(store).misaligned_hours(period.start_at, period.end_at, period.offsets()) > 0
        report = build_report(store, period, only=("hour", "person", "number"))
    mine = [r for r in rows if period.start <= datetime.fromisoformat(r["started_at"]) < period.end]
    for table, key in (("hour", lambda r: datetime.fromisoformat(r["started_at"]).astimezone(ZoneInfo(moved_to)).hour),
                       ("person", lambda r: r["extension"] if r["direction"] == "outbound" else r["answered_by"]),
                       ("number", lambda r: r["dialled"] if r["direction"] == "inbound" else None)):
        groups = defaultdict(list)
        for r in mine:
            if key(r) not in (None, ""):
                groups[key(r)].append(r)
        got = {r["key"]: {k: v for k, v in r.items() if k != "key"} for r in report.tables[table]}
        assert got == {k: expected(g) for k, g in groups.items()}, table


def _expected_with(rows: list[dict], within: int, short_s: float) -> dict:
    inbound = [r for r in rows if r["direction"] == "inbound"]
    answered = [r for r in inbound if r["answered_by"]]
    lost = [r for r in inbound if not r["answered_by"] and r["outcome"] in LOST]
    short = [r for r in lost if r["path"][-1].get("reason") in GAVE_UP and r["outcome"] == "missed"
             and r["wait_s"] < short_s]
    offered = len(answered) + len(lost) - len(short)
    waits = sorted(r["wait_s"] for r in answered)
    return {"short": len(short), "missed": len(lost) - len(short), "offered": offered,
            "service_level": round(sum(w <= within for w in waits) / offered, 3),
            "p90_wait": math.ceil(waits[math.ceil(0.9 * len(waits)) - 1])}


@pytest.mark.parametrize("within, short_s", [(7, 2.5), (20, 5), (45, 3), (120, 0)])
def test_any_service_level_seconds_and_any_short_abandon(tmp_path, within, short_s):
    rng = random.Random(9)
    rows = list(sample.calls(rng, datetime(2025, 6, 2, tzinfo=ZoneInfo(KYIV)), 3, 900))
    with Store(tmp_path) as store:
        store.set_setting("missed", {"short_abandon_seconds": short_s})
        ReportTables(store).add_calls(rows)
        report = build_report(store, Period(date(2025, 6, 2), date(2025, 6, 4), KYIV), answer_within_s=within,
                              only=("summary",))
    got = report.total.row()
    assert {k: got[k] for k in ("short", "missed", "offered", "service_level", "p90_wait")} == \
        _expected_with(rows, within, short_s)
    with pytest.raises(ValueError):
        reports.whole_seconds(7.5)


def test_the_lost_call_list_is_the_latest_with_a_count_of_all(tmp_path, monkeypatch):
    rng = random.Random(4)
    rows = list(sample.calls(rng, datetime(2025, 6, 2, tzinfo=ZoneInfo(KYIV)), 2, 400))
    lost = sorted((r for r in rows if r["direction"] == "inbound" and not r["answered_by"]),
                  key=lambda r: (r["started_at"], r["id"]))
    monkeypatch.setattr(reports, "LOST_LIMIT", 10)
    with Store(tmp_path) as store:
        ReportTables(store).add_calls(rows)
        report = build_report(store, Period(date(2025, 6, 2), date(2025, 6, 3), KYIV), only=("lost",))
        plan = " ".join(str(r) for r in store.db.execute(f"explain query plan {LATEST_LOST}", ["a", "b", 10]))
    assert report.lost_count == len(lost) > 10
    assert [c["id"] for c in report.lost] == [r["id"] for r in lost[-10:]]
    assert "calls_lost" in plan and "TEMP B-TREE" not in plan   # no sort: the index is in that order


def test_the_adding_up_knows_every_measure_the_store_keeps():
    from appliance.reports.hours import MEASURES
    from appliance.store.reports import SUM_MEASURES

    assert MEASURES == len(SUM_MEASURES)
