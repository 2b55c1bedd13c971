"""Escalation in the missed service: an open case nobody acted on past its deadline, counted in a schedule's
working hours, goes to `missed.escalate_to`, with its event, its outbox row and an e-mail; the `missed` keys
that set it are checked by the configuration file's validator."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from appliance.configfile import ConfigFileError, import_config, load_text
from appliance.missed.service import MissedService
from appliance.store import Store
from appliance.store.mail import MailOutbox
from appliance.store.missed import Outbox

# Friday 7 March 2025, 17:30 in Kyiv (UTC+2).
FRIDAY_1730 = datetime(2025, 3, 7, 15, 30, tzinfo=timezone.utc)
CUSTOMER = "+380671234567"

OFFICE = """\
version: 1
timezone: Europe/Kyiv
extensions:
  - {number: "100", name: Owner, password: secret-100, email: owner@example.com}
  - {number: "101", name: Olha, password: secret-101}
  - {number: "102", name: Petro, password: secret-102}
missed:
  deadline_minutes: 60
  escalate_to: "100"
  working_hours: schedule:office
notify:
  urls: ["http://127.0.0.1:9/hook"]
mail:
  host: 127.0.0.1
  port: 2525
  security: none
  from: pbx@example.com
routing:
  unmatched: hangup
  schedules:
    office:
      hours: {mon-fri: ["09:00-18:00"]}
"""


class Clock:
    def __init__(self) -> None:
        self.now = FRIDAY_1730

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path) as s:
        import_config(s, OFFICE)
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


def missed_call(store: Store, svc: MissedService, call_id: str, caller: str = CUSTOMER,
                at: datetime = FRIDAY_1730) -> dict:
    row = {"id": call_id, "started_at": (at - timedelta(seconds=20)).isoformat(), "ended_at": at.isoformat(),
           "direction": "inbound", "caller": caller, "dialled": "+380441112233", "trunk": "provider",
           "extension": None, "answered_by": None, "outcome": "missed", "wait_s": 20.0, "talk_s": 0.0,
           "path": [{"kind": "group"}, {"kind": "end", "reason": "no answer", "rung": ["101", "102"]}]}
    store.finish_call(row, {"caller": caller, "dialled": "+380441112233", "at": at.isoformat(), "manager": None})
    assert svc.file_call(call_id)
    return next(c for c in svc.list()["cases"] if c["calls"][-1] == call_id)


def test_a_case_past_its_working_hours_deadline_is_escalated(store, svc, clock, events):
    case = missed_call(store, svc, "c1")
    assert case["assigned_to"] == "101"
    clock.now = datetime(2025, 3, 8, 10, 0, tzinfo=timezone.utc)        # Saturday: not working time
    assert svc.escalate_due() == []
    clock.now = datetime(2025, 3, 10, 7, 29, tzinfo=timezone.utc)       # Monday 09:29 in Kyiv
    assert svc.escalate_due() == []
    clock.now = datetime(2025, 3, 10, 7, 30, tzinfo=timezone.utc)       # 30 min on Friday + 30 on Monday
    [escalated] = svc.escalate_due()
    assert (escalated["id"], escalated["assigned_to"], escalated["assigned_by"], escalated["status"]) == (
        case["id"], "100", "escalation", "open")
    assert escalated["assigned_at"] == "2025-03-10T07:30:00.000+00:00"
    assert events[-1]["kind"] == "MissedCaseEscalated" and events[-1]["case"]["assigned_to"] == "100"
    assert [d.kind for d in Outbox(store).heads()][:1] == ["MissedCaseOpened"]
    assert Outbox(store).pending() == 2                                  # opened, escalated
    [mail] = MailOutbox(store).waiting()
    assert mail.kind == "escalated" and mail.to == "owner@example.com"
    assert "понад 1 год" in mail.subject and "був доручений: 101" in mail.body


def test_a_case_is_escalated_once(store, svc, clock):
    missed_call(store, svc, "c1")
    clock.now = datetime(2025, 3, 10, 8, 0, tzinfo=timezone.utc)
    assert len(svc.escalate_due()) == 1
    clock.now += timedelta(days=3)
    assert svc.escalate_due() == []


def test_a_case_someone_acted_on_is_not_escalated(store, svc, clock):
    assigned = missed_call(store, svc, "c1")
    closed = missed_call(store, svc, "c2", caller="+380501112233")
    svc.assign(assigned["id"], "102", by="panel")
    svc.done(closed["id"], by="panel", note="rang them from a mobile")
    clock.now = datetime(2025, 3, 11, 8, 0, tzinfo=timezone.utc)
    assert svc.escalate_due() == []


def test_the_timer_escalates_what_is_due(store, svc, clock, events):
    missed_call(store, svc, "c1")
    clock.now = datetime(2025, 3, 10, 8, 0, tzinfo=timezone.utc)
    svc.tick()
    assert svc.list()["cases"][0]["assigned_to"] == "100"


def test_without_working_hours_every_minute_counts(store, svc, clock):
    store.set_setting("missed", {"deadline_minutes": 60, "escalate_to": "100"})
    missed_call(store, svc, "c1")
    clock.now = FRIDAY_1730 + timedelta(minutes=59)
    assert svc.escalate_due() == []
    clock.now = FRIDAY_1730 + timedelta(minutes=60)
    assert [c["assigned_to"] for c in svc.escalate_due()] == ["100"]


def test_without_a_deadline_nothing_is_escalated(store, svc, clock):
    store.set_setting("missed", {})
    missed_call(store, svc, "c1")
    clock.now += timedelta(days=30)
    assert svc.escalate_due() == []


@pytest.mark.parametrize("change, words", [
    (("schedule:office", "schedule:shop"), "working_hours must name a schedule as schedule:<id> (schedule:office)"),
    (("working_hours: schedule:office", "working_hours: office"), "working_hours must name a schedule"),
    (('escalate_to: "100"', 'escalate_to: "109"'), "escalate_to must be one of the extensions, not '109'"),
    (("deadline_minutes: 60", "deadline_minutes: 0"), "deadline_minutes must be a whole number of minutes from 1"),
    (('  escalate_to: "100"\n', ""), "escalation needs both deadline_minutes and escalate_to; escalate_to is missing"),
])
def test_bad_escalation_settings_are_refused_with_their_line(change, words):
    text = OFFICE.replace(*change)
    with pytest.raises(ConfigFileError) as e:
        load_text(text)
    assert words in str(e.value) and e.value.line is not None


def test_a_schedule_in_use_for_working_hours_cannot_just_disappear():
    text = OFFICE.replace("  schedules:\n    office:\n      hours: {mon-fri: [\"09:00-18:00\"]}\n", "")
    with pytest.raises(ConfigFileError, match="working_hours must name a schedule"):
        load_text(text)
