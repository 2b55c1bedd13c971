"""The store's accessors for reports (appliance.reports): sums per office hour, lost calls, cases.

The reports read sums, not records: each office hour's (and each office
day's per person, dialled number, group and menu), kept up to date as each
call record is finished (`counted`, `HourSums`) and built once for older
records by a migration (migrations_report_sums).  Hours and days are kept
under their start in UTC, epoch seconds, as the office's clock cut them
(`office_hour`); the caller passes a range as epoch seconds too, and the
offsets in force over it when it asks whether the sums were cut by another
time zone (`misaligned_hours`).  `totals` still sums records directly, by
SQL, with the office's offset `shifts` as (until, seconds) pairs (the
wallboard's today); the lost-call list reads records.

What counts as what (appliance.missed.cases reads a finished call the same way):
an inbound call is *answered* when someone answered it; *lost* when nobody
did and its outcome is missed, voicemail, interrupted or abandoned; a lost
call is *abandoned* when its end reason says the caller hung up, and a
*short abandon* when it was abandoned while still in its first seconds.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, time, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from appliance.store import IN_PROGRESS, Store

CALL_COLUMNS = ("id", "started_at", "answered_at", "ended_at", "direction", "caller", "dialled", "trunk",
                "extension", "answered_by", "outcome", "wait_s", "talk_s", "path")
CASE_COLUMNS = ("id", "caller", "dialled", "status", "short", "count", "opened_at", "last_at", "waited_s",
                "gave_up", "assigned_to", "closed_at", "ended_how", "closed_by", "took_s")
LOST_OUTCOMES = ("missed", "voicemail", "interrupted", "abandoned")
CALLER_GAVE_UP = ("caller hung up", "caller gave up")   # the engine's end reasons (appliance.missed.cases)

_ANSWERED = "coalesce(answered_by, '') != ''"
_INBOUND = "direction = 'inbound'"
_OUTCOMES = ", ".join(repr(o) for o in LOST_OUTCOMES)


def _lost(t: str = "") -> str:
    """SQL true for a lost call; `t` names the calls table's alias ("c.") in a join."""
    return (f"{t}direction = 'inbound' and coalesce({t}answered_by, '') = '' and {t}outcome in ({_OUTCOMES})")


_LOST = _lost()
# The lost calls by the partial index `calls_lost` (migrations_report_sums), whose terms these repeat.
_LOST_IN_RANGE = f"where started_at >= ? and started_at < ? and {_LOST}"
LATEST_LOST = f"select id from calls indexed by calls_lost {_LOST_IN_RANGE} order by started_at desc, id desc limit ?"
_GAVE_UP = f"(path ->> '$[#-1].reason') in ({', '.join(repr(r) for r in CALLER_GAVE_UP)})"
_CEIL_WAIT = "(cast(wait_s as integer) + (wait_s > cast(wait_s as integer)))"

# What a report groups by: each key's SQL ("{local}" is the office's local time) and the rows it reads.
KEYS: dict[str, tuple[str, str]] = {
    "hour": ("strftime('%Y-%m-%d %H', started_at, {local})", "1"),
    # The UTC hour as the record writes it ('2025-03-03T08'): no date arithmetic per row, for offices
    # whose offsets are whole hours (the caller turns it into local time).
    "utc_hour": ("substr(started_at, 1, 13)", "1"),
    "person": ("case when direction = 'outbound' then extension else answered_by end", "1"),
    "number": ("dialled", _INBOUND),
    "all": ("''", "1"),
}

# The sums every table shows; `?` are the service level's seconds and the short abandon's, in this order.
_MEASURES = f"""
    sum({_INBOUND}), sum(direction = 'outbound'), sum({_INBOUND} and {_ANSWERED}),
    total(case when {_INBOUND} and {_ANSWERED} then wait_s end),
    total(case when {_INBOUND} and {_ANSWERED} then talk_s end),
    sum({_INBOUND} and {_ANSWERED} and wait_s <= ?),
    sum({_LOST}),
    sum(case when {_LOST} then {_GAVE_UP} else 0 end),
    sum(case when {_LOST} and outcome = 'missed' and wait_s < ? then {_GAVE_UP} else 0 end),
    sum({_INBOUND} and outcome = 'voicemail'),
    sum(direction = 'outbound' and {_ANSWERED}),
    total(case when direction = 'outbound' and {_ANSWERED} then talk_s end)"""
