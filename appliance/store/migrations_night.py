"""Schema changes night mode needs, registered after the engine's.

`night`: one row per night switch: its mode (day, night), how it was set
(auto, temporary, permanent), since and until when, and who set it.  The
hand-set states that routing reads stay in `routing_state` under "night"
(switch id -> {"state", "permanent", "since"}); `Store.save_night` writes
both in one transaction, so they never disagree.
"""

from __future__ import annotations

import json

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_night_001_switches(db: Database) -> None:
    db["night"].create(
        {"switch": str, "mode": str, "how": str, "since": str, "until": str, "by": str},
        pk="switch",
        not_null={"switch", "mode", "how"},
        defaults={"how": "auto"},
        if_not_exists=True,
    )
    # Hand-set states saved before this table existed become its first rows,
    # so the next change (which rewrites routing's copy from the table) keeps them.
    row = db.execute("select value from routing_state where key = 'night'").fetchone()
    saved = json.loads(row[0]) if row and row[0] else None
    if not isinstance(saved, dict):
        return
    if "state" in saved:
        # One state for every switch: each switch of the saved routing gets it.
        doc = db.execute("select document from routing where id = 1").fetchone()
        switches = (json.loads(doc[0]).get("night") or {}) if doc and doc[0] else {}
        per_switch = {sid: saved for sid in switches}
    else:
        per_switch = saved
    for switch, raw in per_switch.items():
        if isinstance(raw, dict) and raw.get("state") in ("day", "night"):
            db.execute(
                "insert or ignore into night (switch, mode, how, since, until, \"by\") values (?, ?, ?, ?, null, ?)",
                [str(switch), raw["state"], "permanent" if raw.get("permanent") else "temporary",
                 raw.get("since"), "routing state"])
