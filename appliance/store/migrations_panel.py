"""Schema the owner's panel needs, registered after the missed cases'.

`panel_sessions`: one row per logged-in browser; the cookie carries only the
row's random id, so logging out (deleting the row) ends the session on the
server and an old cookie opens nothing.  `panel_failures`: wrong passwords
per source address, for the lockout.  `config_versions`: every saved change
of the configuration, as the whole exported file, so any one can be restored.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_panel_001_sessions_and_versions(db: Database) -> None:
    db["panel_sessions"].create(
        {"id": str, "created_at": float, "seen_at": float, "source": str},
        pk="id", not_null={"id", "created_at", "seen_at"}, if_not_exists=True,
    )
    db["panel_failures"].create(
        {"source": str, "count": int, "first_at": float, "locked_until": float},
        pk="source", not_null={"source", "count", "first_at"}, defaults={"count": 0}, if_not_exists=True,
    )
    db["config_versions"].create(
        {"id": int, "at": str, "who": str, "summary": str, "document": str, "restored_from": int},
        pk="id", not_null={"at", "who", "summary", "document"}, if_not_exists=True,
    )