MEASURES = ("calls_in", "calls_out", "answered", "wait_sum", "talk_sum", "within", "lost", "abandoned", "short",
            "voicemail", "out_answered", "out_talk_sum")


def _local(shifts: Sequence[tuple[str | None, int]]) -> tuple[str, list[Any]]:
    """A modifier for SQLite's date functions that shifts a UTC time to the office's ('+7200 seconds')."""
    if len(shifts) == 1:
        return "?", [f"{int(shifts[0][1]):+d} seconds"]
    parts, args = [], []
    for until, seconds in shifts:
        if until is None:
            parts.append("else ?")
            args.append(f"{int(seconds):+d} seconds")
        else:
            parts.append("when started_at < ? then ?")
            args += [until, f"{int(seconds):+d} seconds"]
    return "(case " + " ".join(parts) + " end)", args


def _path(text: str | None) -> list[dict]:
    try:
        path = json.loads(text or "[]")
    except ValueError:
        return []
    return [p for p in path if isinstance(p, dict)] if isinstance(path, list) else []


# -- the sums per office hour -------------------------------------------------------------------------
#
# A report over a year read 500,000 records; it now reads the sums of each office hour (8,760 rows a
# year), kept up to date in the transaction that finishes a record (`counted`, around Store.record_call
# and Store.close_interrupted) and built once for older records by a migration (migrations_report_sums).
#
# An office hour is an hour of the office's local time, kept under its start in UTC (epoch seconds, `at`):
# with the offset in force when the call started, so a +05:30 office's hours start at half past in UTC,
# and the office's days, whose midnights are such hours, are whole runs of them whatever daylight saving
# does.  Every figure is a sum, so a range's is the sum of its hours'.  The two that depend on a
# parameter are kept so that any value can be asked afterwards: the answered calls' waits as a histogram
# of whole seconds rounded up (`waits`: the service level at any whole N and the 90th percentile, exact),
# and each abandoned call as a row of `report_abandons` with its wait (the short abandons at any setting).

HOUR = 3600
SUM_MEASURES = ("records", "calls_in", "calls_out", "answered", "wait_sum", "talk_sum", "lost", "abandoned",
                "voicemail", "out_answered", "out_talk_sum")
KEY_TABLES = {"person": ("report_people", "person"), "number": ("report_numbers", "number")}
DEST_MEASURES = ("entered", "answered", "lost", "abandoned", "wait_sum")
MENU_MEASURES = ("entered", "went_on", "gave_up", "ended")
SUM_TABLES = ("report_hours", "report_people", "report_numbers", "report_dests", "report_menus",
              "report_menu_next", "report_answerers", "report_abandons")
DAY_TABLES = ("report_people", "report_numbers", "report_dests", "report_menus")   # kept by office day
COUNTED_COLUMNS = ("id", "started_at", "direction", "answered_by", "outcome", "wait_s", "talk_s", "extension",
                   "dialled", "path")


_SUM_COLUMNS = ("records integer not null default 0, calls_in integer not null default 0, "
                "calls_out integer not null default 0, answered integer not null default 0, "
                "wait_sum real not null default 0, talk_sum real not null default 0, lost integer not null default 0, "
                "abandoned integer not null default 0, voicemail integer not null default 0, "
                "out_answered integer not null default 0, out_talk_sum real not null default 0, waits blob")


