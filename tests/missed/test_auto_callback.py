"""Automatic callbacks of missed cases: the rules with an injected clock, then the dialer on a store with a fake engine."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import datetime, timedelta, timezone

import pytest

from appliance.errors import ConfigError
from appliance.missed import autocall
from appliance.missed.autocall import Agent, Attempt, Dial, Settings, Wait, Waiting, plan
from appliance.missed.config import autocall_of, parse_missed
from appliance.missed.service import MissedService
from appliance.store import Store
from tests.missed.test_service import CUSTOMER, Clock, ended, finish

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)   # a Monday, 11:00 in Kyiv
ON = Settings(enabled=True, attempts=3, spacing=timedelta(minutes=10), anyone=True)
OTHER = "+380501112233"


def agents(*busy: tuple[str, Agent]) -> dict[str, Agent]:
    out = {ext: Agent(ext) for ext in ("101", "102", "103")}
    out.update(dict(busy))
    return out


def case(cid=1, caller=CUSTOMER, person="102", group=("101", "102", "103"), attempts=()) -> Waiting:
    return Waiting(cid, caller, person, tuple(group), tuple(attempts))


def failed(at: datetime, ext="102", cid=1) -> Attempt:
    return Attempt(cid, at, ext, "call-x", "the customer did not answer", False)


# -- the rules ---------------------------------------------------------------------


def test_the_cases_person_is_rung_when_free():
    assert plan(T0, [case()], agents(), set(), True, ON) == [Dial(1, "102", CUSTOMER)]


def test_off_or_outside_working_hours_nothing_is_dialled():
    assert plan(T0, [case()], agents(), set(), True, Settings()) == [Wait(1, "automatic callback is off")]
    assert plan(T0, [case()], agents(), set(), False, ON) == [Wait(1, "outside working hours")]


@pytest.mark.parametrize("state,why", [
    (Agent("102", calls=1), "on a call"),
    (Agent("102", ringing=True), "ringing"),
    (Agent("102", dnd=True), "paused (do not disturb)"),
    (Agent("102", registered=False), "no phone registered"),
    (Agent("102", last_call_end=T0 - timedelta(seconds=5), wrapup=30), "in wrap-up"),
])
def test_a_busy_person_is_skipped_for_a_free_member_of_the_group_or_waited_for(state, why):
    assert plan(T0, [case()], agents(("102", state)), set(), True, ON) == [Dial(1, "101", CUSTOMER)]
    alone = Settings(enabled=True, anyone=False)
    assert plan(T0, [case()], agents(("102", state)), set(), True, alone) == [Wait(1, f"102 is {why}")]


def test_a_wrap_up_that_is_over_leaves_the_agent_free():
    late = Agent("102", last_call_end=T0 - timedelta(seconds=31), wrapup=30)
    assert plan(T0, [case()], agents(("102", late)), set(), True, ON) == [Dial(1, "102", CUSTOMER)]


def test_nobody_free_waits():
    everyone = agents(*((e, Agent(e, calls=1)) for e in ("101", "102", "103")))
    [step] = plan(T0, [case()], everyone, set(), True, ON)
    assert isinstance(step, Wait) and step.why == "102 is on a call, nor anyone of the group"


def test_one_outstanding_callback_per_agent():
    two = [case(1, person="102", group=()), case(2, caller=OTHER, person="102", group=("102", "103"))]
    assert plan(T0, two, agents(), set(), True, ON) == [Dial(1, "102", CUSTOMER), Dial(2, "103", OTHER)]
    under_way = Attempt(1, T0 - timedelta(minutes=1), "102", "call-1")
    two = [case(1, person="102", attempts=[under_way]), case(2, caller=OTHER, person="102", group=())]
    assert plan(T0, two, agents(), set(), True, ON) == [Wait(1, "an attempt is under way"),
                                                       Wait(2, "102 is calling back another case")]


def test_never_while_the_customer_is_on_a_call_with_the_office():
    assert plan(T0, [case()], agents(), {CUSTOMER}, True, ON) == [
        Wait(1, "the customer is on a call with the office")]


def test_attempts_are_spaced_and_limited():
    one = case(attempts=[failed(T0 - timedelta(minutes=9))])
    [step] = plan(T0, [one], agents(), set(), True, ON)
    assert isinstance(step, Wait) and step.why.startswith("the next attempt is due at 2025-03-03T09:01")
    assert plan(T0 + timedelta(minutes=1), [one], agents(), set(), True, ON) == [Dial(1, "102", CUSTOMER)]
    three = case(attempts=[failed(T0 - timedelta(minutes=m)) for m in (60, 40, 20)])
    assert plan(T0, [three], agents(), set(), True, ON) == [Wait(1, "all 3 attempts were made")]


def test_a_withheld_number_is_never_called():
    assert plan(T0, [case(caller="")], agents(), set(), True, ON) == [Wait(1, "the number is withheld")]


def test_the_default_hours_are_weekdays_nine_to_six_office_time():
    kyiv = "Europe/Kyiv"
    assert autocall.default_hours_open(T0, kyiv)                                   # Monday 11:00
    assert not autocall.default_hours_open(T0.replace(hour=16), kyiv)              # Monday 18:00
    assert not autocall.default_hours_open(T0.replace(hour=5, minute=59), kyiv)    # Monday 07:59
    assert not autocall.default_hours_open(T0 + timedelta(days=5), kyiv)           # Saturday 11:00


def test_how_a_callback_went_is_read_from_its_record():
    answered = {"outcome": "answered", "answered_by": CUSTOMER, "path": [{"kind": "end", "reason": "hung up"}]}
    assert autocall.attempt_result(answered) == ("the customer answered", True)
    no = {"outcome": "failed", "answered_by": None,
          "path": [{"kind": "origination_failed", "side": "customer", "reason": "the customer did not answer"}]}
    assert autocall.attempt_result(no) == ("the customer did not answer", False)
    assert autocall.attempt_result({"outcome": "in progress"}) is None


def test_the_whisper_names_the_customer_and_how_long_ago():
    assert autocall.whisper("Hardware store", 12, True) == "Missed call: Hardware store, called 12 minutes ago."
    assert autocall.whisper("Hardware store", 3, False) == "Пропущений дзвінок: Hardware store, дзвонили 3 хвилини тому."
    assert autocall.whisper("Hardware store", 125, True) == "Missed call: Hardware store, called 2 hours ago."


# -- the settings -------------------------------------------------------------------


def test_the_settings_are_checked_and_have_defaults():
    assert autocall_of({}) == Settings(False, 3, timedelta(minutes=10), True)
    got = parse_missed({"auto_callback": True, "callback_attempts": 5, "callback_spacing_minutes": 0.5,
                        "callback_anyone": False}, {"101"})
    assert autocall_of(got) == Settings(True, 5, timedelta(minutes=0.5), False)
    for bad in ({"auto_callback": "yes"}, {"callback_attempts": 0}, {"callback_attempts": 2.5},
                {"callback_spacing_minutes": 0}, {"callback_anyone": 1}):
        with pytest.raises(ConfigError) as e:
            parse_missed(bad, {"101"})
        assert e.value.path == ("missed", next(iter(bad)))


# -- the dialer, with a fake engine ----------------------------------------------------------


class FakeEngine:
    def __init__(self) -> None:
        self.presence = {ext: {"registered": True, "dnd": False, "calls": 0, "ringing": False, "last_call_end": None}
                         for ext in ("101", "102", "103")}
        self.placed: list[tuple[str, str, str]] = []
        self.refuse: str | None = None

    def agents(self) -> Future:
        f: Future = Future()
        f.set_result(self.presence)
        return f

    def originate(self, ext: str, number: str, text: str) -> Future:
        f: Future = Future()
        self.placed.append((ext, number, text))
        if self.refuse:
            f.set_exception(ValueError(self.refuse))
        else:
            f.set_result(f"cb{len(self.placed)}")
        return f


@pytest.fixture
def office(tmp_path):
    with Store(tmp_path) as s:
        for number, name in (("101", "Olha"), ("102", "Petro"), ("103", "Iryna")):
            s.add_extension(number, name)
        s.set_setting("missed", {"auto_callback": True, "callback_spacing_minutes": 10})
        s.put_contact({"number": CUSTOMER, "name": "Hardware store", "manager": "103"})
        yield s


def dialer_of(store, clock, events, engine, live=()):
    svc = MissedService(store, events.append, clock)
    svc.auto.connect(engine.agents, engine.originate, lambda: set(live), lambda: False)
    return svc


def callback_record(store, call_id: str, ext: str, *, answered: bool, at: datetime) -> None:
    path = [{"kind": "originate", "extension": ext, "number": CUSTOMER}]
    if not answered:
        path.append({"kind": "origination_failed", "side": "customer", "reason": "the customer did not answer"})
    path.append({"kind": "end", "reason": "hung up"})
    store.finish_call({"id": call_id, "started_at": at.isoformat(), "ended_at": at.isoformat(),
                       "direction": "outbound", "caller": ext, "dialled": CUSTOMER, "trunk": "provider",
                       "extension": ext, "answered_by": CUSTOMER if answered else None,
                       "outcome": "answered" if answered else "failed", "wait_s": 5.0,
                       "talk_s": 30.0 if answered else 0.0, "path": path}, None)


def test_a_failed_attempt_is_recorded_retried_after_the_spacing_and_a_success_closes_the_case_once(office):
    clock, events, engine = Clock(), [], FakeEngine()
    svc = dialer_of(office, clock, events, engine)
    finish(office, "c1")
    ended(svc, "c1", missed=True)
    svc.auto.round()
    [(ext, number, text)] = engine.placed
    assert (ext, number) == ("103", CUSTOMER) and text.startswith("Пропущений дзвінок: Hardware store")
    svc.auto.round()
    assert len(engine.placed) == 1, "an attempt under way is not repeated"

    callback_record(office, "cb1", "103", answered=False, at=T0)
    ended(svc, "cb1")
    [row] = svc.list()["cases"]
    assert [(a["ext"], a["call_id"], a["result"], a["ok"]) for a in row["attempts"]] == [
        ("103", "cb1", "the customer did not answer", False)]
    assert events[-1]["kind"] == "MissedCallbackFailed"

    clock.now = T0 + timedelta(minutes=9)
    svc.auto.round()
    assert len(engine.placed) == 1, "not before the spacing"
    clock.now = T0 + timedelta(minutes=10)
    svc.auto.round()
    assert len(engine.placed) == 2

    callback_record(office, "cb2", "103", answered=True, at=clock.now)
    ended(svc, "cb2")
    assert svc.list()["cases"] == []
    [closed] = svc.list(True)["cases"]
    assert (closed["ended_how"], closed["closed_by"], closed["closed_call"]) == ("callback", "103", "cb2")
    assert [a["ok"] for a in closed["attempts"]] == [False, True]
    assert [e["kind"] for e in events].count("MissedCaseClosed") == 1
    assert svc.file_call("cb2"), "filing the call again changes nothing"
    assert [e["kind"] for e in events].count("MissedCaseClosed") == 1


def test_a_refusal_is_a_failed_attempt_and_a_customer_on_a_call_is_not_dialled(office):
    clock, events, engine = Clock(), [], FakeEngine()
    svc = dialer_of(office, clock, events, engine, live=[CUSTOMER])
    finish(office, "c1")
    ended(svc, "c1", missed=True)
    svc.auto.round()
    assert engine.placed == []
    svc.auto.live = lambda: set()
    engine.refuse = "No trunk is available to call out"
    svc.auto.round()
    [row] = svc.list()["cases"]
    assert [a["result"] for a in row["attempts"]] == ["refused: No trunk is available to call out"]


def test_outside_working_hours_and_at_night_nothing_is_dialled(office):
    clock, events, engine = Clock(), [], FakeEngine()
    svc = dialer_of(office, clock, events, engine)
    finish(office, "c1")
    ended(svc, "c1", missed=True)
    clock.now = T0.replace(hour=20)   # 22:00 in Kyiv
    svc.auto.round()
    clock.now = T0
    svc.auto.night = lambda: True
    svc.auto.round()
    assert engine.placed == []


def test_attempts_left_under_way_by_a_stop_are_settled_at_the_next_start(office):
    clock, events, engine = Clock(), [], FakeEngine()
    svc = dialer_of(office, clock, events, engine)
    finish(office, "c1")
    ended(svc, "c1", missed=True)
    svc.auto.round()
    again = MissedService(office, events.append, clock)
    again.auto.recover()
    [row] = again.list()["cases"]
    assert [a["result"] for a in row["attempts"]] == ["the appliance stopped during the attempt"]
