"""The appliance's one SQLite file: configuration, registrations, call records, events.

`Store` opens the file in WAL mode (readers do not block the writer) and
applies pending migrations.  Each thread that needs the store opens its own
`Store` on the same path: a sqlite3 connection belongs to one thread.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from sqlite_utils import Database

from appliance.errors import ConfigError
from appliance.night.saved import COLUMNS as NIGHT_COLUMNS, NightRow, routing_copy
from appliance.store.schema import migrations

DB_NAME = "pbx.sqlite3"
_NIGHT_SQL = ", ".join(f'"{c}"' for c in NIGHT_COLUMNS)  # quoted: "by" is an SQL keyword
DEFAULT_REALM = "pbx"
DEFAULT_TIMEZONE = "Europe/Kyiv"
DEFAULT_EXTENSIONS = ("101", "102", "103")
EXTENSION_MIN_LEN, EXTENSION_MAX_LEN = 2, 6
IN_PROGRESS = "in progress"  # a call record's outcome until the call ends
# The edge looks an HA1 up for every request with credentials: one fixed
# statement per digest algorithm, no table introspection on that path.
_HA1_SQL = {
    "MD5": "select ha1_md5 from extensions where number = ?",
    "SHA-256": "select ha1_sha256 from extensions where number = ?",
}

# Out of the box every inbound call rings every desk phone; the owner then
# builds the real flow in the panel or a configuration file.  Plain data: the
# store does not read routing (appliance.defaults has routing check it).
DEFAULT_ROUTING = {
    "groups": {
        "office": {
            "name": "Office",
            "strategy": "ringall",
            "members": list(DEFAULT_EXTENSIONS),
            "ring_time": 30,
            "on_fail": "hangup",
        }
    },
    "unmatched": "group:office",
}


def ha1(number: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username:realm:password) for digest authentication (RFC 7616 section 3.4.2)."""
    h = hashlib.sha256 if algorithm.upper().startswith("SHA-256") else hashlib.md5
    return h(f"{number}:{realm}:{password}".encode()).hexdigest()


def generate_password() -> str:
    # 12 characters from an alphabet a person can read off a screen and type
    # into a phone's keypad menu without confusing 0/O or 1/l.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def validate_extension_number(number: str) -> str:
    number = str(number).strip()
    if not number.isdigit() or not EXTENSION_MIN_LEN <= len(number) <= EXTENSION_MAX_LEN:
        raise ConfigError(
            f"extension number {number!r} must be {EXTENSION_MIN_LEN} to {EXTENSION_MAX_LEN} digits"
        )
    if number.startswith("0"):
        # 0 starts an outside number in Ukrainian dialling (0XX XXX XX XX).
        raise ConfigError(f"extension number {number!r} must not start with 0: that is how outside numbers start")
    return number


