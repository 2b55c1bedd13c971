"""Indexes the reports need, registered after the call-backs' migrations.

A report reads every call record of a date range, grouped by hour, person or
number.  `calls_reports` holds every column those aggregates read, in the
order the range is searched (`started_at` first), so SQLite answers from the
index alone and never visits the table's rows, whose `path` text makes them
several times larger.  The path is read only for the calls nobody answered
(where they gave up) and for the group, queue and menu tables.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations

REPORT_COLUMNS = ("started_at", "direction", "answered_by", "outcome", "wait_s", "talk_s", "extension", "dialled")


@migrations()
def m_reports_001_indexes(db: Database) -> None:
    db["calls"].create_index(list(REPORT_COLUMNS), index_name="calls_reports", if_not_exists=True)
    db["missed_cases"].create_index(["opened_at"], if_not_exists=True)
    db["callbacks"].create_index(["requested_at"], if_not_exists=True)