def create_sum_tables(conn: sqlite3.Connection) -> None:
    """The sums' tables (the migration; an in-memory copy for a range summed from its records)."""
    conn.execute(f"create table if not exists report_hours (at integer primary key, {_SUM_COLUMNS})")
    for table, col in (("report_people", "person"), ("report_numbers", "number")):
        conn.execute(f"create table if not exists {table} (at integer not null, {col} text not null, {_SUM_COLUMNS}, "
                     f"primary key (at, {col})) without rowid")
    conn.execute("create table if not exists report_dests (at integer not null, dest text not null, name text, "
               "name_at text, entered integer not null default 0, answered integer not null default 0, "
               "lost integer not null default 0, abandoned integer not null default 0, "
               "wait_sum real not null default 0, primary key (at, dest)) without rowid")
    conn.execute("create table if not exists report_menus (at integer not null, menu text not null, name text, "
               "name_at text, entered integer not null default 0, went_on integer not null default 0, "
               "gave_up integer not null default 0, ended integer not null default 0, "
               "primary key (at, menu)) without rowid")
    conn.execute("create table if not exists report_menu_next (at integer not null, menu text not null, "
               "next text not null, n integer not null default 0, first_at text, "
               "primary key (at, menu, next)) without rowid")
    conn.execute("create table if not exists report_answerers (at integer not null, person text not null, "
                 "n integer not null default 0, primary key (at, person)) without rowid")
    conn.execute("create table if not exists report_abandons (call_id text primary key, at integer not null, "
               "step text, dialled text, missed integer not null, wait_s real)")
    conn.execute("create index if not exists report_abandons_at on report_abandons (at, wait_s)")


