"""The store's accessors for busy-lamp subscriptions (the table: migrations_subscriptions).

The edge keeps its subscriptions in memory and writes the changed ones here
(`save`: rows upserted and keys deleted in one transaction) after each change
of state it sends; at start it reads back those not expired (`load`, which
deletes the expired ones).  Rows are plain dicts with the table's columns.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

from appliance.store import Store

COLUMNS = ("call_id", "remote_tag", "local_tag", "subscriber", "resource", "entity", "event", "remote_uri",
           "local_uri", "contact", "route", "transport", "source_host", "source_port", "expires_at", "cseq",
           "version", "created_at")


class Subscriptions:
    def __init__(self, store: Store):
        self.store = store

    def load(self, now: float) -> list[dict]:
        """The subscriptions not expired by `now`, oldest first; the expired ones are deleted."""
        with self.store.transaction():
            self.store.db.execute("delete from subscriptions where expires_at <= ?", [now])
        rows = self.store.db.execute(
            f"select {', '.join(COLUMNS)} from subscriptions order by created_at, call_id").fetchall()
        out = []
        for r in rows:
            row = dict(zip(COLUMNS, r))
            row["route"] = json.loads(row["route"] or "[]")
            out.append(row)
        return out

    def save(self, rows: Sequence[dict], removed: Iterable[tuple[str, str]]) -> None:
        """Write changed subscriptions and delete ended ones, by (call_id, remote_tag), in one transaction."""
        insert = (f"insert or replace into subscriptions ({', '.join(COLUMNS)}) "
                  f"values ({', '.join('?' * len(COLUMNS))})")
        with self.store.transaction():
            conn = self.store.db.conn
            conn.executemany("delete from subscriptions where call_id = ? and remote_tag = ?", list(removed))
            conn.executemany(insert, [[json.dumps(r[c]) if c == "route" else r[c] for c in COLUMNS] for r in rows])

    def count(self) -> int:
        return self.store.db.execute("select count(*) from subscriptions").fetchone()[0]
