"""Schema for agents' statuses and supervisors, registered after the reports' indexes.

`agent_status`: the status a person set for an extension (available, on a
break, at lunch, after-call work), kept apart from the state the system sees
(registered, ringing, in a call), as FreeSWITCH's mod_callcenter keeps an
agent's status apart from its state.  One row per extension that ever set
one; no row means available.

`extensions.supervise`: 1 when the extension may listen in on, whisper to
and barge into other extensions' calls (configuration key `supervise`).
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_agents_001_status(db: Database) -> None:
    db.execute(
        "create table if not exists agent_status ("
        "extension text primary key, status text not null, "
        "since text not null, by text not null default '')")
    if "supervise" not in {c.name for c in db["extensions"].columns}:
        db["extensions"].add_column("supervise", int, not_null_default=0)
