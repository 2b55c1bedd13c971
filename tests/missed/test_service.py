"""The missed service fed with call records (as the engine's finish_call writes them) and their events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from appliance.missed.service import MissedError, MissedService
from appliance.store import Store
from appliance.store.missed import MissedTables, Outbox

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
CUSTOMER = "+380671234567"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path) as s:
        for number, name in (("101", "Olha"), ("102", "Petro"), ("103", "Iryna")):
            s.add_extension(number, name)
        yield s


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def events():
    return []


@pytest.fixture
def svc(store, clock, events):
    return MissedService(store, events.append, clock)


def finish(store: Store, call_id: str, *, direction="inbound", caller=CUSTOMER, dialled="+380441112233",
           outcome="missed", answered_by=None, extension=None, wait_s=20.0, talk_s=0.0, reason="no answer",
           at: datetime = T0, rung=("102", "103")) -> None:
    row = {"id": call_id, "started_at": (at - timedelta(seconds=wait_s + talk_s)).isoformat(), "ended_at": at.isoformat(),
           "direction": direction, "caller": caller, "dialled": dialled, "trunk": "provider", "extension": extension,
           "answered_by": answered_by, "outcome": outcome, "wait_s": wait_s, "talk_s": talk_s,
           "path": [{"kind": "group", "group": "office"}, {"kind": "end", "reason": reason, "rung": list(rung)}]}
    missed = None
    if outcome in ("missed", "voicemail") and direction == "inbound":
        missed = {"caller": caller, "dialled": dialled, "at": at.isoformat(), "manager": None}
    store.finish_call(row, missed)


def ended(svc: MissedService, call_id: str, missed: bool = False) -> None:
    svc.on_event({"kind": "CallEnded", "call_id": call_id})
    if missed:
        svc.on_event({"kind": "CallMissed", "call_id": call_id})


def test_a_missed_call_opens_a_case_assigned_to_the_callers_manager(store, svc, events):
    store.put_contact({"number": CUSTOMER, "name": "Hardware store", "manager": "103"})
    finish(store, "c1")
    ended(svc, "c1", missed=True)
    [case] = svc.list()["cases"]
    assert (case["caller"], case["status"], case["count"], case["assigned_to"]) == (CUSTOMER, "open", 1, "103")
    assert case["calls"] == ["c1"]
    assert [e["kind"] for e in events] == ["MissedCaseOpened"]
    assert svc.open_count() == 1


def test_without_a_manager_the_setting_then_the_first_extension_rung_gets_it(store, svc):
    finish(store, "c1")
    ended(svc, "c1")
    assert svc.list()["cases"][0]["assigned_to"] == "102"
    store.set_setting("missed", {"assign_to": "101"})
    finish(store, "c2", caller="+380501112233")
    ended(svc, "c2")
    assert {c["caller"]: c["assigned_to"] for c in svc.list()["cases"]}["+380501112233"] == "101"


def test_two_calls_from_one_number_make_one_case_with_count_two(store, svc, clock, events):
    finish(store, "c1")
    ended(svc, "c1", missed=True)
    finish(store, "c2", caller="0671234567", at=T0 + timedelta(minutes=2), outcome="voicemail", reason="voicemail")
    ended(svc, "c2", missed=True)
    [case] = svc.list()["cases"]
    assert case["count"] == 2 and case["calls"] == ["c1", "c2"] and case["waited_s"] == 40.0
    assert [e["kind"] for e in events] == ["MissedCaseOpened", "MissedCaseJoined"]


def test_an_answered_call_makes_no_case(store, svc):
    finish(store, "c1", outcome="answered", answered_by="103", talk_s=30.0)
    ended(svc, "c1")
    assert svc.list(include_closed=True)["cases"] == []


def test_a_call_back_long_enough_closes_the_case_a_short_one_does_not(store, svc, clock, events):
    finish(store, "c1")
    ended(svc, "c1", missed=True)
    back = dict(direction="outbound", caller="102", dialled="067 123 45 67", extension="102",
                outcome="answered", answered_by="067 123 45 67", wait_s=5.0)
    finish(store, "c2", **back, talk_s=4.0, at=T0 + timedelta(minutes=5))
    ended(svc, "c2")
    assert svc.open_count() == 1
    clock.now = T0 + timedelta(minutes=10)
    finish(store, "c3", **back, talk_s=12.0, at=clock.now)
    ended(svc, "c3")
    [case] = svc.list(include_closed=True)["cases"]
    assert (case["status"], case["ended_how"], case["closed_by"], case["closed_call"], case["took_s"]) == (
        "closed", "called back", "102", "c3", 600.0)
    assert store.open_missed() == []     # the engine's missed row is handled too
    assert events[-1]["kind"] == "MissedCaseClosed"


def test_a_later_inbound_call_answered_closes_the_case(store, svc):
    finish(store, "c1")
    ended(svc, "c1")
    finish(store, "c2", outcome="answered", answered_by="101", talk_s=40.0, at=T0 + timedelta(minutes=1))
    ended(svc, "c2")
    case = svc.list(include_closed=True)["cases"][0]
    assert (case["ended_how"], case["closed_by"]) == ("answered", "101")


def test_a_successful_callback_closes_the_case(store, svc):
    finish(store, "c1")
    ended(svc, "c1")
    assert svc.callback_succeeded("0671234567", "callback to 102")["ended_how"] == "callback"
    assert svc.open_count() == 0


def test_a_short_abandon_is_counted_apart_and_lights_nothing(store, svc, events):
    finish(store, "c1", wait_s=2.0, reason="caller hung up")
    ended(svc, "c1", missed=True)
    assert svc.open_count() == 0 and events == []
    [case] = svc.list(include_closed=True)["cases"]
    assert case["short"] == 1 and case["ended_how"] == "short abandon"


def test_done_and_assign_by_a_person(store, svc, clock, events):
    finish(store, "c1")
    ended(svc, "c1")
    case_id = svc.list()["cases"][0]["id"]
    assert svc.assign(case_id, "103", by="101")["case"]["assigned_to"] == "103"
    with pytest.raises(MissedError, match="no extension"):
        svc.assign(case_id, "999", by="101")
    clock.now = T0 + timedelta(hours=1)
    case = svc.done(case_id, by="103", note="  called from a mobile,\n offer sent ")["case"]
    assert (case["ended_how"], case["closed_by"], case["note"], case["took_s"]) == (
        "done", "103", "called from a mobile, offer sent", 3600.0)
    with pytest.raises(MissedError, match="already closed"):
        svc.done(case_id, by="103")
    with pytest.raises(MissedError, match="no missed-call case"):
        svc.done(999, by="103")
    assert [e["kind"] for e in events] == ["MissedCaseOpened", "MissedCaseAssigned", "MissedCaseClosed"]


def test_a_record_written_after_its_event_is_filed_when_it_comes(store, svc):
    assert svc.file_call("later") is False
    finish(store, "later")
    assert svc.file_call("later") is True
    assert svc.file_call("later") is True       # once only
    assert svc.list()["cases"][0]["count"] == 1


def test_missed_rows_from_before_become_cases_at_start(store, svc):
    """The engine's missed rows (written with no service running, or closed after a crash) are filed by catch_up."""
    finish(store, "c1")
    finish(store, "c2", at=T0 + timedelta(minutes=1))
    finish(store, "c3", caller="+380501112233")
    assert svc.catch_up() == 3
    assert sorted((c["caller"], c["count"]) for c in svc.list()["cases"]) == [
        ("+380501112233", 1), (CUSTOMER, 2)]
    assert svc.catch_up() == 0


def test_case_events_go_to_the_outbox_in_their_transaction(store, svc):
    store.set_setting("notify", {"urls": ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"], "secret": "s"})
    finish(store, "c1")
    ended(svc, "c1")
    svc.done(svc.list()["cases"][0]["id"], by="101", note="ok")
    heads = Outbox(store).heads()
    assert [(d.url, d.kind) for d in heads] == [("http://127.0.0.1:9/a", "MissedCaseOpened"),
                                                ("http://127.0.0.1:9/b", "MissedCaseOpened")]
    assert Outbox(store).pending() == 4


def test_a_failing_save_keeps_neither_case_nor_outbox_row(store, svc, monkeypatch):
    store.set_setting("notify", {"urls": ["http://127.0.0.1:9/a"]})
    finish(store, "c1")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(MissedTables, "add_call", broken)
    with pytest.raises(RuntimeError):
        svc.file_call("c1")
    assert svc.list(include_closed=True)["cases"] == [] and Outbox(store).pending() == 0
