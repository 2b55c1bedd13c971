"""`pbx bench store`: the appliance's writers on one SQLite file at once, and how long each waited.

As `pbx run` and the panel write: the edge (a bindings flush of `--bindings`
rows in one transaction every second, and bans), the engine's recorder (each
call's start, answer, end, missed call and events, `--calls` calls a second),
each on its own thread and connection in this process; the panel in another
process (an owner's edit every 100 ms, and every `--import-every` seconds an
import of the whole configuration); and readers (what the engine's lookups
and `pbx phones` read).  One WAL file, busy_timeout 10 s, as the store opens it.

Printed per writer: writes, the median and longest time a write took (its
wait for the write lock included: SQLite's busy handler sleeps 1, 2, 5 ...
100 ms between tries), the longest from when a write was due to its commit
(a queue's delay: a writer that falls behind shows it here), and the
"database is locked" errors.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import queue
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click

from appliance.store import DB_NAME, Store, now_iso

FIRST_EXTENSION = 1000
PANEL_TICK = 0.1  # the panel's edits, a second apart in life, come ten a second here
EDGE_TICK = 0.2  # bans and the housekeeping read five times a second, the flush every fifth


@dataclass
class Tally:
    """One writer's (or the readers') figures."""

    name: str
    took: list[float] = field(default_factory=list)
    late: float = 0.0  # the longest from due to done, seconds
    locked: Counter = field(default_factory=Counter)  # "database is locked", by what was written
    failed: list[str] = field(default_factory=list)

    def run(self, work: Callable[[], object], due: float, what: str = "") -> None:
        start = time.perf_counter()
        try:
            work()
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                self.locked[what or self.name] += 1
            else:
                self.failed.append(repr(e))
        except Exception as e:  # noqa: BLE001 - counted and printed: the run goes on
            self.failed.append(repr(e))
        done = time.perf_counter()
        self.took.append(done - start)
        self.late = max(self.late, done - due)

    def line(self) -> str:
        if not self.took:
            return f"{self.name:14} {0:>7}"
        ms = [t * 1000 for t in self.took]
        return (f"{self.name:14} {len(ms):>7} {sum(self.locked.values()):>7} {statistics.median(ms):>10.2f} "
                f"{max(ms):>11.1f} {self.late * 1000:>13.1f}")


def _paced(until: float, interval: float, tick: Callable[[int, float], None]) -> None:
    """tick(i, due) at start + i * interval until `until`; a tick that is late runs at once, as a queue's backlog would."""
    start = time.perf_counter()
    i = 0
    while (due := start + i * interval) < until:
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        tick(i, due)
        i += 1


def _binding(i: int, now: float) -> dict:
    n = FIRST_EXTENSION + i
    return {"extension": str(n), "contact": f"sip:{n}@10.0.{i // 250}.{i % 250 + 1}:5060", "source_host": "192.0.2.7",
            "source_port": 5060 + i, "transport": "udp", "user_agent": "bench", "call_id": f"r{i}", "cseq": 1,
            "q": 1.0, "expires_at": now + 3600, "registered_at": now, "instance": None}


def edge_writer(path: Path, until: float, bindings: int, flush: Tally, bans: Tally, reads: Tally) -> None:
    """The edge's loop thread: a flush every second, a ban and the housekeeping read every tick."""
    with Store(path, migrate=False) as store:
        rows = [_binding(i, time.time()) for i in range(bindings)]
        seen = store.data_version()

        def tick(i: int, due: float) -> None:
            nonlocal seen
            now = time.time()
            if i % round(1 / EDGE_TICK) == 0:
                for r in rows:  # every phone refreshed within the second: a power cut's worth
                    r["expires_at"], r["cseq"] = now + 3600, r["cseq"] + 1
                flush.run(lambda: store.save_bindings(rows, []), due)
            bans.run(lambda: store.save_ban(f"203.0.113.{i % 250 + 1}", now, now + 600, "flood"), due)

            def housekeeping() -> None:
                nonlocal seen
                version = store.data_version()
                if version != seen:
                    seen = version
                    store.bans(now)
                    store.trunks()
            reads.run(housekeeping, due)

        _paced(until, EDGE_TICK, tick)


