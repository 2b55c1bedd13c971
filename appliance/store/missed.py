"""The store's accessors for missed-call cases and the outbox (tables in migrations_missed), and the
cases' automatic callback attempts (migrations_autocall).

`MissedTables` and `Outbox` work on a `Store`'s connection, so what the
missed service writes (a case and the outbox event that reports it) commits
in one `store.transaction()`.  Rows are plain dicts; appliance.missed.cases
turns them into cases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from appliance.store import Store

CASE_COLUMNS = ("id", "caller", "dialled", "status", "short", "count", "opened_at", "last_at", "waited_s",
                "gave_up", "assigned_to", "assigned_at", "assigned_by", "closed_at", "ended_how", "closed_by",
                "closed_call", "note", "took_s")
_CASE_SQL = ", ".join(CASE_COLUMNS)
ATTEMPT_COLUMNS = ("id", "case_id", "at", "ext", "call_id", "result", "ok", "ended_at")
_ATTEMPT_SQL = ", ".join(ATTEMPT_COLUMNS)


class MissedTables:
    def __init__(self, store: Store):
        self.store = store

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict]:
        return [dict(zip(CASE_COLUMNS, r)) for r in self.store.db.execute(sql, list(args)).fetchall()]

    def case(self, case_id: int) -> dict | None:
        rows = self._rows(f"select {_CASE_SQL} from missed_cases where id = ?", [case_id])
        return rows[0] if rows else None

    def open_case_of(self, caller: str) -> dict | None:
        """The number's open case (a withheld number never has one to join)."""
        if not caller:
            return None
        rows = self._rows(f"select {_CASE_SQL} from missed_cases where caller = ? and status = 'open'", [caller])
        return rows[0] if rows else None

    def cases(self, include_closed: bool = False, limit: int = 500) -> list[dict]:
        """Open cases oldest first; with closed ones, those follow, the latest closed first."""
        where = "" if include_closed else "where status = 'open'"
        return self._rows(
            f"select {_CASE_SQL} from missed_cases {where} "
            "order by status = 'open' desc, case when status = 'open' then opened_at end, "
            "case when status = 'open' then id end, closed_at desc, id desc "
            "limit ?", [limit])

    def open_count(self) -> int:
        return self.store.db.execute("select count(*) from missed_cases where status = 'open'").fetchone()[0]

    def save_case(self, row: dict) -> int:
        """Insert a case (id None) or update it; returns its id."""
        values = {c: row.get(c) for c in CASE_COLUMNS if c != "id"}
        if row.get("id") is None:
            cols = ", ".join(values)
            cur = self.store.db.execute(
                f"insert into missed_cases ({cols}) values ({', '.join('?' for _ in values)})", list(values.values()))
            return int(cur.lastrowid)
        sets = ", ".join(f"{c} = ?" for c in values)
        self.store.db.execute(f"update missed_cases set {sets} where id = ?", [*values.values(), row["id"]])
        return int(row["id"])

    def add_call(self, case_id: int, call_id: str, at: str, wait_s: float, short: bool) -> None:
        self.store.db.execute(
            "insert or ignore into missed_case_calls (call_id, case_id, at, wait_s, short) values (?, ?, ?, ?, ?)",
            [call_id, case_id, at, wait_s, int(short)])

    def has_call(self, call_id: str) -> bool:
        return self.store.db.execute("select 1 from missed_case_calls where call_id = ?", [call_id]).fetchone() is not None

    def calls_of(self, case_id: int) -> list[str]:
        rows = self.store.db.execute("select call_id from missed_case_calls where case_id = ? order by at, call_id",
                                     [case_id]).fetchall()
        return [r[0] for r in rows]

    def call_record(self, call_id: str) -> dict | None:
        """A call's record with its path parsed; None when there is none yet."""
        cur = self.store.db.execute("select * from calls where id = ?", [call_id])
        row = cur.fetchone()
        if row is None:
            return None
        record = dict(zip([d[0] for d in cur.description], row))
        record["path"] = json.loads(record.get("path") or "[]")
        return record

    def unfiled_missed(self) -> list[str]:
        """Call ids of the engine's `missed` rows still open that no case holds yet, oldest first."""
        rows = self.store.db.execute(
            "select m.call_id from missed m where m.status = 'open' and m.call_id is not null "
            "and not exists (select 1 from missed_case_calls c where c.call_id = m.call_id) order by m.at").fetchall()
        return [r[0] for r in rows]

    def mark_missed_handled(self, call_ids: Iterable[str], by: str, at: str, note: str | None) -> None:
        """The engine's `missed` rows of a closed case: handled too, so both tables tell the same."""
        ids = list(call_ids)
        if ids:
            marks = ", ".join("?" for _ in ids)
            self.store.db.execute(
                f"update missed set status = 'handled', handled_by = ?, handled_at = ?, note = ? "
                f"where status = 'open' and call_id in ({marks})", [by, at, note, *ids])

    def names_of(self, numbers: Iterable[str]) -> dict[str, str]:
        """Contacts' names by (normalised) number, for the numbers that have one."""
        wanted = sorted({n for n in numbers if n})
        out: dict[str, str] = {}
        for i in range(0, len(wanted), 500):   # SQLite's limit on variables in one statement
            part = wanted[i:i + 500]
            marks = ", ".join("?" for _ in part)
            out.update({r[0]: r[1] for r in self.store.db.execute(
                f"select number, name from contacts where number in ({marks}) and name != ''", part).fetchall()})
        return out

    def manager_of(self, number: str) -> str | None:
        row = self.store.db.execute("select manager from contacts where number = ?", [number]).fetchone()
        return row[0] if row and row[0] else None

    # -- automatic callbacks (missed_case_attempts, migrations_autocall) --------

    def add_attempt(self, case_id: int, at: str, ext: str) -> int:
        cur = self.store.db.execute("insert into missed_case_attempts (case_id, at, ext) values (?, ?, ?)",
                                    [case_id, at, ext])
        return int(cur.lastrowid)

    def attempt_call(self, attempt_id: int, call_id: str) -> None:
        self.store.db.execute("update missed_case_attempts set call_id = ? where id = ?", [call_id, attempt_id])

    def attempt_over(self, attempt_id: int, result: str, ok: bool, at: str) -> None:
        """An attempt's end, once: a second report of it changes nothing."""
        self.store.db.execute("update missed_case_attempts set result = ?, ok = ?, ended_at = ? "
                              "where id = ? and result is null", [result[:200], int(ok), at, attempt_id])

    def attempts_of(self, case_ids: Iterable[int]) -> dict[int, list[dict]]:
        """Each case's attempts, oldest first."""
        ids = sorted(set(case_ids))
        out: dict[int, list[dict]] = {i: [] for i in ids}
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            marks = ", ".join("?" for _ in part)
            for row in self.store.db.execute(
                    f"select {_ATTEMPT_SQL} from missed_case_attempts where case_id in ({marks}) order by at, id",
                    part).fetchall():
                attempt = dict(zip(ATTEMPT_COLUMNS, row))
                attempt["ok"] = bool(attempt["ok"])
                out[attempt["case_id"]].append(attempt)
        return out

    def attempt_by_call(self, call_id: str) -> dict | None:
        row = self.store.db.execute(f"select {_ATTEMPT_SQL} from missed_case_attempts where call_id = ?",
                                    [call_id]).fetchone()
        return dict(zip(ATTEMPT_COLUMNS, row)) if row else None

    def pending_attempts(self) -> list[dict]:
        """Attempts not over yet, oldest first."""
        rows = self.store.db.execute(
            f"select {_ATTEMPT_SQL} from missed_case_attempts where result is null order by at, id").fetchall()
        return [dict(zip(ATTEMPT_COLUMNS, r)) for r in rows]


