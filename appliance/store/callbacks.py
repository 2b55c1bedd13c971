"""The store's accessors for call-backs that keep a queue caller's place (columns in migrations_callbacks).

The engine writes a place when the caller presses the call-back key
(`Store.add_callback`, with `priority` and `joined_at`), reads the open ones
back when it starts, and records each attempt and the end through its
recorder thread.  Rows are plain dicts.
"""

from __future__ import annotations

from appliance.store import Store

PLACE_FIELDS = ("id", "call_id", "queue", "caller", "caller_name", "dialled", "requested_at", "status",
                "handled_by", "handled_at", "priority", "joined_at", "attempts", "last_attempt_at", "result", "callback_call")


class CallbackPlaces:
    def __init__(self, store: Store):
        self.store = store

    def open_places(self) -> list[dict]:
        """Open call-backs that hold a place in a queue, in the order they are served (VIP first, then by joining)."""
        cols = ", ".join(PLACE_FIELDS)
        rows = self.store.db.execute(
            f"select {cols} from callbacks where status = 'open' and joined_at is not null "
            "order by coalesce(priority, 0) desc, joined_at, id").fetchall()
        return [dict(zip(PLACE_FIELDS, r)) for r in rows]

    def place(self, call_id: str) -> dict | None:
        cols = ", ".join(PLACE_FIELDS)
        row = self.store.db.execute(f"select {cols} from callbacks where call_id = ?", [call_id]).fetchone()
        return dict(zip(PLACE_FIELDS, row)) if row else None

    def attempted(self, call_id: str, attempts: int, at: str, result: str, callback_call: str) -> None:
        """One attempt to call back, and how it went ("the customer was busy")."""
        with self.store.transaction():
            self.store.db.execute(
                "update callbacks set attempts = ?, last_attempt_at = ?, result = ?, callback_call = ? "
                "where call_id = ?", [attempts, at, result, callback_call, call_id])

    def finished(self, call_id: str, status: str, at: str, by: str | None, result: str,
                 callback_call: str | None = None) -> None:
        """The place is gone: `handled` (called back, by the agent) or `failed` (attempts used up, or refused)."""
        with self.store.transaction():
            self.store.db.execute(
                "update callbacks set status = ?, handled_at = ?, handled_by = ?, result = ?, "
                "callback_call = coalesce(?, callback_call) where call_id = ?",
                [status, at, by, result, callback_call, call_id])