def engine_writer(path: Path, until: float, calls: int, tally: Tally) -> None:
    """The engine's recorder thread: each call's writes, one transaction each, as B2BUA submits them."""
    with Store(path, migrate=False) as store:
        def tick(i: int, due: float) -> None:
            call_id, at = f"bench-{os.getpid()}-{i}", now_iso()
            row = {"id": call_id, "started_at": at, "direction": "inbound", "caller": f"+38050{i % 10**7:07d}",
                   "dialled": "+380441234567", "trunk": "main"}
            answered = i % 4 != 0  # one call in four is missed
            by = str(FIRST_EXTENSION + i % 50)
            final = {**row, "ended_at": at, "outcome": "answered" if answered else "missed",
                     "answered_at": at if answered else None, "answered_by": by if answered else None,
                     "wait_s": 3.0, "talk_s": 60.0 if answered else 0.0, "path": [{"kind": "end", "reason": "hangup"}]}
            missed = None if answered else {"caller": row["caller"], "dialled": row["dialled"], "at": at, "manager": None}
            writes = [
                ("call_started", lambda: store.call_started(row)),
                ("append_event", lambda: store.append_event("CallStarted", {"caller": row["caller"]}, call_id, at)),
                ("append_event", lambda: store.append_event("CallRinging", {"targets": [by]}, call_id, at)),
                ("call_answered", (lambda: store.call_answered(call_id, at, by)) if answered else None),
                ("set_routing_state", lambda: store.set_routing_state("positions", {"office": i % 50})),
                ("finish_call", lambda: store.finish_call(final, missed)),
                ("append_event", lambda: store.append_event("CallEnded", {"outcome": final["outcome"]}, call_id, at)),
            ]
            for what, w in writes:
                if w is not None:
                    tally.run(w, due, what)

        _paced(until, 1 / calls, tick)


def reader(path: Path, until: float, tally: Tally) -> None:
    """What the engine's lookups and the panel read: the change counters, a phone's bindings, recent calls."""
    with Store(path, migrate=False) as store:
        def tick(i: int, due: float) -> None:
            tally.run(lambda: (store.changes(), store.bindings(str(FIRST_EXTENSION + i % 100)), store.recent_calls(20)),
                      due)

        _paced(until, 0.05, tick)


