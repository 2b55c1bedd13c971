"""Each hunt strategy: the order it rings members in and the ringing plan's timers."""

import random
from datetime import datetime, timedelta, timezone

import pytest

from appliance.routing.facts import Presence, State
from appliance.routing.steps import Outcome, Ring

from .helpers import facts, router, simple

T0 = datetime(2025, 3, 10, 10, tzinfo=timezone.utc)


def group(strategy, members=(101, 102, 103), **extra):
    section = simple("group:g", groups={"g": {"name": "G", "strategy": strategy, "members": list(members),
                                              "ring_time": 10, "on_fail": "hangup", **extra}})
    return router(section)


def legs(decision):
    assert isinstance(decision.step, Ring)
    return [(l.target, l.start, l.stop) for l in decision.step.legs]


def test_ring_all():
    d = group("ringall").first_step(facts(), State())
    assert legs(d) == [("101", 0, 10), ("102", 0, 10), ("103", 0, 10)]
    assert d.step.for_seconds == 10


def test_linear_with_rounds():
    d = group("linear", rounds=2).first_step(facts(), State())
    assert legs(d) == [("101", 0, 10), ("102", 10, 20), ("103", 20, 30),
                       ("101", 30, 40), ("102", 40, 50), ("103", 50, 60)]
    assert d.step.for_seconds == 60


def test_linear_uses_each_members_ring_time():
    r = group("linear", members=[{"ext": 101, "ring_time": 5}, {"ext": 102, "rings": 3}, 103])
    assert legs(r.first_step(facts(), State())) == [("101", 0, 5), ("102", 5, 20), ("103", 20, 30)]


def test_memory_hunt_keeps_earlier_members_ringing():
    d = group("memory").first_step(facts(), State())
    assert legs(d) == [("101", 0, 30), ("102", 10, 30), ("103", 20, 30)]


def test_round_robin_remembers_where_it_stopped():
    r = group("roundrobin")
    first = r.first_step(facts(), State())
    assert [l.target for l in first.step.legs] == ["101", "102", "103"]
    assert first.updates.positions == {"group:g": 0}
    second = r.first_step(facts(), State(positions=first.updates.positions))
    assert [l.target for l in second.step.legs] == ["102", "103", "101"]
    # 103 answers the second call: the third starts after 103.
    answered = r.next_step(second.step, Outcome.ANSWERED, facts(), State(), by="103")
    assert answered.updates.positions == {"group:g": 2}
    third = r.first_step(facts(), State(positions=answered.updates.positions))
    assert [l.target for l in third.step.legs] == ["101", "102", "103"]


def test_random_order_comes_from_the_rng_passed_in():
    r = group("random", members=(100, 101, 102, 103, 104, 105))
    orders = {tuple(l.target for l in r.first_step(facts(seed=s), State()).step.legs) for s in range(20)}
    assert len(orders) > 1
    again = {tuple(l.target for l in r.first_step(facts(seed=s), State()).step.legs) for s in range(20)}
    assert orders == again  # same seeds, same orders
    assert all(sorted(o) == ["100", "101", "102", "103", "104", "105"] for o in orders)


def test_fewest_calls_today():
    r = group("fewest_calls")
    state = State(presence={"101": Presence(calls_today=9), "102": Presence(calls_today=2),
                            "103": Presence(calls_today=5)})
    assert [l.target for l in r.first_step(facts(), state).step.legs] == ["102", "103", "101"]


def test_longest_idle():
    r = group("longest_idle")
    state = State(presence={"101": Presence(last_call_end=T0 - timedelta(minutes=5)),
                            "102": Presence(last_call_end=T0 - timedelta(minutes=50)),
                            "103": Presence(last_call_end=None)})
    assert [l.target for l in r.first_step(facts(), state).step.legs] == ["103", "102", "101"]


def test_tiers_widen_and_keep_ringing():
    r = group("tiers", members=[101, {"ext": 102, "tier": 2}, {"number": "+380501112233", "tier": 3}],
              widen_after=15, ring_time=40)
    d = r.first_step(facts(), State())
    # The last tier joins at 30 s and still gets widen_after (15 s) of ringing.
    assert legs(d) == [("101", 0, 45), ("102", 15, 45), ("+380501112233", 30, 45)]
    ext_leg = d.step.legs[2]
    assert ext_leg.external and ext_leg.confirm


def test_tiers_close_the_gap_when_a_tier_is_away():
    r = group("tiers", members=[101, {"ext": 102, "tier": 2}, {"ext": 103, "tier": 3}], widen_after=15, ring_time=40)
    d = r.first_step(facts(), State(presence={"101": Presence(registered=False)}))
    assert legs(d) == [("102", 0, 40), ("103", 15, 40)]


def test_escalation_by_ring_time():
    r = group("escalation", members=[{"ext": 101, "rings": 3}, {"ext": 102, "tier": 2, "rings": 3},
                                     {"ext": 103, "tier": 3, "ring_time": 20}])
    d = r.first_step(facts(), State())
    assert legs(d) == [("101", 0, 15), ("102", 15, 30), ("103", 30, 50)]


@pytest.mark.parametrize("why,presence", [
    ("busy", Presence(calls=1)), ("unregistered", Presence(registered=False)), ("dnd", Presence(dnd=True)),
])
def test_members_are_skipped(why, presence):
    d = group("ringall").first_step(facts(), State(presence={"102": presence}))
    assert [l.target for l in d.step.legs] == ["101", "103"]
    assert d.trace[-1].details["skipped"] == {"102": why}


def test_ring_anyway_and_simultaneous_calls():
    r = group("ringall", members=[101, {"ext": 102, "skip_busy": False}, {"ext": 103, "max_calls": 2}])
    busy = Presence(calls=1)
    d = r.first_step(facts(), State(presence={"101": busy, "102": busy, "103": busy}))
    assert [l.target for l in d.step.legs] == ["102", "103"]


def test_wrapup_time_after_a_call():
    r = group("ringall", wrapup=30)
    now = facts().now
    state = State(presence={"101": Presence(last_call_end=now - timedelta(seconds=10)),
                            "102": Presence(last_call_end=now - timedelta(seconds=40))})
    d = r.first_step(facts(), state)
    assert [l.target for l in d.step.legs] == ["102", "103"]
    assert d.trace[-1].details["skipped"] == {"101": "wrap-up"}


def test_external_members_are_always_rung():
    r = group("linear", members=[101, {"number": "0501112233", "confirm": False}])
    d = r.first_step(facts(), State(presence={"101": Presence(registered=False)}))
    assert [(l.target, l.external, l.confirm) for l in d.step.legs] == [("+380501112233", True, False)]
