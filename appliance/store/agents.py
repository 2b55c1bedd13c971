"""The store's accessors for agents' statuses (table `agent_status`, migrations_agents).

A status is what a person says about themselves: `available`, `break`,
`lunch` or `wrapup` (after-call work).  The engine reads them all when it
starts and writes each change through its recorder thread; the panel writes
here directly only when no appliance runs.  Rows are plain dicts.
"""

from __future__ import annotations

from datetime import datetime, timezone

from appliance.store import Store

STATUSES = ("available", "break", "lunch", "wrapup")
AVAILABLE = "available"


class AgentStatuses:
    def __init__(self, store: Store):
        self.store = store

    def all(self) -> dict[str, dict]:
        """Extension -> {status, since, by}; extensions without a row are available."""
        rows = self.store.db.execute("select extension, status, since, by from agent_status").fetchall()
        return {ext: {"status": status, "since": since, "by": by} for ext, status, since, by in rows}

    def get(self, ext: str) -> dict:
        return self.all().get(ext) or {"status": AVAILABLE, "since": None, "by": ""}

    def set(self, ext: str, status: str, by: str = "", at: str | None = None) -> dict:
        if status not in STATUSES:
            raise ValueError(f"{status!r} is not a status: one of {', '.join(STATUSES)}")
        at = at or datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self.store.transaction():
            self.store.db.execute(
                "insert into agent_status (extension, status, since, by) values (?, ?, ?, ?) "
                "on conflict(extension) do update set status = excluded.status, since = excluded.since, "
                "by = excluded.by", [ext, status, at, by])
        return {"status": status, "since": at, "by": by}
