"""The reports' sums per office hour (appliance.store.reports.HourSums), registered after the reports' indexes.

`report_hours` holds each office hour's sums (under the hour's start in UTC,
epoch seconds); `report_people` and `report_numbers` the same per person and
dialled number, `report_dests` and `report_menus` the groups, queues and menus
calls went through and `report_menu_next` where callers went from a menu, these
by office day (under its midnight in UTC); `report_answerers` who answered in
each office hour; `report_abandons` each call whose caller gave up, with its
wait.  They are built here once from the records already written, in the
office's time zone, and kept up to date as each record is finished.
`calls_lost` is a partial index of the lost calls by start, for the lost-call
list; `missed_cases_reports` covers what the summary counts of the cases.
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from appliance.store.schema import migrations

@migrations()
def m_reports_002_sums(db: Database) -> None:
    from appliance.store import DEFAULT_TIMEZONE
    from appliance.store.reports import LOST_OUTCOMES, build_sums, create_sum_tables

    create_sum_tables(db.conn)
    outcomes = ", ".join(repr(o) for o in LOST_OUTCOMES)
    # The same terms as the lost-call query's, so that SQLite uses it (a partial index must be implied).
    db.execute("create index if not exists calls_lost on calls (started_at, id) where direction = 'inbound' "
               f"and coalesce(answered_by, '') = '' and outcome in ({outcomes})")
    # The summary counts a year's missed-call cases (60,000 in the benchmark) from this index alone.
    db.execute("create index if not exists missed_cases_reports on missed_cases "
               "(opened_at, short, status, ended_how, took_s)")
    row = db.execute("select value from settings where key = 'timezone'").fetchone()
    build_sums(db.conn, ZoneInfo(json.loads(row[0]) if row else DEFAULT_TIMEZONE))
