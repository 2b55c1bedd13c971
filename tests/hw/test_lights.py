"""What each LED shows for each state of the appliance: the table, and events folded into it."""

from __future__ import annotations

import pytest

from appliance.hw.config import LEDS
from appliance.hw.lights import PATTERNS, TABLE, Box, fold, from_status, lights


def shown(box: Box) -> dict[str, str]:
    return {led: pattern.name for led, (pattern, _means) in lights(box).items()}


def test_there_is_a_rule_for_every_led_and_a_pattern_for_every_rule():
    assert tuple(TABLE) == LEDS
    assert {p.state for p in PATTERNS.values()} == {"on", "off", "blinking"}


def test_a_quiet_office_by_day():
    box = fold(Box(), {"kind": "ApplianceStarted"})
    box = fold(box, {"kind": "NightModeChanged", "switch": "kyiv", "mode": "day", "how": "auto"})
    assert shown(box) == {"ready": "on", "trunk": "off", "calls": "off", "night": "off", "missed": "off"}


@pytest.mark.parametrize("events, led, pattern", [
    ([], "ready", "slow"),
    ([{"kind": "TrunkConfigured", "trunk": "p", "type": "ip"}], "trunk", "on"),
    ([{"kind": "TrunkConfigured", "trunk": "p", "type": "register"}], "trunk", "slow"),
    ([{"kind": "TrunkConfigured", "trunk": "p", "type": "register"}, {"kind": "TrunkRegistered", "trunk": "p"}],
     "trunk", "on"),
    ([{"kind": "TrunkConfigured", "trunk": "a", "type": "ip"}, {"kind": "TrunkRegistrationFailed", "trunk": "b"}],
     "trunk", "slow"),
    ([{"kind": "TrunkRegistered", "trunk": "p"}, {"kind": "TrunkUnregistered", "trunk": "p"}], "trunk", "off"),
    ([{"kind": "CallStarted", "call_id": "1"}], "calls", "on"),
    ([{"kind": "CallStarted", "call_id": "1"}, {"kind": "QueueJoined", "call_id": "1"}], "calls", "fast"),
    ([{"kind": "CallStarted", "call_id": "1"}, {"kind": "QueueJoined", "call_id": "1"},
      {"kind": "CallEnded", "call_id": "1"}], "calls", "off"),
    ([{"kind": "MissedCaseOpened", "call_id": "1", "case": {"status": "open"}}], "missed", "on"),
    ([{"kind": "NightModeChanged", "switch": "kyiv", "mode": "night", "how": "auto"}], "night", "on"),
    ([{"kind": "NightModeChanged", "switch": "kyiv", "mode": "night", "how": "temporary"}], "night", "long"),
    ([{"kind": "NightModeChanged", "switch": "kyiv", "mode": "night", "how": "permanent"}], "night", "long"),
    ([{"kind": "NightModeChanged", "switch": "kyiv", "mode": "day", "how": "temporary"}], "night", "wink"),
    ([{"kind": "CallAnswered", "call_id": "1"}], "calls", "off"),       # an event the LEDs do not show
])
def test_events_light_the_leds(events, led, pattern):
    box = Box()
    for e in events:
        box = fold(box, e)
    assert shown(box)[led] == pattern


def test_the_night_led_shows_the_buttons_switch_and_answers_a_press_at_once():
    box = Box(night={"kyiv": {"mode": "night", "how": "auto"}, "lviv": {"mode": "day", "how": "permanent"}})
    assert shown(box)["night"] == "on"                                  # the first switch
    assert shown(Box(night=box.night, night_switch="lviv"))["night"] == "wink"
    assert shown(Box(night=box.night, button="down"))["night"] == "fast"
    assert shown(Box(night=box.night, button="held"))["night"] == "on"


def test_status_brings_what_no_event_says():
    box = fold(Box(), {"kind": "ApplianceStarted"})
    box = from_status(box, {"engine": {"running": False}, "missed_open": 2,
                            "night": {"kyiv": {"mode": "day", "how": "temporary", "until": "..."}}})
    assert shown(box) == {"ready": "fast", "trunk": "off", "calls": "off", "night": "wink", "missed": "on"}
    assert lights(box)["ready"][1] == "the call engine is down"
    box = from_status(box, {"engine": {"running": True}, "missed_open": 0, "night": None})
    assert shown(box)["ready"] == "on" and shown(box)["missed"] == "off" and shown(box)["night"] == "off"


def test_the_missed_led_counts_open_cases_from_their_events():
    from appliance.hw.lights import Box, fold

    box = fold(Box(), {"kind": "MissedCaseOpened", "case": {"status": "open"}})
    assert box.missed_open == 1
    assert fold(box, {"kind": "MissedCaseOpened", "case": {"status": "closed"}}).missed_open == 1  # a short abandon
    box = fold(box, {"kind": "MissedCaseClosed", "case": {"status": "closed"}})
    assert box.missed_open == 0
    assert fold(box, {"kind": "MissedCaseClosed", "case": {"status": "closed"}}).missed_open == 0