@dataclass(frozen=True)
class Delivery:
    event_id: int
    url: str
    attempts: int
    next_at: float
    kind: str
    body: str


class Outbox:
    """Events waiting for the owner's webhooks: one delivery per (event, URL), each URL in event order."""

    def __init__(self, store: Store):
        self.store = store

    def add(self, kind: str, at: str, body: dict, urls: Iterable[str]) -> int | None:
        """Queue an event for each URL (none: nothing is kept); call inside the change's transaction."""
        urls = list(dict.fromkeys(urls))
        if not urls:
            return None
        cur = self.store.db.execute("insert into outbox_events (kind, at, body) values (?, ?, ?)",
                                    [kind, at, json.dumps(body, ensure_ascii=False, sort_keys=True)])
        event_id = int(cur.lastrowid)
        self.store.db.conn.executemany("insert into outbox_deliveries (event_id, url) values (?, ?)",
                                       [(event_id, u) for u in urls])
        return event_id

    def heads(self) -> list[Delivery]:
        """Each URL's oldest delivery: a URL's later events wait for it, so they arrive in order."""
        rows = self.store.db.execute(
            "select d.event_id, d.url, d.attempts, d.next_at, e.kind, e.body from outbox_deliveries d "
            "join outbox_events e on e.id = d.event_id "
            "where d.event_id = (select min(event_id) from outbox_deliveries x where x.url = d.url) "
            "order by d.event_id").fetchall()
        return [Delivery(*r) for r in rows]

    def delivered(self, event_id: int, url: str) -> None:
        with self.store.transaction():
            self.store.db.execute("delete from outbox_deliveries where event_id = ? and url = ?", [event_id, url])
            self.store.db.execute("delete from outbox_events where id = ? and not exists "
                                  "(select 1 from outbox_deliveries where event_id = ?)", [event_id, event_id])

    def failed(self, event_id: int, url: str, next_at: float, error: str) -> None:
        with self.store.transaction():
            self.store.db.execute(
                "update outbox_deliveries set attempts = attempts + 1, next_at = ?, last_error = ? "
                "where event_id = ? and url = ?", [next_at, error[:500], event_id, url])

    def drop_urls_except(self, urls: Iterable[str]) -> int:
        """Forget deliveries to URLs no longer configured; returns how many."""
        keep = list(urls)
        marks = ", ".join("?" for _ in keep) or "''"
        with self.store.transaction():
            n = self.store.db.execute(f"delete from outbox_deliveries where url not in ({marks})", keep).rowcount
            self.store.db.execute("delete from outbox_events where not exists "
                                  "(select 1 from outbox_deliveries d where d.event_id = outbox_events.id)")
        return n

    def pending(self) -> int:
        return self.store.db.execute("select count(*) from outbox_deliveries").fetchone()[0]
