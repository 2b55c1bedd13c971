"""The cases' and the outbox's tables on a real SQLite file: round trips and the constraints that hold them."""

from __future__ import annotations

import sqlite3

import pytest

from appliance.store import Store
from appliance.store.missed import MissedTables, Outbox


def case_row(caller: str, opened_at: str, status: str = "open", **kw) -> dict:
    return {"id": None, "caller": caller, "dialled": "+380441112233", "status": status, "short": 0, "count": 1,
            "opened_at": opened_at, "last_at": opened_at, "waited_s": 10.0, **kw}


def test_a_case_round_trips_and_reopens_from_the_file(tmp_path):
    with Store(tmp_path) as store:
        tables = MissedTables(store)
        case_id = tables.save_case(case_row("+380671234567", "2025-03-03T09:00:00+00:00", assigned_to="102"))
        tables.add_call(case_id, "c1", "2025-03-03T09:00:00+00:00", 10.0, short=False)
        tables.add_call(case_id, "c1", "2025-03-03T09:00:00+00:00", 10.0, short=False)   # once only
    with Store(tmp_path) as store:
        tables = MissedTables(store)
        row = tables.case(case_id)
        assert (row["caller"], row["assigned_to"], row["status"]) == ("+380671234567", "102", "open")
        assert tables.open_case_of("+380671234567")["id"] == case_id
        assert tables.calls_of(case_id) == ["c1"] and tables.has_call("c1")
        tables.save_case({**row, "status": "closed", "ended_how": "done", "closed_by": "101"})
        assert tables.open_case_of("+380671234567") is None and tables.open_count() == 0


def test_one_open_case_per_number_but_withheld_numbers_each_their_own(tmp_path):
    with Store(tmp_path) as store:
        tables = MissedTables(store)
        tables.save_case(case_row("+380671234567", "2025-03-03T09:00:00+00:00"))
        with pytest.raises(sqlite3.IntegrityError):
            tables.save_case(case_row("+380671234567", "2025-03-03T09:05:00+00:00"))
        tables.save_case(case_row("+380671234567", "2025-03-03T08:00:00+00:00", status="closed",
                                  closed_at="2025-03-03T08:30:00+00:00"))
        tables.save_case(case_row("", "2025-03-03T09:01:00+00:00"))
        tables.save_case(case_row("", "2025-03-03T08:59:00+00:00"))
        assert tables.open_case_of("") is None
        assert [(r["caller"], r["opened_at"][11:16]) for r in tables.cases()] == [
            ("", "08:59"), ("+380671234567", "09:00"), ("", "09:01")]
        assert [r["status"] for r in tables.cases(include_closed=True)] == ["open", "open", "open", "closed"]


def test_the_engines_missed_rows_stay_readable(tmp_path):
    with Store(tmp_path) as store:
        store.finish_call({"id": "c1", "started_at": "2025-03-03T09:00:00+00:00", "direction": "inbound",
                           "caller": "+380671234567", "dialled": "+380441112233", "outcome": "missed", "path": []},
                          {"caller": "+380671234567", "dialled": "+380441112233", "at": "2025-03-03T09:00:20+00:00"})
        assert [m["call_id"] for m in store.open_missed()] == ["c1"]
        assert MissedTables(store).unfiled_missed() == ["c1"]


def test_outbox_ids_are_never_given_again(tmp_path):
    with Store(tmp_path) as store:
        outbox = Outbox(store)
        first = outbox.add("MissedCaseOpened", "t", {"n": 1}, ["http://a/"])
        assert outbox.add("MissedCaseOpened", "t", {"n": 0}, []) is None    # no URL: nothing kept
        outbox.delivered(first, "http://a/")
        assert outbox.pending() == 0
    with Store(tmp_path) as store:
        assert Outbox(store).add("MissedCaseClosed", "t", {"n": 2}, ["http://a/"]) > first
