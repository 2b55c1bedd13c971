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
