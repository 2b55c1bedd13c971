"""Schema for call recordings, registered after the reports' indexes.

A call's recording is one compressed file under `DATA/recordings/YYYY/MM/DD/`;
its call record links it: `calls.recording` (the file's path inside the
recordings folder) and `calls.recording_policy` (`always` or `on_demand`: which
retention applies to it).  A call without a recording has neither.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_recording_001_link(db: Database) -> None:
    have = {c.name for c in db["calls"].columns}
    for column in ("recording", "recording_policy"):
        if column not in have:
            db["calls"].add_column(column, str)
    db["calls"].create_index(["recording"], index_name="calls_recording", if_not_exists=True)
