"""The case lifecycle as pure functions, with the time passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from appliance.missed import cases as mc
from appliance.missed.cases import Call, CallKind, CaseError, CaseStatus, Ending, Rules

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def record(**kw) -> tuple[dict, list[dict]]:
    row = {"id": "c1", "direction": "inbound", "caller": "0671234567", "dialled": "0441112233",
           "ended_at": T0.isoformat(), "outcome": "missed", "answered_by": None, "extension": None,
           "wait_s": 25.0, "talk_s": 0.0}
    reason = kw.pop("reason", "no answer")
    row.update(kw)
    return row, [{"kind": "group", "group": "sales"}, {"kind": "end", "reason": reason, "rung": ["101"]}]


def call(**kw) -> Call:
    return Call.from_record(*record(**kw))


RULES = Rules(callback_seconds=10, short_abandon_seconds=5)


def test_an_unanswered_inbound_call_is_missed_and_the_number_normalised():
    c = call()
    assert c.number == "+380671234567"
    assert c.gave_up == "group"
    assert mc.classify(c, RULES) == CallKind.MISSED
    assert mc.classify(call(outcome="voicemail", reason="voicemail"), RULES) == CallKind.MISSED


def test_a_short_abandon_is_counted_apart_only_when_the_caller_hung_up_soon():
    assert mc.classify(call(wait_s=3.0, reason="caller hung up"), RULES) == CallKind.SHORT_ABANDON
    assert mc.classify(call(wait_s=6.0, reason="caller hung up"), RULES) == CallKind.MISSED
    assert mc.classify(call(wait_s=3.0, reason="no answer"), RULES) == CallKind.MISSED
    assert mc.classify(call(wait_s=3.0, reason="caller hung up"), Rules(short_abandon_seconds=2)) == CallKind.MISSED


def test_an_answered_call_is_not_missed_and_a_call_back_counts_only_when_long_enough():
    assert mc.classify(call(outcome="answered", answered_by="102"), RULES) == CallKind.ANSWERED
    back = dict(id="c2", direction="outbound", caller="102", dialled="067 123 45 67", extension="102",
                outcome="answered", answered_by="0671234567")
    assert mc.classify(call(**back, talk_s=12.0), RULES) == CallKind.CALLED_BACK
    assert mc.classify(call(**back, talk_s=9.0), RULES) == CallKind.OTHER
    assert call(**back).number == "+380671234567"
    assert mc.classify(call(direction="internal"), RULES) == CallKind.OTHER


def test_a_case_opens_joins_is_reassigned_and_closes_with_how_long_it_took():
    case = mc.open_case(call(), "102", T0)
    assert case.status == CaseStatus.OPEN and case.assigned_to == "102" and case.assigned_by == "system"
    case = mc.join(case, call(id="c2", wait_s=5.0, ended_at=(T0 + timedelta(minutes=3)).isoformat()))
    assert case.count == 2 and case.waited_s == 30.0
    case = mc.assign(case, "103", "101", T0 + timedelta(minutes=4))
    assert (case.assigned_to, case.assigned_by) == ("103", "101")
    closed = mc.close(case, Ending.CALLED_BACK, "103", T0 + timedelta(minutes=10), call_id="c3")
    assert closed.status == CaseStatus.CLOSED and closed.ended_how == Ending.CALLED_BACK
    assert (closed.closed_by, closed.closed_call, closed.took_s) == ("103", "c3", 600.0)


def test_a_closed_case_takes_no_more_changes():
    closed = mc.close(mc.open_case(call(), None, T0), Ending.DONE, "101", T0, note="sent an offer")
    assert closed.note == "sent an offer"
    for change in (lambda: mc.join(closed, call()), lambda: mc.assign(closed, "102", "101", T0),
                   lambda: mc.close(closed, Ending.DONE, "101", T0)):
        with pytest.raises(CaseError):
            change()


def test_a_short_abandon_is_a_case_born_closed():
    case = mc.short_abandon(call(wait_s=2.0, reason="caller hung up"), T0)
    assert case.short and not case.is_open and case.ended_how == Ending.SHORT_ABANDON


def test_which_calls_close_and_by_whom():
    assert mc.closing(call(direction="outbound", extension="102", dialled="0671234567"), CallKind.CALLED_BACK) == (
        Ending.CALLED_BACK, "102")
    assert mc.closing(call(answered_by="103"), CallKind.ANSWERED) == (Ending.ANSWERED, "103")
    assert mc.closing(call(), CallKind.MISSED) is None


def test_a_case_row_round_trips():
    case = mc.close(mc.open_case(call(), "102", T0), Ending.DONE, "101", T0 + timedelta(seconds=5))
    assert mc.Case.from_row(case.as_row()) == case
