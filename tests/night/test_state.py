"""The night switch's state machine, with the time passed in (nothing here sleeps)."""

from __future__ import annotations

import random
from datetime import timedelta

from appliance.night.state import (
    NightState, automatic, describe, hold, night_for_routing, saved_for_routing, set_mode, settle, to_auto, toggle,
)
from appliance.routing import Call, Facts, Router, State
from appliance.routing.facts import Override, saved_switches
from tests.night.office import config, kyiv, switches

MON_2015 = kyiv(2025, 3, 10, 20, 15)      # Monday evening: the schedule says night
TUE_0900 = kyiv(2025, 3, 11, 9, 0)        # the schedule's next boundary: day
TUE_1800 = kyiv(2025, 3, 11, 18, 0)


def test_automatic_follows_the_schedule_and_knows_its_next_boundary():
    s = automatic(switches()["kyiv"], MON_2015)
    assert (s.mode, s.how, s.until, s.by) == ("night", "auto", TUE_0900, "schedule")
    day = automatic(switches()["kyiv"], kyiv(2025, 3, 11, 10, 0))
    assert (day.mode, day.until) == ("day", TUE_1800)


def test_a_switch_without_a_schedule_is_day_until_switched():
    s = automatic(switches()["warehouse"], MON_2015)
    assert (s.mode, s.how, s.until) == ("day", "auto", None)
    night = toggle(s, switches()["warehouse"], by="button", now=MON_2015)
    assert (night.mode, night.how, night.until) == ("night", "temporary", None)
    assert settle(night, switches()["warehouse"], MON_2015 + timedelta(days=30)) == night


def test_short_press_in_the_day_is_night_until_the_schedule_would_change():
    sw = switches()["kyiv"]
    morning = kyiv(2025, 3, 11, 11, 30)
    s = toggle(automatic(sw, morning), sw, by="button", now=morning)
    assert (s.mode, s.how, s.since, s.until, s.by) == ("night", "temporary", morning, TUE_1800, "button")
    # At the boundary the schedule says night anyway, and takes over again.
    assert settle(s, sw, TUE_1800 - timedelta(seconds=1)) == s
    after = settle(s, sw, TUE_1800)
    assert (after.mode, after.how, after.since, after.by) == ("night", "auto", TUE_1800, "schedule")


def test_a_temporary_override_ends_at_the_boundary_and_the_schedule_decides():
    sw = switches()["kyiv"]
    s = set_mode(None, sw, "day", permanent=False, by="extension 102", now=MON_2015)
    assert (s.mode, s.how, s.until) == ("day", "temporary", TUE_0900)
    at_nine = settle(s, sw, TUE_0900)
    assert (at_nine.mode, at_nine.how, at_nine.since, at_nine.until) == ("day", "auto", TUE_0900, TUE_1800)
    # Left alone for days (the appliance was off): the last boundary that passed is when it changed.
    later = settle(s, sw, kyiv(2025, 3, 13, 20, 0))
    assert (later.mode, later.how, later.since) == ("night", "auto", kyiv(2025, 3, 13, 18, 0))


def test_toggling_back_to_what_the_schedule_says_returns_to_automatic():
    sw = switches()["kyiv"]
    s = toggle(None, sw, by="button", now=MON_2015)
    assert (s.mode, s.how) == ("day", "temporary")
    back = toggle(s, sw, by="button", now=MON_2015 + timedelta(minutes=1))
    assert (back.mode, back.how, back.by) == ("night", "auto", "button")


def test_long_press_keeps_the_mode_shown_until_another_long_press():
    sw = switches()["kyiv"]
    day = kyiv(2025, 3, 11, 11, 0)
    night = toggle(None, sw, by="button", now=day)
    kept = hold(night, sw, by="button", now=day + timedelta(seconds=5))
    assert (kept.mode, kept.how, kept.until) == ("night", "permanent", None)
    assert settle(kept, sw, kyiv(2025, 3, 20, 11, 0)) == kept     # through every boundary
    back = hold(kept, sw, by="button", now=kyiv(2025, 3, 20, 11, 0))
    assert (back.mode, back.how, back.until) == ("day", "auto", kyiv(2025, 3, 20, 18, 0))
    # From automatic, a long press keeps today's mode: the evening before a holiday stays night.
    eve = hold(None, sw, by="button", now=MON_2015)
    assert (eve.mode, eve.how) == ("night", "permanent")


def test_setting_what_is_already_set_changes_nothing():
    sw = switches()["kyiv"]
    s = set_mode(None, sw, "day", permanent=True, by="command line", now=MON_2015)
    again = set_mode(s, sw, "day", permanent=True, by="button", now=MON_2015 + timedelta(hours=1))
    assert again == s
    auto = to_auto(s, sw, by="panel user owner", now=MON_2015)
    assert (auto.mode, auto.how, auto.by) == ("night", "auto", "panel user owner")
    assert to_auto(auto, sw, by="button", now=MON_2015) == auto


def test_routing_reads_the_overrides_in_force_as_routing_state_keeps_them():
    sw = switches()
    states = [
        toggle(None, sw["kyiv"], by="button", now=MON_2015),
        automatic(sw["warehouse"], MON_2015),
    ]
    saved = saved_for_routing(states)
    assert saved == {"kyiv": {"state": "day", "permanent": False, "since": "2025-03-10T18:15:00+00:00"}}
    night, overrides = saved_switches(saved, None)
    assert night == night_for_routing(states) == {"kyiv": Override("day", False, MON_2015)}
    assert overrides == {}


def test_a_state_reads_back_from_its_dict():
    s = toggle(None, switches()["kyiv"], by="extension 102", now=MON_2015)
    assert NightState.from_dict(s.as_dict()) == s


def test_described_in_words():
    sw = switches()["kyiv"]
    s = toggle(None, sw, by="button", now=MON_2015)
    assert describe(s, sw, "Europe/Kyiv", MON_2015) == "day, temporary override until Tue 11 Mar 09:00 (by button at 20:15)"
    auto = automatic(sw, MON_2015)
    assert describe(auto, sw, "Europe/Kyiv", MON_2015).startswith("night, automatic (schedule 'hours') until Tue 11 Mar 09:00")
    perm = hold(None, sw, by="command line", now=MON_2015)
    assert "permanent override until returned to automatic" in describe(perm, sw, "Europe/Kyiv", MON_2015)


def test_routing_follows_the_state_at_every_moment_of_a_temporary_override():
    """Routing decides from the override alone; it agrees with the state machine before and after the boundary."""
    router = Router(config())
    sw = switches()["kyiv"]
    s = toggle(None, sw, by="button", now=MON_2015)
    for minutes in (0, 60, 12 * 60 + 44, 12 * 60 + 45, 14 * 60, 22 * 60, 23 * 60):
        now = MON_2015 + timedelta(minutes=minutes)
        state = State(night=night_for_routing([s]))
        decision = router.first_step(Facts(Call("0671234567", "0441234567"), now, random.Random(1)), state)
        entry = next(e for e in decision.trace if e.kind == "night")
        assert entry.details["night"] == (settle(s, sw, now).mode == "night"), now
