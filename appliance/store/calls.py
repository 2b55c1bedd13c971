"""The store's accessors for reading call records (the `calls` table the engine's recorder writes).

The panel's call-record search: by number, by the time a call started and by
its outcome, a page at a time.  A number is looked for in every form the
records may hold it in (the engine keeps callers normalised, `+380671234567`,
but a dialled number as the provider or the phone sent it, `0441234567` or
`380441234567`), so the caller of `search` passes the forms and this module
does not read routing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from appliance.store import Store

# The columns a number can be in: who called, what was dialled, who answered, which extension placed it.
NUMBER_COLUMNS = ("caller", "dialled", "answered_by", "extension")


@dataclass(frozen=True)
class CallQuery:
    """What to look for; None (or empty) means any.  Times are ISO text in UTC, as the records keep them."""

    numbers: tuple[str, ...] = ()
    started_from: str | None = None
    started_before: str | None = None
    outcome: str | None = None
    recorded: bool = False  # only calls whose recording is kept


class CallRecords:
    def __init__(self, store: Store):
        self.store = store

    def _where(self, q: CallQuery) -> tuple[str, list[Any]]:
        parts: list[str] = []
        args: list[Any] = []
        numbers = [n for n in dict.fromkeys(q.numbers) if n]
        if numbers:
            marks = ", ".join("?" for _ in numbers)
            parts.append("(" + " or ".join(f"{c} in ({marks})" for c in NUMBER_COLUMNS) + ")")
            args += numbers * len(NUMBER_COLUMNS)
        if q.started_from:
            parts.append("started_at >= ?")
            args.append(q.started_from)
        if q.started_before:
            parts.append("started_at < ?")
            args.append(q.started_before)
        if q.outcome:
            parts.append("outcome = ?")
            args.append(q.outcome)
        if q.recorded:
            parts.append("recording is not null")
        return (" where " + " and ".join(parts)) if parts else "", args

    def search(self, q: CallQuery, page: int = 1, per_page: int = 50) -> tuple[list[dict], int]:
        """One page of the matching records, newest first (paths parsed), and how many match in all."""
        where, args = self._where(q)
        total = self.store.db.execute(f"select count(*) from calls{where}", args).fetchone()[0]
        offset = max(page - 1, 0) * per_page
        cur = self.store.db.execute(
            f"select * from calls{where} order by started_at desc, id desc limit ? offset ?",
            [*args, per_page, offset])
        return _records(cur), int(total)

    def record(self, call_id: str) -> dict | None:
        cur = self.store.db.execute("select * from calls where id = ?", [call_id])
        rows = _records(cur)
        return rows[0] if rows else None

    def outcomes(self) -> list[str]:
        """The outcomes the records hold, so a search can offer one the panel has no words for yet."""
        rows = self.store.db.execute("select distinct outcome from calls where outcome is not null").fetchall()
        return sorted(r[0] for r in rows)


def _records(cur: Any) -> list[dict]:
    cols = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        record = dict(zip(cols, row))
        record["path"] = json.loads(record.get("path") or "[]")
        out.append(record)
    return out

