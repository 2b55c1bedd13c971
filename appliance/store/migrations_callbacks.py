"""Schema for call-backs that keep a queue caller's place, registered after the voicemail's.

A caller who pressed a queue's call-back key already has a `callbacks` row
(migrations_engine).  These columns make the row the caller's *virtual place*
in the queue, so a restart does not lose it: where it stands (`priority`,
`joined_at`: when the caller joined the queue), how the appliance's attempts
to call back went (`attempts`, `last_attempt_at`, `result`) and the call that
did it (`callback_call`).  Rows written before this change have no
`joined_at` and are never dialled: they stay requests for a person.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations

PLACE_COLUMNS = (("priority", int), ("joined_at", str), ("attempts", int), ("last_attempt_at", str),
                 ("result", str), ("callback_call", str))


@migrations()
def m_callbacks_001_places(db: Database) -> None:
    have = {c.name for c in db["callbacks"].columns}
    for name, kind in PLACE_COLUMNS:
        if name not in have:
            db["callbacks"].add_column(name, kind)
