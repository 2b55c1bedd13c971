"""What the engine reads for every call decision, kept in memory: bindings, contacts, the timezone.

The engine thread must not wait on SQLite while INVITEs queue behind it, so a
routing decision reads a `Snapshot` (an immutable object swapped in whole)
instead of the database.  `Lookups` keeps it fresh:

- a thread with its own `Store` looks every `period` (50 ms) whether another
  connection committed (bindings are written by the edge) and re-reads it
  then, so a phone that just registered is known within about 50 ms;
- `refresh(store)` rebuilds it at once on the caller's thread (the engine's
  `reload`);
- a call to an extension with no binding in the snapshot reads the store
  once more (`bindings_for`), so a phone that registered a moment ago is
  rung rather than refused.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appliance.routing.facts import Contact, contacts_by_number
from appliance.store import Store

log = logging.getLogger("appliance.engine.lookups")


@dataclass(frozen=True)
class Snapshot:
    bindings: dict[str, tuple[dict, ...]] = field(default_factory=dict)  # extension -> bindings, best q first
    contacts: dict[str, dict] = field(default_factory=dict)              # number -> contact row
    routing_contacts: Any = None                                         # contacts_by_number(...) for State
    timezone: ZoneInfo = ZoneInfo("UTC")
    taken_at: float = 0.0

    @property
    def bound(self) -> frozenset[str]:
        return frozenset(self.bindings)


def read(store: Store) -> Snapshot:
    by_ext: dict[str, list[dict]] = {}
    for b in store.bindings():
        by_ext.setdefault(b["extension"], []).append(b)
    bindings = {ext: tuple(sorted(rows, key=lambda b: -(b.get("q") or 0))) for ext, rows in by_ext.items()}
    rows = store.contacts()
    contacts = {c["number"]: c for c in rows}
    routing = contacts_by_number(
        (c["number"], Contact(c.get("name") or "", c.get("manager"), bool(c.get("vip")))) for c in rows)
    return Snapshot(bindings, contacts, routing, ZoneInfo(store.timezone), time.monotonic())


class Lookups:
    def __init__(self, path: str | Path, period: float = 0.05):
        self.path = path
        self.period = period
        self.snapshot = Snapshot()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="engine-lookups", daemon=True)

    def start(self) -> None:
        """Start re-reading every `period` seconds (call `refresh` first for the first snapshot)."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def refresh(self, store: Store) -> None:
        self.snapshot = read(store)

    def bindings_for(self, store: Store, extension: str) -> tuple[dict, ...]:
        """Engine thread: an extension's bindings; the store is read only when the snapshot has none."""
        found = self.snapshot.bindings.get(extension)
        if found:
            return found
        return tuple(store.bindings(extension))

    def _main(self) -> None:
        store = Store(self.path)
        seen, last = None, time.monotonic()
        try:
            while not self._stop.wait(self.period):
                try:
                    # data_version moves when another connection commits (the
                    # edge's bindings, the records): only then is it worth a read.
                    version = store.db.execute("PRAGMA data_version").fetchone()[0]
                    if version != seen or time.monotonic() - last > 5.0:  # expiries need no commit
                        self.snapshot = read(store)
                        seen, last = version, time.monotonic()
                except Exception:  # noqa: BLE001 - keep the last snapshot, try again next period
                    log.exception("could not refresh the engine's lookups")
        finally:
            store.close()
