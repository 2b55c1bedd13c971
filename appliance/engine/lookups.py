"""What the engine reads for every call decision, kept in memory: bindings, contacts, switches, the timezone.

The engine thread must not wait on SQLite while INVITEs queue behind it, so a
routing decision reads a `Snapshot` (an immutable object swapped in whole)
instead of the database.  `Lookups` keeps it fresh:

- a thread with its own `Store` looks every `period` (50 ms) at the change
  counters of bindings, contacts, settings and the hand-set night and
  schedule states ("switches") (moved by triggers, whoever
  writes) and re-reads only what changed, so a phone that just registered
  is known within about 50 ms, and the call records the engine writes all
  the time cost no re-reading;
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

from appliance.routing.facts import Contact, Override, contacts_by_number, saved_switches
from appliance.store import Store

log = logging.getLogger("appliance.engine.lookups")


@dataclass(frozen=True)
class Snapshot:
    bindings: dict[str, tuple[dict, ...]] = field(default_factory=dict)  # extension -> bindings, best q first
    contacts: dict[str, dict] = field(default_factory=dict)              # number -> contact row
    routing_contacts: Any = None                                         # contacts_by_number(...) for State
    timezone: ZoneInfo = ZoneInfo("UTC")
    taken_at: float = 0.0
    night: dict[str, Override] = field(default_factory=dict)       # night switch id ("" = all) -> hand-set state
    overrides: dict[str, Override] = field(default_factory=dict)   # schedule id -> hand-set state

    @property
    def bound(self) -> frozenset[str]:
        return frozenset(self.bindings)


def read_bindings(store: Store) -> dict[str, tuple[dict, ...]]:
    by_ext: dict[str, list[dict]] = {}
    for b in store.bindings():
        by_ext.setdefault(b["extension"], []).append(b)
    return {ext: tuple(sorted(rows, key=lambda b: -(b.get("q") or 0))) for ext, rows in by_ext.items()}


def read_contacts(store: Store) -> tuple[dict[str, dict], Any]:
    rows = store.contacts()
    routing = contacts_by_number(
        (c["number"], Contact(c.get("name") or "", c.get("manager"), bool(c.get("vip")))) for c in rows)
    return {c["number"]: c for c in rows}, routing


def read_switches(store: Store) -> tuple[dict[str, Override], dict[str, Override]]:
    """What `pbx trace --data` reads too: the same saved states give the same routing."""
    return saved_switches(store.routing_state("night"), store.routing_state("overrides"))


def read(store: Store) -> Snapshot:
    contacts, routing = read_contacts(store)
    return Snapshot(read_bindings(store), contacts, routing, ZoneInfo(store.timezone), time.monotonic(),
                    *read_switches(store))


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
        # Nothing seen yet: the first look reads everything again, so a write
        # between the first refresh() and this thread's start is not missed.
        seen: dict[str, int] = {}
        last = time.monotonic()
        try:
            while not self._stop.wait(self.period):
                try:
                    # Each watched table has a counter that its triggers move
                    # (the edge writes bindings, the panel contacts and
                    # settings); the call records written meanwhile move none.
                    now = store.changes()
                    changed = {name for name, n in now.items() if seen.get(name) != n}
                    if time.monotonic() - last > 5.0:
                        changed.add("bindings")  # bindings expire without a write
                    if changed:
                        self.snapshot = self._updated(store, self.snapshot, changed)
                        seen, last = now, time.monotonic()
                except Exception:  # noqa: BLE001 - keep the last snapshot, try again next period
                    log.exception("could not refresh the engine's lookups")
        finally:
            store.close()

    @staticmethod
    def _updated(store: Store, snap: Snapshot, changed: set[str]) -> Snapshot:
        """A new snapshot with only the changed parts read again."""
        bindings = read_bindings(store) if "bindings" in changed else snap.bindings
        contacts, routing = read_contacts(store) if "contacts" in changed else (snap.contacts, snap.routing_contacts)
        tz = ZoneInfo(store.timezone) if "settings" in changed else snap.timezone
        night, overrides = read_switches(store) if "switches" in changed else (snap.night, snap.overrides)
        return Snapshot(bindings, contacts, routing, tz, time.monotonic(), night, overrides)