def office_hour(started_at: str, zone: ZoneInfo) -> tuple[int, int]:
    """The UTC starts (epoch seconds) of the office hour and the office day a call that started at
    `started_at` belongs to."""
    moment = datetime.fromisoformat(started_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(zone)
    offset = int(local.utcoffset().total_seconds())
    hour = int((moment.timestamp() + offset) // HOUR) * HOUR - offset
    # As appliance.reports.periods makes a range's start: midnight on the office's clock.
    return hour, int(datetime.combine(local.date(), time(0), zone).timestamp())


def encode_waits(waits: Mapping[int, int]) -> bytes | None:
    """A histogram {whole seconds: calls} as little-endian int32 pairs, ascending (None when empty)."""
    pairs = sorted((s, n) for s, n in waits.items() if n)
    return struct.pack(f"<{2 * len(pairs)}i", *(v for p in pairs for v in p)) if pairs else None


def decode_waits(blob: bytes | None) -> dict[int, int]:
    if not blob:
        return {}
    flat = struct.unpack(f"<{len(blob) // 4}i", blob)
    return dict(zip(flat[::2], flat[1::2]))


def _ceil(wait: float) -> int:
    # As SQLite's cast(wait_s as integer) + (wait_s > cast(wait_s as integer)) did: seconds rounded up.
    return math.ceil(wait)


class HourSums:
    """What some call records add to (or, with sign -1, take from) the sums, gathered in memory, then
    written in one go (`write`): one record as the recorder finishes it, or all of them in a migration."""

    def __init__(self, zone: ZoneInfo):
        self.zone = zone
        self.hours: dict[int, list] = {}
        self.keys: dict[str, dict[tuple[int, str], list]] = {k: {} for k in KEY_TABLES}
        self.dests: dict[tuple[int, str], list] = {}
        self.menus: dict[tuple[int, str], list] = {}
        self.next: dict[tuple[int, str, str], list] = {}
        self.answerers: dict[tuple[int, str], int] = {}
        self.abandons: list[tuple] = []
        self.dropped: list[str] = []

    @staticmethod
    def counts(row: Mapping[str, Any]) -> bool:
        """Whether a record is in the sums: a call that ended (the reports never counted one in progress)."""
        return bool(row.get("started_at")) and row.get("outcome") not in (None, IN_PROGRESS)

    def add(self, row: Mapping[str, Any], sign: int = 1) -> None:
        if not self.counts(row):
            return
        at, day = office_hour(row["started_at"], self.zone)
        direction, outcome = row.get("direction"), row.get("outcome")
        wait, talk = row.get("wait_s"), row.get("talk_s")
        inbound, outbound = direction == "inbound", direction == "outbound"
        answered = (row.get("answered_by") or "") != ""
        raw = row.get("path")
        try:
            path = json.loads(raw) if isinstance(raw, str) else (raw or [])
        except ValueError:
            path = []
        path = path if isinstance(path, list) else []
        # The end reason as SQLite's `path ->> '$[#-1].reason'` read it: the last element's.
        end_reason = path[-1].get("reason") if path and isinstance(path[-1], dict) else None
        lost = inbound and not answered and outcome in LOST_OUTCOMES
        gave_up = lost and end_reason in CALLER_GAVE_UP
        answered_in, answered_out = inbound and answered, outbound and answered
        measures = (1, int(inbound), int(outbound), int(answered_in), (wait or 0.0) if answered_in else 0.0,
                    (talk or 0.0) if answered_in else 0.0, int(lost), int(gave_up),
                    int(inbound and outcome == "voicemail"), int(answered_out), (talk or 0.0) if answered_out else 0.0)
        wait_bin = _ceil(wait) if answered_in and wait is not None else None
        self._add(self.hours, at, measures, wait_bin, sign)
        person = row.get("extension") if outbound else row.get("answered_by")
        if person:
            self._add(self.keys["person"], (day, person), measures, wait_bin, sign)
            if answered_in:
                self.answerers[(at, person)] = self.answerers.get((at, person), 0) + sign
        if inbound and row.get("dialled"):
            self._add(self.keys["number"], (day, row["dialled"]), measures, wait_bin, sign)
        steps_path = [p for p in path if isinstance(p, dict)]
        steps = [(p.get("step"), p.get("dest"), p.get("name")) for p in steps_path if p.get("kind") == "step"]
        if gave_up:
            if sign > 0:
                last = steps[-1][0] if steps else None
                self.abandons.append((row["id"], at, last, row.get("dialled"), int(outcome == "missed"), wait))
            else:
                self.dropped.append(row["id"])
        if inbound:
            reason = steps_path[-1].get("reason") if steps_path else None
            self._routes(day, row["started_at"], steps, answered, wait or 0.0, lost, reason in CALLER_GAVE_UP, sign)

    @staticmethod
    def _add(into: dict, key: Any, measures: Sequence, wait_bin: int | None, sign: int) -> None:
        acc = into.get(key)
        if acc is None:
            acc = into[key] = [[0] * len(measures), Counter()]
        sums = acc[0]
        for i, v in enumerate(measures):
            sums[i] += sign * v
        if wait_bin is not None:
            acc[1][wait_bin] += sign

    def _routes(self, day: int, started: str, steps: list[tuple], answered: bool, wait: float, lost: bool,
                gave_up: bool, sign: int) -> None:
        """The groups and queues a call went through, and the menus (appliance.reports.figures' rules)."""
        routed = [(s, d, n) for s, d, n in steps if s in ("ring", "queue") and (d or "").split(":")[0] in ("group", "queue")]
        for _, dest, name in {d: (s, d, n) for s, d, n in routed}.values():
            self._named(self.dests, (day, dest), name or dest, started, (sign, 0, 0, 0, 0.0))
        if routed:
            last = (day, routed[-1][1])
            if answered:
                self._named(self.dests, last, None, started, (0, sign, 0, 0, sign * wait))
            elif lost:
                self._named(self.dests, last, None, started, (0, 0, sign, sign * gave_up, 0.0))
        for i, (step, dest, name) in enumerate(steps):
            if step != "menu":
                continue
            key = (day, dest or "")
            if i + 1 < len(steps):
                self._named(self.menus, key, name or dest or "", started, (sign, sign, 0, 0))
                nxt = steps[i + 1]
                acc = self.next.setdefault((day, dest or "", nxt[2] or nxt[1] or nxt[0]), [0, started])
                acc[0] += sign
                acc[1] = min(acc[1], started)
            elif lost and gave_up:
                self._named(self.menus, key, name or dest or "", started, (sign, 0, sign, 0))
            else:
                self._named(self.menus, key, name or dest or "", started, (sign, 0, 0, sign))

    @staticmethod
    def _named(into: dict, key: tuple, name: str | None, started: str, measures: Sequence) -> None:
        acc = into.get(key)
        if acc is None:
            acc = into[key] = [name, started, *([0] * len(measures))]
        if name is not None and (acc[0] is None or started < acc[1]):
            acc[0], acc[1] = name, started
        for i, v in enumerate(measures):
            acc[2 + i] += v

    # -- writing ---------------------------------------------------------------------------------

    def write(self, conn: sqlite3.Connection) -> None:
        """Add what was gathered to the tables (inside the caller's transaction)."""
        cols = ", ".join(SUM_MEASURES)
        marks = ", ".join("?" for _ in SUM_MEASURES)
        adds = ", ".join(f"{m} = {m} + excluded.{m}" for m in SUM_MEASURES)
        for at, (sums, waits) in self.hours.items():
            conn.execute(f"insert into report_hours (at, {cols}) values (?, {marks}) "
                         f"on conflict (at) do update set {adds}", [at, *sums])
            if any(waits.values()):
                self._merge_waits(conn, "report_hours", "at = ?", [at], waits)
        for key, (table, col) in KEY_TABLES.items():
            for (at, value), (sums, waits) in self.keys[key].items():
                conn.execute(f"insert into {table} (at, {col}, {cols}) values (?, ?, {marks}) "
                             f"on conflict (at, {col}) do update set {adds}", [at, value, *sums])
                if any(waits.values()):
                    self._merge_waits(conn, table, f"at = ? and {col} = ?", [at, value], waits)
        for table, col, names, rows in (("report_dests", "dest", DEST_MEASURES, self.dests),
                                        ("report_menus", "menu", MENU_MEASURES, self.menus)):
            sums = ", ".join(f"{m} = {m} + excluded.{m}" for m in names)
            q = (f"insert into {table} (at, {col}, name, name_at, {', '.join(names)}) "
                 f"values (?, ?, ?, ?, {', '.join('?' for _ in names)}) on conflict (at, {col}) do update set {sums}, "
                 "name = case when excluded.name is not null and (name is null or excluded.name_at < name_at) "
                 "then excluded.name else name end, "
                 "name_at = case when excluded.name is not null and (name is null or excluded.name_at < name_at) "
                 "then excluded.name_at else name_at end")
            conn.executemany(q, ([at, key, name, name_at, *values] for (at, key), (name, name_at, *values) in rows.items()))
        conn.executemany("insert into report_menu_next (at, menu, next, n, first_at) values (?, ?, ?, ?, ?) "
                         "on conflict (at, menu, next) do update set n = n + excluded.n, "
                         "first_at = min(first_at, excluded.first_at)",
                         ([at, menu, nxt, n, first] for (at, menu, nxt), (n, first) in self.next.items()))
        conn.executemany("insert into report_answerers (at, person, n) values (?, ?, ?) "
                         "on conflict (at, person) do update set n = n + excluded.n",
                         ([at, person, n] for (at, person), n in self.answerers.items()))
        conn.executemany("insert or replace into report_abandons (call_id, at, step, dialled, missed, wait_s) "
                         "values (?, ?, ?, ?, ?, ?)", self.abandons)
        conn.executemany("delete from report_abandons where call_id = ?", ([c] for c in self.dropped))

    @staticmethod
    def _merge_waits(conn: sqlite3.Connection, table: str, where: str, args: list, waits: Counter) -> None:
        row = conn.execute(f"select waits from {table} where {where}", args).fetchone()
        merged = Counter(decode_waits(row[0] if row else None))
        for seconds, n in waits.items():
            merged[seconds] += n
        conn.execute(f"update {table} set waits = ? where {where}", [encode_waits(merged), *args])


def _counted_row(conn: sqlite3.Connection, call_id: str) -> dict | None:
    row = conn.execute(f"select {', '.join(COUNTED_COLUMNS)} from calls where id = ?", [call_id]).fetchone()
    return dict(zip(COUNTED_COLUMNS, row)) if row else None


@contextmanager
def counted(store: Store, call_id: str) -> Iterator[None]:
    """Around a write of one call record, inside its transaction: the record as it was leaves the sums,
    the record as it is now joins them.  Store.record_call (so finish_call) and close_interrupted use it."""
    conn = store.db.conn
    before = _counted_row(conn, call_id)
    yield
    sums = HourSums(ZoneInfo(store.timezone))
    if before is not None:
        sums.add(before, -1)
    after = _counted_row(conn, call_id)
    if after is not None:
        sums.add(after)
    sums.write(conn)


def build_sums(conn: sqlite3.Connection, zone: ZoneInfo, batch: int = 5000) -> int:
    """Empty the sums and make them again from every finished record (the migration; after a change of the
    office's time zone).  Returns how many records were summed."""
    for table in SUM_TABLES:
        conn.execute(f"delete from {table}")
    sums = HourSums(zone)
    n = 0
    cur = conn.execute(f"select {', '.join(COUNTED_COLUMNS)} from calls where outcome != ?", [IN_PROGRESS])
    while rows := cur.fetchmany(batch):
        for r in rows:
            sums.add(dict(zip(COUNTED_COLUMNS, r)))
        n += len(rows)
    sums.write(conn)
    return n



# `totals` groups records, and its GROUP BY sorts every record of its range; with SQLite's default cache
# (2 MiB) the sort of a year's records spilled to temporary files.  Per connection, in KiB.
SORT_CACHE_KIB = 32 * 1024


class ReportTables:
    def __init__(self, store: Store, sums: sqlite3.Connection | None = None):
        self.store = store
        self.sums = sums or store.db.conn     # where the sums per office hour are read
        store.db.execute(f"pragma cache_size = -{SORT_CACHE_KIB}")

    @classmethod
    def summed_from_records(cls, store: Store, start: str, end: str, zone: ZoneInfo) -> "ReportTables":
        """Tables whose sums are made now, in memory, from the records started in [start, end) and in
        `zone`: for a range whose kept sums were made under another time zone (their hours are not the
        office's hours).  As exact, and as slow as reading the records."""
        memory = sqlite3.connect(":memory:")
        create_sum_tables(memory)
        sums = HourSums(zone)
        cur = store.db.execute(f"select {', '.join(COUNTED_COLUMNS)} from calls "
                               "where started_at >= ? and started_at < ? and outcome != ?", [start, end, IN_PROGRESS])
        for r in cur:
            sums.add(dict(zip(COUNTED_COLUMNS, r)))
        sums.write(memory)
        return cls(store, memory)

    def _key(self, key: str, shifts: Sequence[tuple[str | None, int]]) -> tuple[str, str, list[Any]]:
        sql, where = KEYS[key]
        args: list[Any] = []
        if "{local}" in sql:
            local, args = _local(shifts)
            sql = sql.replace("{local}", local)
        return sql, where, args

    def totals(self, key: str, start: str, end: str, shifts: Sequence[tuple[str | None, int]],
               answer_within: float, short_abandon: float) -> list[tuple]:
        """(key, *MEASURES) per value of `key` over calls started in [start, end)."""
        sql, where, args = self._key(key, shifts)
        q = (f"select {sql} as k, {_MEASURES} from calls "
             f"where started_at >= ? and started_at < ? and outcome != ? and {where} group by k order by k")
        return self.store.db.execute(q, [*args, answer_within, short_abandon, start, end, IN_PROGRESS]).fetchall()

    def lost_calls(self, start: str, end: str, limit: int) -> tuple[list[dict], int]:
        """The latest `limit` lost inbound calls started in [start, end), oldest first, and how many there
        are in all: where each was when the caller gave up (the last step of its path) and the missed-call
        case it belongs to, if any.  The partial index `calls_lost` holds only lost calls, by start."""
        count = self.store.db.execute(f"select count(*) from calls indexed by calls_lost {_LOST_IN_RANGE}",
                                      [start, end]).fetchone()[0]
        q = f"""
            select c.id, c.started_at, c.caller, c.dialled, c.wait_s, c.outcome, c.path,
                   m.id, m.status, m.short, m.ended_how, m.closed_at, m.closed_by
            from ({LATEST_LOST}) latest
                 join calls c on c.id = latest.id
                 left join missed_case_calls k on k.call_id = c.id
                 left join missed_cases m on m.id = k.case_id
            order by c.started_at, c.id"""
        cols = ("id", "started_at", "caller", "dialled", "wait_s", "outcome", "path", "case_id",
                "case_status", "case_short", "ended_how", "closed_at", "closed_by")
        out = []
        for r in self.store.db.execute(q, [start, end, limit]).fetchall():
            row = dict(zip(cols, r))
            path = _path(row.pop("path"))
            steps = [p for p in path if p.get("kind") == "step"]
            last = steps[-1] if steps else {}
            row["reason"] = path[-1].get("reason") if path else None
            row["step"], row["dest"], row["dest_name"] = last.get("step"), last.get("dest"), last.get("name")
            out.append(row)
        return out, count

    # -- the sums per office hour (kept as calls end; see HourSums) -----------------------------

    def hour_sums(self, start: int, end: int) -> list[tuple]:
        """(at, *SUM_MEASURES, waits) for each office hour starting in [start, end) (epoch seconds)."""
        q = (f"select at, {', '.join(SUM_MEASURES)}, waits from report_hours "
             "where at >= ? and at < ? and records != 0 order by at")
        return self.sums.execute(q, [start, end]).fetchall()

    def hour_total(self, start: int, end: int) -> tuple[tuple, list[bytes]]:
        """The SUM_MEASURES of the office hours in [start, end) added up, and each hour's waits."""
        sums = ", ".join(f"total({m})" for m in SUM_MEASURES)
        total = self.sums.execute(f"select {sums} from report_hours where at >= ? and at < ?", [start, end]).fetchone()
        q = "select waits from report_hours where at >= ? and at < ? and waits is not null"
        return total, [r[0] for r in self.sums.execute(q, [start, end]).fetchall()]

    def key_sums(self, key: str, start: int, end: int) -> list[tuple]:
        """(person or number, *SUM_MEASURES) over the office hours in [start, end)."""
        table, col = KEY_TABLES[key]
        sums = ", ".join(f"sum({m})" for m in SUM_MEASURES)
        q = (f"select {col}, {sums} from {table} where at >= ? and at < ? "
             f"group by {col} having sum(records) != 0 order by {col}")
        return self.sums.execute(q, [start, end]).fetchall()

    def key_waits(self, key: str, start: int, end: int) -> list[tuple]:
        """(person or number, waits) for each office hour in [start, end) with answered waits."""
        table, col = KEY_TABLES[key]
        q = f"select {col}, waits from {table} where at >= ? and at < ? and waits is not null"
        return self.sums.execute(q, [start, end]).fetchall()

    def short_abandons(self, by: str, start: int, end: int, short_s: float) -> list[tuple]:
        """(at or dialled, short abandons) in [start, end): missed calls whose caller gave up within `short_s`."""
        col = {"hour": "at", "number": "dialled", "all": "''"}[by]
        q = (f"select {col} as k, count(*) from report_abandons where at >= ? and at < ? and missed = 1 "
             "and wait_s < ? group by k")
        return self.sums.execute(q, [start, end, short_s]).fetchall()

    def abandoned_at(self, start: int, end: int, short_s: float) -> list[tuple]:
        """(the kind of the last step, abandoned calls) in [start, end), short abandons apart (a wait not
        recorded counts as none here, as the lost-call list reads it)."""
        q = ("select step, count(*) from report_abandons where at >= ? and at < ? "
             "and not (missed = 1 and coalesce(wait_s, 0) < ?) group by step")
        return self.sums.execute(q, [start, end, short_s]).fetchall()

    def destination_sums(self, start: int, end: int) -> list[tuple]:
        """(dest, name, entered, answered, lost, abandoned, wait_sum) for each group and queue; the name
        as the earliest call in the range gave it."""
        q = ("select dest, name, min(name_at), sum(entered), sum(answered), sum(lost), sum(abandoned), "
             "total(wait_sum) from report_dests where at >= ? and at < ? group by dest having sum(entered) != 0 "
             "order by dest")
        return [(r[0], r[1], *r[3:]) for r in self.sums.execute(q, [start, end]).fetchall()]

    def menu_sums(self, start: int, end: int) -> list[tuple]:
        """(menu, name, entered, went_on, gave_up, ended) for each IVR menu."""
        q = ("select menu, name, min(name_at), sum(entered), sum(went_on), sum(gave_up), sum(ended) "
             "from report_menus where at >= ? and at < ? group by menu having sum(entered) != 0 order by menu")
        return [(r[0], r[1], *r[3:]) for r in self.sums.execute(q, [start, end]).fetchall()]

    def menu_next(self, start: int, end: int) -> list[tuple]:
        """(menu, where callers went next, how many), each menu's in the order they were first seen."""
        q = ("select menu, next, sum(n), min(first_at) as first from report_menu_next where at >= ? and at < ? "
             "group by menu, next having sum(n) != 0 order by menu, first")
        return [r[:3] for r in self.sums.execute(q, [start, end]).fetchall()]

    def people_by_hour(self, start: int, end: int) -> list[tuple]:
        """(at, person) for each person who answered an inbound call in the office hour starting at `at`."""
        q = "select at, person from report_answerers where at >= ? and at < ? and n > 0"
        return self.sums.execute(q, [start, end]).fetchall()

    def misaligned_hours(self, start: int, end: int, offsets: Sequence[tuple[int | None, int]]) -> int:
        """Office hours and days near [start, end) that do not start on an hour (a midnight) of the offsets
        `offsets` ((until, seconds) in epoch seconds): sums made under another time zone."""
        if len(offsets) == 1:
            offset, args = "?", [int(offsets[0][1])]
        else:
            parts, args = [], []
            for until, seconds in offsets:
                parts.append("else ?" if until is None else "when at < ? then ?")
                args += [int(seconds)] if until is None else [int(until), int(seconds)]
            offset = f"(case {' '.join(parts)} end)"
        n = 0
        for table, length in (("report_hours", HOUR), *((t, 24 * HOUR) for t in DAY_TABLES)):
            q = f"select count(*) from {table} where at > ? and at < ? and (at + {offset}) % {length} != 0"
            n += self.sums.execute(q, [start - length, end, *args]).fetchone()[0]
        return n

    def cases(self, start: str, end: str) -> list[tuple]:
        """Missed-call cases opened in [start, end), counted by (short, closed, how it ended): how many,
        the seconds they took to handle added up, and the longest."""
        q = ("select coalesce(short, 0) != 0, status = 'closed', coalesce(ended_how, ''), count(*), "
             "total(coalesce(took_s, 0)), max(coalesce(took_s, 0)) from missed_cases "
             "where opened_at >= ? and opened_at < ? group by 1, 2, 3")
        return self.store.db.execute(q, [start, end]).fetchall()

    def callbacks(self, start: str, end: str) -> list[tuple]:
        """Call-back requests made in [start, end), counted by status (open, handled, failed): how many, attempts."""
        q = ("select coalesce(nullif(status, ''), 'open'), count(*), total(coalesce(attempts, 0)) from callbacks "
             "where requested_at >= ? and requested_at < ? group by 1")
        return self.store.db.execute(q, [start, end]).fetchall()

    # -- many records at once (the benchmark, tests) -------------------------------------

    def add_calls(self, rows: Iterable[dict]) -> int:
        """Write finished call records in one transaction (executemany); returns how many."""
        marks = ", ".join("?" for _ in CALL_COLUMNS)
        q = f"insert into calls ({', '.join(CALL_COLUMNS)}) values ({marks})"

        def values(row: dict) -> list[Any]:
            path = row.get("path") or []
            return [*(row.get(c) for c in CALL_COLUMNS[:-1]),
                    path if isinstance(path, str) else json.dumps(path, ensure_ascii=False)]

        rows = list(rows)
        sums = HourSums(ZoneInfo(self.store.timezone))
        for row in rows:
            sums.add({**row, "path": values(row)[-1]})
        with self.store.transaction():
            cur = self.store.db.conn.executemany(q, (values(r) for r in rows))
            sums.write(self.store.db.conn)
        return cur.rowcount

    def add_cases(self, cases: Iterable[dict], calls: Iterable[tuple[str, int, str, float, int]]) -> None:
        """Write missed-call cases (with their ids) and their calls (call_id, case_id, at, wait_s, short)."""
        cols = [c for c in CASE_COLUMNS]
        q = f"insert into missed_cases ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})"
        with self.store.transaction():
            self.store.db.conn.executemany(q, ([c.get(k) for k in cols] for c in cases))
            self.store.db.conn.executemany(
                "insert into missed_case_calls (call_id, case_id, at, wait_s, short) values (?, ?, ?, ?, ?)", calls)