class Store:
    def __init__(self, path: str | Path, *, migrate: bool = True):
        path = Path(path)
        if path.is_dir() or path.suffix == "":
            path.mkdir(parents=True, exist_ok=True)
            path = path / DB_NAME
        self.path = path
        conn = sqlite3.connect(str(path), timeout=10, check_same_thread=False, isolation_level=None)
        self.db = Database(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode loses no committed data on an application crash;
        # only a power cut can drop the last transactions, never corrupt.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- settings ------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("select value from settings where key = ?", [key]).fetchone()
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        self.db["settings"].upsert({"key": key, "value": json.dumps(value)}, pk="key")

    def settings(self) -> dict[str, Any]:
        return {r["key"]: json.loads(r["value"]) for r in self.db["settings"].rows}

    @property
    def realm(self) -> str:
        return self.get_setting("sip_realm", DEFAULT_REALM)

    @property
    def timezone(self) -> str:
        return self.get_setting("timezone", DEFAULT_TIMEZONE)

    # -- extensions ----------------------------------------------------------

    def extension(self, number: str) -> dict | None:
        rows = list(self.db["extensions"].rows_where("number = ?", [str(number)]))
        return rows[0] if rows else None

    def extensions(self) -> list[dict]:
        return list(self.db["extensions"].rows_where(order_by="number"))

    def add_extension(self, number: str, name: str, password: str | None = None) -> str:
        """Add an extension; returns its password (generated when not given)."""
        number = validate_extension_number(number)
        if self.extension(number):
            raise ConfigError(f"extension {number} already exists")
        if not name.strip():
            raise ConfigError("an extension needs a name")
        password = password or generate_password()
        realm = self.realm
        self.db["extensions"].insert(
            {
                "number": number,
                "name": name.strip(),
                "ha1_md5": ha1(number, realm, password, "MD5"),
                "ha1_sha256": ha1(number, realm, password, "SHA-256"),
                "realm": realm,
                "created_at": now_iso(),
            }
        )
        return password

    def put_extension(self, row: dict) -> None:
        """Insert or replace an extension as exported (HA1 values, no password)."""
        self.db["extensions"].upsert(row, pk="number")

    def set_password(self, number: str, password: str | None = None) -> str:
        if not self.extension(number):
            raise ConfigError(f"no extension {number}")
        password = password or generate_password()
        realm = self.realm
        self.db["extensions"].update(
            number,
            {
                "ha1_md5": ha1(number, realm, password, "MD5"),
                "ha1_sha256": ha1(number, realm, password, "SHA-256"),
                "realm": realm,
            },
        )
        return password

    def remove_extension(self, number: str) -> None:
        if not self.extension(number):
            raise ConfigError(f"no extension {number}")
        with self.db.atomic():
            self.db.execute("delete from bindings where extension = ?", [number])
            self.db["extensions"].delete(number)

    def seed_defaults(self, check_routing: Callable[[dict, dict[str, str], str], dict] | None = None
                      ) -> dict[str, str] | None:
        """First run: timezone, realm, extensions 101-103 and a routing that rings them.

        Returns {number: password} the one time it creates them, else None:
        the passwords are shown once and only their digests are kept.
        `check_routing(document, extensions, timezone)` gives the routing
        document to save for the plain default (appliance.defaults passes
        routing's parse and dump); without it the plain document is saved.
        """
        if self.get_setting("seeded"):
            return None
        created = {}
        with self.db.atomic():
            self.set_setting("timezone", self.get_setting("timezone", DEFAULT_TIMEZONE))
            self.set_setting("sip_realm", self.realm)
            if not self.extensions():
                for number in DEFAULT_EXTENSIONS:
                    created[number] = self.add_extension(number, f"Extension {number}")
            if not self.routing_document():
                # Every inbound call rings every desk phone, also when the
                # extensions were added (by command) before the first start.
                extensions = {e["number"]: e["name"] for e in self.extensions()}
                document = json.loads(json.dumps(DEFAULT_ROUTING))
                document["groups"]["office"]["members"] = sorted(extensions)
                if check_routing is not None:
                    document = check_routing(document, extensions, self.timezone)
                self.set_routing_document(document)
            self.set_setting("seeded", True)
        return created

    # -- trunks, contacts, routing -------------------------------------------

    def trunks(self) -> list[dict]:
        out = []
        for row in self.db["trunks"].rows_where(order_by="name"):
            row["numbers"] = json.loads(row["numbers"] or "[]")
            row["addresses"] = json.loads(row["addresses"] or "[]")
            out.append(row)
        return out

    def put_trunk(self, trunk: dict) -> None:
        row = dict(trunk)
        row["numbers"] = json.dumps(list(row.get("numbers") or []))
        row["addresses"] = json.dumps(list(row.get("addresses") or []))
        self.db["trunks"].upsert(row, pk="name")

    def changes(self) -> dict[str, int]:
        """How many writes each watched table has seen (see migrations_engine.m_engine_002_changes)."""
        return dict(self.db.execute("select name, n from changes").fetchall())

    def contacts(self) -> list[dict]:
        return list(self.db["contacts"].rows_where(order_by="number"))

    def put_contact(self, contact: dict) -> None:
        row = dict(contact)
        row.setdefault("updated_at", now_iso())
        self.db["contacts"].upsert(row, pk="number")

    def routing_document(self) -> dict:
        row = self.db.execute("select document from routing where id = 1").fetchone()
        return json.loads(row[0]) if row else {}

    def set_routing_document(self, document: dict) -> None:
        self.db["routing"].upsert(
            {"id": 1, "document": json.dumps(document, ensure_ascii=False), "updated_at": now_iso()}, pk="id"
        )

    def routing_state(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("select value from routing_state where key = ?", [key]).fetchone()
        return default if row is None else json.loads(row[0])

    def set_routing_state(self, key: str, value: Any) -> None:
        self.db["routing_state"].upsert({"key": key, "value": json.dumps(value)}, pk="key")

    # -- night switches (appliance/night) --------------------------------------

    def night_states(self) -> dict[str, NightRow]:
        """Each night switch's saved state, by switch id."""
        rows = self.db.execute(f"select {_NIGHT_SQL} from night order by switch").fetchall()
        return {r[0]: NightRow(**dict(zip(NIGHT_COLUMNS, r))) for r in rows}

    def save_night(self, rows: Iterable[NightRow], events: Iterable[dict] = ()) -> None:
        """Save switches' states and the events that changed them, in one transaction.

        Routing's copy of the hand-set states (`routing_state` "night", see
        appliance.night.saved.routing_copy) is rewritten from the whole table
        in the same transaction, so the next call follows the change."""
        marks = ", ".join("?" for _ in NIGHT_COLUMNS)
        with self.db.atomic():
            for row in rows:
                self.db.execute(f"insert or replace into night ({_NIGHT_SQL}) values ({marks})",
                                [row[c] for c in NIGHT_COLUMNS])
            for e in events:
                self.db.execute("insert into events (at, kind, call_id, data) values (?, ?, null, ?)",
                                [e.get("at") or now_iso(), e["kind"], json.dumps(e, ensure_ascii=False)])
            saved = routing_copy(self.night_states().values())
            self.db.execute("insert or replace into routing_state (key, value) values ('night', ?)", [json.dumps(saved)])

    # -- calls, missed calls, events -----------------------------------------

    def record_call(self, call: dict) -> None:
        """Write a call's record whole; the reports' sums follow it in the same transaction."""
        from appliance.store.reports import counted

        row = dict(call)
        row["path"] = json.dumps(row.get("path") or [], ensure_ascii=False)
        with self._writing(), counted(self, row["id"]):
            self.db["calls"].upsert(row, pk="id")

    def call_started(self, call: dict) -> None:
        """A call's record from its first moment (outcome "in progress"), so a crash cannot lose it."""
        row = {**call, "outcome": IN_PROGRESS}
        row["path"] = json.dumps(row.get("path") or [], ensure_ascii=False)
        with self.db.conn:
            self.db.execute(
                f"insert or ignore into calls ({', '.join(row)}) values ({', '.join('?' for _ in row)})",
                list(row.values()))

    def call_answered(self, call_id: str, at: str, by: str) -> None:
        with self.db.conn:
            self.db.execute("update calls set answered_at = ?, answered_by = ? where id = ? and outcome = ?",
                            [at, by, call_id, IN_PROGRESS])

    def forget_call(self, call_id: str) -> None:
        """Drop a record still in progress (a call that became part of another, as a pickup does)."""
        with self.db.conn:
            self.db.execute("delete from calls where id = ? and outcome = ?", [call_id, IN_PROGRESS])

    def interrupted_calls(self) -> list[dict]:
        """Records still "in progress": calls that were up when the engine last stopped without ending them."""
        cols = [c.name for c in self.db["calls"].columns]
        rows = self.db.execute("select * from calls where outcome = ? order by started_at", [IN_PROGRESS]).fetchall()
        return [dict(zip(cols, r)) for r in rows]

    def close_interrupted(self, call: dict, ended_at: str, reason: str, missed_manager: str | None,
                          missed: bool) -> None:
        """End an interrupted call's record with what is known; an unanswered customer call becomes a missed call."""
        from appliance.store.reports import counted

        path = json.loads(call.get("path") or "[]")
        path.append({"kind": "end", "reason": reason, "rung": []})
        with self._writing(), counted(self, call["id"]):
            self.db.execute(
                "update calls set outcome = ?, ended_at = ?, path = ? where id = ? and outcome = ?",
                ["interrupted", ended_at, json.dumps(path, ensure_ascii=False), call["id"], IN_PROGRESS])
            if missed:
                self.add_missed(call["id"], call["caller"], call["dialled"], ended_at, missed_manager)

    def recent_calls(self, limit: int = 50) -> list[dict]:
        rows = self.db.execute(
            "select * from calls order by started_at desc limit ?", [limit]
        ).fetchall()
        cols = [c.name for c in self.db["calls"].columns]
        out = []
        for r in rows:
            d = dict(zip(cols, r))
            d["path"] = json.loads(d["path"] or "[]")
            out.append(d)
        return out

    def add_missed(self, call_id: str, caller: str, dialled: str, at: str, manager: str | None) -> int:
        return self.db["missed"].insert(
            {"call_id": call_id, "caller": caller, "dialled": dialled, "at": at, "manager": manager, "status": "open"}
        ).last_pk

    def open_missed(self) -> list[dict]:
        return list(self.db["missed"].rows_where("status = 'open'", order_by="at"))

    def append_event(self, kind: str, data: dict | None = None, call_id: str | None = None, at: str | None = None) -> None:
        # Plain SQL: the engine appends several events per call, and sqlite-utils'
        # insert costs about four times as much Python time per row.
        with self.db.conn:
            self.db.execute("insert into events (at, kind, call_id, data) values (?, ?, ?, ?)",
                            [at or now_iso(), kind, call_id, json.dumps(data or {}, ensure_ascii=False)])

    def append_event_out(self, kind: str, data: dict, call_id: str | None, at: str, urls: Iterable[str]) -> None:
        """An event, and the same event in the outbox for the owner's webhooks, in one transaction:
        a crash keeps both or neither, so the CRM hears of every call the records hold."""
        from appliance.store.missed import Outbox

        with self._writing():
            self.db.execute("insert into events (at, kind, call_id, data) values (?, ?, ?, ?)",
                            [at, kind, call_id, json.dumps(data, ensure_ascii=False)])
            Outbox(self).add(kind, at, {"at": at, "call_id": call_id, **data}, urls)

    def events(self, limit: int = 100) -> Iterator[dict]:
        for r in self.db.execute("select id, at, kind, call_id, data from events order by id desc limit ?", [limit]):
            yield {"id": r[0], "at": r[1], "kind": r[2], "call_id": r[3], "data": json.loads(r[4])}

    # -- bindings (read side; the edge owns writing them) ---------------------

    def bindings(self, extension: str | None = None, now: float | None = None) -> list[dict]:
        now = time.time() if now is None else now
        if extension is None:
            return list(self.db["bindings"].rows_where("expires_at > ?", [now], order_by="extension, contact"))
        return list(
            self.db["bindings"].rows_where("extension = ? and expires_at > ?", [extension, now], order_by="q desc")
        )

    # -- transactions -----------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """What the caller writes inside commits together or not at all (nested: a savepoint)."""
        with self._writing():
            yield self

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A write transaction that takes the write lock first (BEGIN IMMEDIATE), waiting up to busy_timeout.

        A plain (deferred) BEGIN that reads before it writes cannot wait: when
        another connection commits in between, its snapshot is stale and
        SQLite answers "database is locked" at once, busy_timeout or not
        (SQLITE_BUSY_SNAPSHOT; `pbx bench store` meets it every few seconds).
        Inside a transaction already open, a savepoint."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- what the SIP edge reads and writes ---------------------------------------

    def ha1_of(self, number: str, algorithm: str) -> str | None:
        """The extension's HA1 for a digest algorithm (SHA-256, else MD5); None when there is no such extension."""
        sql = _HA1_SQL["SHA-256" if algorithm == "SHA-256" else "MD5"]
        row = self.db.conn.execute(sql, [number]).fetchone()
        return None if row is None else row[0]

    def add_extensions(self, entries: Iterable[tuple[str, str, str | None]]) -> dict[str, str]:
        """Add (number, name, password) extensions in one transaction; returns {number: password}.

        One commit instead of one per extension: a thousand cost a thousand
        fsyncs of the WAL otherwise."""
        with self._writing():
            return {number: self.add_extension(number, name, password) for number, name, password in entries}

    def load_bindings(self, now: float) -> list[dict]:
        """Drop the bindings that expired by `now` and return the others as stored (the edge's start)."""
        self.db.execute("delete from bindings where expires_at <= ?", [now])
        return list(self.db["bindings"].rows)

    def save_bindings(self, rows: Sequence[dict], removed: Iterable[tuple[str, str]]) -> list[int]:
        """Write the edge's changed bindings and delete removed (extension, contact) pairs, in one transaction.

        Columns the table lacks are left out (`instance` comes with a
        migration).  Returns the positions in `rows` the store refused: a
        binding whose extension is gone breaks the foreign key, and the others
        are written all the same."""
        present = self.db["bindings"].columns_dict
        cols = [c for c in rows[0] if c in present] if rows else []
        insert = f"insert or replace into bindings ({', '.join(cols)}) values ({', '.join('?' * len(cols))})"
        refused: list[int] = []
        conn = self.db.conn
        with self._writing():
            conn.executemany("delete from bindings where extension = ? and contact = ?", removed)
            for i, row in enumerate(rows):
                try:
                    conn.execute(insert, [row[c] for c in cols])
                except sqlite3.IntegrityError:
                    refused.append(i)
        return refused

    def drop_ended_bans(self, now: float) -> int:
        """Delete the bans that were over by `now`; returns how many."""
        return self.db.execute("delete from bans where until <= ?", [now]).rowcount

    def bans(self, now: float) -> list[dict]:
        """The bans not yet over, soonest to end first (only reads: never waits for a writer)."""
        sql = "select address, reason, banned_at, until from bans where until > ? order by until, address"
        return [dict(zip(("address", "reason", "banned_at", "until"), r)) for r in self.db.execute(sql, [now]).fetchall()]

    def save_ban(self, address: str, banned_at: float, until: float, reason: str) -> None:
        self.db.execute("insert or replace into bans (address, reason, banned_at, until) values (?, ?, ?, ?)",
                        [address, reason, banned_at, until])

    def delete_ban(self, address: str) -> bool:
        """Lift a ban; False when there was none."""
        return self.db.execute("delete from bans where address = ?", [address]).rowcount > 0

    def data_version(self) -> int:
        """Changes whenever another connection committed to the file (SQLite's data_version): the cue to read again.

        Commits on this connection leave it as it is."""
        return self.db.execute("pragma data_version").fetchone()[0]

    # -- what the configuration import replaces ------------------------------------

    def remove_extensions_except(self, keep: Sequence[str]) -> None:
        """Remove every extension not in `keep`, and its bindings (their foreign key would refuse otherwise)."""
        marks = ",".join("?" * len(keep)) or "''"
        with self._writing():
            self.db.execute(f"delete from bindings where extension not in ({marks})", list(keep))
            self.db.execute(f"delete from extensions where number not in ({marks})", list(keep))

    def remove_trunks(self) -> None:
        self.db.execute("delete from trunks")

    def remove_listed_contacts(self) -> None:
        """Remove the contacts the owner listed; managers learned from answered calls (learned = 1) stay."""
        self.db.execute("delete from contacts where learned = 0")

    # -- what the engine writes when a call ends or asks for a callback ------------

    def finish_call(self, call: dict, missed: dict | None = None) -> None:
        """A call's final record and, when given, its missed-call row, in one transaction.

        `missed` holds `caller`, `dialled`, `at` and `manager` (may be None);
        its call is `call["id"]`.  Together, so a missed call never points at a
        record still "in progress", nor a finished one lacks its missed call."""
        with self._writing():
            self.record_call(call)
            if missed is not None:
                self.add_missed(call["id"], missed["caller"], missed["dialled"], missed["at"], missed.get("manager"))

    def add_callback(self, row: dict) -> int:
        """A caller's request to be called back (a queue's callback key); returns its id."""
        return self.db["callbacks"].insert({"status": "open", **row}).last_pk

    def open_callbacks(self) -> list[dict]:
        return list(self.db["callbacks"].rows_where("status = 'open'", order_by="requested_at"))
