"""Schema changes the call engine needs, registered after the store's own migrations.

`callbacks`: a caller waiting in a queue asked to be called back instead of
waiting (the queue's `callback_key`).  The request stays open until someone
calls back; the panel lists open ones and marks them handled.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_engine_001_callbacks(db: Database) -> None:
    db["callbacks"].create(
        {
            "id": int,
            "call_id": str,
            "queue": str,
            "caller": str,
            "caller_name": str,
            "dialled": str,
            "requested_at": str,
            "status": str,  # open, handled
            "handled_by": str,
            "handled_at": str,
        },
        pk="id",
        defaults={"status": "open"},
        if_not_exists=True,
    )
    db["callbacks"].create_index(["status", "requested_at"], if_not_exists=True)


WATCHED = ("bindings", "contacts", "settings")


@migrations()
def m_engine_002_changes(db: Database) -> None:
    """A counter per table the engine keeps in memory, moved by triggers on every write.

    The engine re-reads bindings, contacts or settings only when their own
    counter moves; SQLite's `data_version` moves with every commit of any
    connection, the engine's own call records included."""
    db["changes"].create({"name": str, "n": int}, pk="name", if_not_exists=True)
    for table in WATCHED:
        db.execute("insert or ignore into changes (name, n) values (?, 0)", [table])
        for op in ("insert", "update", "delete"):
            db.execute(
                f"create trigger if not exists {table}_{op}_counts after {op} on {table} "
                f"begin update changes set n = n + 1 where name = '{table}'; end"
            )


@migrations()
def m_engine_003_call_outcome_index(db: Database) -> None:
    """Calls by outcome: start-up looks for records left "in progress" by a crash, reports count outcomes."""
    db["calls"].create_index(["outcome"], if_not_exists=True)


@migrations()
def m_engine_004_call_invite(db: Database) -> None:
    """What a caller's final response is built from, kept while the call is in progress.

    `invite` holds the INVITE's start line, Via, From, To, Call-ID and CSeq;
    `source` the address it came from.  After a crash the next start answers
    callers that were still ringing (B2BUA.close_interrupted)."""
    cols = {c.name for c in db["calls"].columns}
    for name in ("invite", "source"):
        if name not in cols:
            db["calls"].add_column(name, str)


SWITCH_KEYS = ("night", "overrides")


@migrations()
def m_engine_005_switch_changes(db: Database) -> None:
    """A change counter for the night switches' and schedules' hand-set states.

    They live in `routing_state` beside keys the engine itself rewrites after
    every call (positions, presence); only writes of these keys move the
    counter, so the engine re-reads them at once and nothing else."""
    db.execute("insert or ignore into changes (name, n) values ('switches', 0)")
    keys = ", ".join(f"'{k}'" for k in SWITCH_KEYS)
    for op, row in (("insert", "new"), ("update", "new"), ("delete", "old")):
        db.execute(
            f"create trigger if not exists routing_state_{op}_switches after {op} on routing_state "
            f"when {row}.key in ({keys}) "
            f"begin update changes set n = n + 1 where name = 'switches'; end"
        )
