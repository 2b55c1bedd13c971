"""The store's accessors for the owner's panel (tables in migrations_panel).

Sessions live on the server: the browser's cookie names a row here, and the
row's absence (logout, idle time-out) is what closes the panel to it.
Wrong passwords are counted per source address.  Configuration versions are
whole exported files, newest last.
"""

from __future__ import annotations

import secrets
from typing import Any

from appliance.store import Store

VERSION_COLUMNS = ("id", "at", "who", "summary", "document", "restored_from")


class PanelTables:
    def __init__(self, store: Store):
        self.store = store

    # -- sessions ------------------------------------------------------------------

    def open_session(self, source: str, now: float) -> str:
        sid = secrets.token_urlsafe(32)
        with self.store.transaction():
            self.store.db.execute(
                "insert into panel_sessions (id, created_at, seen_at, source) values (?, ?, ?, ?)",
                [sid, now, now, source])
        return sid

    def session_seen(self, sid: str, now: float, idle_seconds: float) -> bool:
        """True (and the session's clock reset) when the session exists and was used within idle_seconds;
        an idle one is ended here."""
        row = self.store.db.execute("select seen_at from panel_sessions where id = ?", [sid]).fetchone()
        if row is None:
            return False
        if now - row[0] > idle_seconds:
            self.end_session(sid)
            return False
        if now - row[0] > 5:  # a write per page view would be most of a page's cost
            with self.store.transaction():
                self.store.db.execute("update panel_sessions set seen_at = ? where id = ?", [now, sid])
        return True

    def end_session(self, sid: str) -> None:
        with self.store.transaction():
            self.store.db.execute("delete from panel_sessions where id = ?", [sid])

    def end_all_sessions(self, keep: str | None = None) -> None:
        """After the password changed: every other browser has to log in again."""
        with self.store.transaction():
            self.store.db.execute("delete from panel_sessions where id != ?", [keep or ""])

    def forget_idle_sessions(self, now: float, idle_seconds: float) -> None:
        with self.store.transaction():
            self.store.db.execute("delete from panel_sessions where seen_at < ?", [now - idle_seconds])

    # -- wrong passwords -------------------------------------------------------------

    def locked_until(self, source: str, now: float) -> float | None:
        row = self.store.db.execute("select locked_until from panel_failures where source = ?", [source]).fetchone()
        if row is None or row[0] is None or row[0] <= now:
            return None
        return float(row[0])

    def login_failed(self, source: str, now: float, limit: int, window: float, lockout: float) -> float | None:
        """Count a wrong password; when it is the limit-th within window seconds, the source is locked
        out for lockout seconds: returns until when."""
        with self.store.transaction():
            row = self.store.db.execute(
                "select count, first_at from panel_failures where source = ?", [source]).fetchone()
            count, first = (row[0], row[1]) if row and now - row[1] <= window else (0, now)
            count += 1
            until = now + lockout if count >= limit else None
            self.store.db.execute(
                "insert into panel_failures (source, count, first_at, locked_until) values (?, ?, ?, ?) "
                "on conflict(source) do update set count = excluded.count, first_at = excluded.first_at, "
                "locked_until = excluded.locked_until",
                [source, 0 if until else count, now if until else first, until])
        return until

    def login_succeeded(self, source: str) -> None:
        with self.store.transaction():
            self.store.db.execute("delete from panel_failures where source = ?", [source])

    # -- configuration versions ---------------------------------------------------------

    def add_version(self, at: str, who: str, summary: str, document: str, restored_from: int | None = None) -> int:
        with self.store.transaction():
            cur = self.store.db.execute(
                "insert into config_versions (at, who, summary, document, restored_from) values (?, ?, ?, ?, ?)",
                [at, who, summary, document, restored_from])
        return int(cur.lastrowid)

    def versions(self, limit: int = 200) -> list[dict[str, Any]]:
        """Newest first, without their documents."""
        rows = self.store.db.execute(
            "select id, at, who, summary, restored_from from config_versions order by id desc limit ?",
            [limit]).fetchall()
        return [dict(zip(("id", "at", "who", "summary", "restored_from"), r)) for r in rows]

    def version(self, version_id: int) -> dict[str, Any] | None:
        row = self.store.db.execute(
            "select id, at, who, summary, document, restored_from from config_versions where id = ?",
            [version_id]).fetchone()
        return dict(zip(VERSION_COLUMNS, row)) if row else None

    def version_before(self, version_id: int) -> dict[str, Any] | None:
        row = self.store.db.execute(
            "select id, at, who, summary, document, restored_from from config_versions where id < ? "
            "order by id desc limit 1", [version_id]).fetchone()
        return dict(zip(VERSION_COLUMNS, row)) if row else None

    def latest_version(self) -> dict[str, Any] | None:
        row = self.store.db.execute(
            "select id, at, who, summary, document, restored_from from config_versions order by id desc limit 1"
        ).fetchone()
        return dict(zip(VERSION_COLUMNS, row)) if row else None