def panel_writer(path: Path, start_wall: float, seconds: float, import_every: float, out: multiprocessing.Queue) -> None:
    """Another process, as the panel and the CLI are: small edits, and now and then a whole import."""
    from appliance.configfile import export_config, import_config

    edits, imports = Tally("panel edits"), Tally("panel import")
    with Store(path, migrate=False) as store:
        text = export_config(store)
        document = store.routing_document()
        per_import = max(1, round(import_every / PANEL_TICK)) if import_every > 0 else 0
        # perf_counter is per process: the start comes as wall time.
        time.sleep(max(0.0, start_wall - time.time()))
        until = time.perf_counter() + seconds

        def tick(i: int, due: float) -> None:
            if per_import and i % per_import == per_import - 1:
                imports.run(lambda: import_config(store, text), due)
                return
            number = str(900 + i // 6 % 50)  # added, then removed six ticks on
            what, edit = (
                ("set_setting", lambda: store.set_setting("panel_note", i)),
                ("put_contact", lambda: store.put_contact({"number": f"+38044{i % 1000:07d}", "name": "Client"})),
                ("add_extensions", lambda: store.add_extensions([(number, "Temporary", None)])),
                ("remove_extension", lambda: store.remove_extension(number)),
                ("set_routing_document", lambda: store.set_routing_document(document)),
                ("delete_ban", lambda: store.delete_ban(f"203.0.113.{i % 250 + 1}")),
            )[i % 6]
            edits.run(edit, due, what)

        _paced(until, PANEL_TICK, tick)
    out.put([edits, imports])


def prepare(path: Path, bindings: int) -> None:
    from appliance.defaults import seed_defaults

    with Store(path) as store:
        seed_defaults(store)
        store.add_extensions((str(FIRST_EXTENSION + i), f"Bench {i}", "bench") for i in range(bindings))
        store.put_trunk({"name": "main", "host": "192.0.2.1", "username": "office", "password": "bench",
                         "auth_username": "", "from_domain": "", "caller_id": ""})
        store.save_bindings([_binding(i, time.time()) for i in range(bindings)], [])


@click.command("store")
@click.option("--seconds", default=20.0, show_default=True, help="How long every writer runs.")
@click.option("--calls", default=50, show_default=True, help="Calls a second the engine-like writer records.")
@click.option("--bindings", default=1000, show_default=True, help="Bindings in the edge's flush every second.")
@click.option("--readers", default=2, show_default=True, help="Reader threads.")
@click.option("--import-every", default=5.0, show_default=True,
              help="Seconds between the panel's imports of the whole configuration (0: none).")
def store(seconds: float, calls: int, bindings: int, readers: int, import_every: float) -> None:
    """Run the appliance's writers on one SQLite file at once; print each one's longest write and lock errors.

    Example: pbx bench store --seconds 20 --calls 50 --bindings 1000
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / DB_NAME
        prepare(path, bindings)
        flush, bans, edge_reads = Tally("edge flush"), Tally("edge bans"), Tally("edge reads")
        engine, reads = Tally("engine"), Tally("readers")
        out: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
        # The panel's process needs a moment to start: all begin together, a few seconds on.
        start_at, start_wall = time.perf_counter() + 3.0, time.time() + 3.0
        until = start_at + seconds
        panel = multiprocessing.get_context("spawn").Process(
            target=panel_writer, args=(path, start_wall, seconds, import_every, out), daemon=True)
        panel.start()
        threads = [
            threading.Thread(target=_at, args=(start_at, edge_writer, path, until, bindings, flush, bans, edge_reads)),
            threading.Thread(target=_at, args=(start_at, engine_writer, path, until, calls, engine)),
            *(threading.Thread(target=_at, args=(start_at, reader, path, until, reads)) for _ in range(readers)),
        ]
        for t in threads:
            t.start()
        wal, wal_mib = path.with_name(path.name + "-wal"), 0.0
        while any(t.is_alive() for t in threads):
            # Readers always at work can keep a checkpoint from restarting the WAL: watch it grow.
            wal_mib = max(wal_mib, wal.stat().st_size / 2**20 if wal.exists() else 0.0)
            time.sleep(0.5)
        panel_tallies = _panel_result(panel, out)

    click.echo(f"{seconds:.0f} s on {platform.machine()}, {os.cpu_count()} cores, SQLite {sqlite3.sqlite_version}; "
               f"{calls} calls/s, a flush of {bindings} bindings/s, {readers} readers; the WAL file's largest {wal_mib:.1f} MiB")
    click.echo(f"{'writer':14} {'writes':>7} {'locked':>7} {'median ms':>10} {'longest ms':>11} {'due→done ms':>13}")
    for tally in (flush, bans, edge_reads, engine, *panel_tallies, reads):
        click.echo(tally.line())
        if tally.locked:
            click.echo("    locked in: " + ", ".join(f"{what} {n}" for what, n in tally.locked.most_common()))
        for failure in sorted(set(tally.failed))[:3]:
            click.echo(f"    failed: {failure}")


def _at(start_at: float, target: Callable[..., None], *args: object) -> None:
    time.sleep(max(0.0, start_at - time.perf_counter()))
    target(*args)



def _panel_result(panel: multiprocessing.process.BaseProcess, out: multiprocessing.Queue) -> list[Tally]:
    """The panel process's tallies; an error when it died without them."""
    while True:
        try:
            tallies = out.get(timeout=1.0)
            panel.join(10)
            return tallies
        except queue.Empty:
            if not panel.is_alive():
                raise click.ClickException(f"the panel's process ended with code {panel.exitcode} and no figures")
