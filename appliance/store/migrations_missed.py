"""Schema changes missed-call cases and the outbox need, registered after night mode's.

`missed_cases`: one row per case (appliance.missed.cases): the caller's
number, while open at most one open case per number (a unique partial
index; a withheld number cannot be told apart, so it is left out of it).
`missed_case_calls`: each call that made or joined a case, by call id (a
call joins at most one case, so replaying an event changes nothing).
`outbox_events` and `outbox_deliveries`: events for the owner's webhooks,
written in the transaction of the change they report, one delivery per URL,
deleted once delivered (appliance.notify).

The engine's `missed` rows stay as they are; the missed service files each
one it has not seen yet as a case when it starts (MissedService.catch_up).
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_missed_001_cases(db: Database) -> None:
    db["missed_cases"].create(
        {
            "id": int,
            "caller": str,        # normalised (appliance.routing.numbers); "" when withheld
            "dialled": str,       # the office number the first call dialled
            "status": str,        # open, closed
            "short": int,         # 1: a short abandon, counted apart, never open
            "count": int,         # calls in the case
            "opened_at": str,
            "last_at": str,       # the latest call's end
            "waited_s": float,    # all its calls' waiting, together
            "gave_up": str,       # where the latest call ended (the last step's kind)
            "assigned_to": str,
            "assigned_at": str,
            "assigned_by": str,
            "closed_at": str,
            "ended_how": str,     # called back, answered, callback, done, short abandon
            "closed_by": str,
            "closed_call": str,   # the call that closed it, when a call did
            "note": str,
            "took_s": float,      # from opening to closing
        },
        pk="id",
        not_null={"caller", "status", "opened_at"},
        defaults={"status": "open", "short": 0, "count": 1, "waited_s": 0.0},
        if_not_exists=True,
    )
    db.execute("create unique index if not exists missed_cases_one_open on missed_cases (caller) "
               "where status = 'open' and caller != ''")
    db["missed_cases"].create_index(["status", "opened_at"], if_not_exists=True)
    db["missed_case_calls"].create(
        {"call_id": str, "case_id": int, "at": str, "wait_s": float, "short": int},
        pk="call_id",
        foreign_keys=[("case_id", "missed_cases", "id")],
        defaults={"short": 0},
        if_not_exists=True,
    )
    db["missed_case_calls"].create_index(["case_id"], if_not_exists=True)


@migrations()
def m_missed_002_outbox(db: Database) -> None:
    # AUTOINCREMENT: an id is never given again, even after every row was
    # delivered and deleted, so a receiver can tell a repeat by its id.
    db.execute("create table if not exists outbox_events (id integer primary key autoincrement, "
               "kind text not null, at text not null, body text not null)")
    db["outbox_deliveries"].create(
        {"event_id": int, "url": str, "attempts": int, "next_at": float, "last_error": str},
        pk=("event_id", "url"),
        foreign_keys=[("event_id", "outbox_events", "id")],
        defaults={"attempts": 0, "next_at": 0.0},
        if_not_exists=True,
    )
    db["outbox_deliveries"].create_index(["url", "event_id"], if_not_exists=True)
