"""Call recordings in the store: the link from a call record to its file, and the list the clean-up reads.

The engine's encoder links a file once it is written (`link`); the daily
clean-up reads every linked file with its policy and start (`linked`) and
clears the links of the files it deleted (`unlink`).  The panel finds a
call's file by the call's id (`file_of`): the path comes from the record,
never from the browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from appliance.store import Store


@dataclass(frozen=True)
class Linked:
    call_id: str
    file: str          # inside the recordings folder: "2026/03/10/20260310-091502-<call id>.mp3"
    policy: str        # always, on_demand
    started_at: str    # the call's start, ISO time in UTC


class Recordings:
    def __init__(self, store: Store):
        self.store = store

    def link(self, call_id: str, file: str, policy: str) -> None:
        with self.store.transaction():
            self.store.db.execute("update calls set recording = ?, recording_policy = ? where id = ?",
                                  [file, policy, call_id])

    def file_of(self, call_id: str) -> str | None:
        row = self.store.db.execute("select recording from calls where id = ?", [call_id]).fetchone()
        return row[0] if row and row[0] else None

    def linked(self) -> list[Linked]:
        rows = self.store.db.execute(
            "select id, recording, recording_policy, started_at from calls where recording is not null "
            "order by started_at").fetchall()
        return [Linked(r[0], r[1], r[2] or "always", r[3] or "") for r in rows]

    def forget(self, call_id: str, note: dict) -> None:
        """A recording deleted by hand: the link goes, and the call's path says so (`note`)."""
        with self.store.transaction():
            row = self.store.db.execute("select path from calls where id = ?", [call_id]).fetchone()
            path = json.loads(row[0] or "[]") if row else []
            end = [p for p in path if p.get("kind") == "end"]
            path = [p for p in path if p.get("kind") != "end"] + [note] + end
            self.store.db.execute("update calls set recording = null, recording_policy = null, path = ? where id = ?",
                                  [json.dumps(path, ensure_ascii=False), call_id])

    def unlink(self, call_ids: Iterable[str]) -> None:
        ids = list(call_ids)
        if not ids:
            return
        with self.store.transaction():
            self.store.db.conn.executemany("update calls set recording = null, recording_policy = null where id = ?",
                                           [[i] for i in ids])
