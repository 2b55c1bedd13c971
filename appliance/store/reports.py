"""The store's accessors for reports: call records aggregated over a date range (appliance.reports).

The engine's records (`calls`) are summed here, in SQL, grouped by what a
report asks for: the office's local day and hour, the person, the dialled
number.  Local time is the record's UTC time shifted by the office's offset,
and the offset changes with daylight saving: the caller passes `shifts`, the
offsets in force over the range as (until, seconds) pairs, the last one's
until None (appliance.reports.periods computes them; this module knows no
time zones).  Times are ISO text in UTC, as the records keep them.

What counts as what (appliance.missed.cases reads a finished call the same way):
an inbound call is *answered* when someone answered it; *lost* when nobody
did and its outcome is missed, voicemail, interrupted or abandoned; a lost
call is *abandoned* when its end reason says the caller hung up, and a
*short abandon* when it was abandoned while still in its first seconds.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

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


# A report's GROUP BY sorts every record of the range; with SQLite's default cache (2 MiB) the sort of a
# year's records spills to temporary files and takes three times as long.  Per connection, in KiB.
SORT_CACHE_KIB = 32 * 1024


class ReportTables:
    def __init__(self, store: Store):
        self.store = store
        store.db.execute(f"pragma cache_size = -{SORT_CACHE_KIB}")

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

    def waits(self, key: str, start: str, end: str, shifts: Sequence[tuple[str | None, int]]) -> list[tuple]:
        """(key, whole seconds waited rounded up, answered calls) for inbound calls answered in [start, end)."""
        sql, where, args = self._key(key, shifts)
        q = (f"select {sql} as k, {_CEIL_WAIT} as w, count(*) from calls "
             f"where started_at >= ? and started_at < ? and {_INBOUND} and {_ANSWERED} and {where} "
             "group by k, w order by k, w")
        return self.store.db.execute(q, [*args, start, end]).fetchall()

    def people_by_hour(self, key: str, start: str, end: str, shifts: Sequence[tuple[str | None, int]]) -> list[tuple]:
        """(hour `key` ("hour" or "utc_hour"), person) for each person who answered an inbound call in that hour."""
        sql, _, args = self._key(key, shifts)
        q = (f"select distinct {sql} as k, answered_by from calls "
             f"where started_at >= ? and started_at < ? and {_INBOUND} and {_ANSWERED} order by k")
        return self.store.db.execute(q, [*args, start, end]).fetchall()

    def lost_calls(self, start: str, end: str) -> list[dict]:
        """Every lost inbound call started in [start, end), oldest first: where it was when the caller
        gave up (the last step of its path) and the missed-call case it belongs to, if any."""
        q = f"""
            select c.id, c.started_at, c.caller, c.dialled, c.wait_s, c.outcome, c.path,
                   m.id, m.status, m.short, m.ended_how, m.closed_at, m.closed_by
            from calls c left join missed_case_calls k on k.call_id = c.id
                         left join missed_cases m on m.id = k.case_id
            where c.started_at >= ? and c.started_at < ? and {_lost("c.")}
            order by c.started_at, c.id"""
        cols = ("id", "started_at", "caller", "dialled", "wait_s", "outcome", "path", "case_id",
                "case_status", "case_short", "ended_how", "closed_at", "closed_by")
        out = []
        for r in self.store.db.execute(q, [start, end]).fetchall():
            row = dict(zip(cols, r))
            path = _path(row.pop("path"))
            steps = [p for p in path if p.get("kind") == "step"]
            last = steps[-1] if steps else {}
            row["reason"] = path[-1].get("reason") if path else None
            row["step"], row["dest"], row["dest_name"] = last.get("step"), last.get("dest"), last.get("name")
            out.append(row)
        return out

    def routes(self, start: str, end: str) -> list[tuple]:
        """(answered, wait_s, lost, reason, [[step, dest, name], ...]) for each inbound call started in
        [start, end): the destinations it went through, in order.  The paths are parsed here, in Python:
        SQLite's json_each with a subquery per call takes several times as long."""
        q = (f"select {_ANSWERED}, wait_s, {_LOST}, path from calls "
             f"where started_at >= ? and started_at < ? and {_INBOUND} and outcome != ?")
        out = []
        for answered, wait, lost, text in self.store.db.execute(q, [start, end, IN_PROGRESS]).fetchall():
            path = _path(text)
            steps = [[p.get("step"), p.get("dest"), p.get("name")] for p in path if p.get("kind") == "step"]
            out.append((bool(answered), wait or 0.0, bool(lost), path[-1].get("reason") if path else None, steps))
        return out

    def cases(self, start: str, end: str) -> list[dict]:
        """Missed-call cases opened in [start, end)."""
        q = (f"select {', '.join(CASE_COLUMNS)} from missed_cases "
             "where opened_at >= ? and opened_at < ? order by opened_at")
        return [dict(zip(CASE_COLUMNS, r)) for r in self.store.db.execute(q, [start, end]).fetchall()]

    def callbacks(self, start: str, end: str) -> list[dict]:
        """Call-back requests made in [start, end): status (open, handled, failed), attempts, result."""
        cols = ("requested_at", "status", "attempts", "result", "handled_at")
        q = (f"select {', '.join(cols)} from callbacks "
             "where requested_at >= ? and requested_at < ? order by requested_at")
        return [dict(zip(cols, r)) for r in self.store.db.execute(q, [start, end]).fetchall()]

    # -- many records at once (the benchmark, tests) -------------------------------------

    def add_calls(self, rows: Iterable[dict]) -> int:
        """Write finished call records in one transaction (executemany); returns how many."""
        marks = ", ".join("?" for _ in CALL_COLUMNS)
        q = f"insert into calls ({', '.join(CALL_COLUMNS)}) values ({marks})"

        def values(row: dict) -> list[Any]:
            path = row.get("path") or []
            return [*(row.get(c) for c in CALL_COLUMNS[:-1]),
                    path if isinstance(path, str) else json.dumps(path, ensure_ascii=False)]

        with self.store.transaction():
            cur = self.store.db.conn.executemany(q, (values(r) for r in rows))
        return cur.rowcount

    def add_cases(self, cases: Iterable[dict], calls: Iterable[tuple[str, int, str, float, int]]) -> None:
        """Write missed-call cases (with their ids) and their calls (call_id, case_id, at, wait_s, short)."""
        cols = [c for c in CASE_COLUMNS]
        q = f"insert into missed_cases ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})"
        with self.store.transaction():
            self.store.db.conn.executemany(q, ([c.get(k) for k in cols] for c in cases))
            self.store.db.conn.executemany(
                "insert into missed_case_calls (call_id, case_id, at, wait_s, short) values (?, ?, ?, ?, ?)", calls)
