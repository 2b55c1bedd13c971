"""Schema for automatic callbacks of missed-call cases, registered after the reports' indexes.

`missed_case_attempts`: one row per attempt the appliance made to call a
case's customer back (appliance.missed.autocall): when it started, which
extension was rung, the call that did it, and once it is over how it went
(`result` in words, `ok` 1 when the customer answered, `ended_at`).  An
attempt without a result is under way.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_autocall_001_attempts(db: Database) -> None:
    db["missed_case_attempts"].create(
        {"id": int, "case_id": int, "at": str, "ext": str, "call_id": str, "result": str, "ok": int,
         "ended_at": str},
        pk="id", foreign_keys=[("case_id", "missed_cases", "id")])
    db["missed_case_attempts"].create_index(["case_id", "at"])
    db["missed_case_attempts"].create_index(["call_id"])
