"""A paused agent (on a break, at lunch, in after-call work they set) is not rung by groups and queues."""

from appliance.routing.facts import Presence, State
from appliance.routing.steps import Hangup, Queue, Ring

from .helpers import facts, router, simple

PAUSED = Presence(paused=True)


def group(strategy="ringall", **extra):
    return router(simple("group:g", groups={"g": {"name": "G", "strategy": strategy, "members": [101, 102, 103],
                                                  "ring_time": 10, "on_fail": "hangup", **extra}}))


def test_a_group_skips_a_paused_member_and_rings_the_others():
    d = group().first_step(facts(), State(presence={"102": PAUSED}))
    assert isinstance(d.step, Ring)
    assert [leg.target for leg in d.step.legs] == ["101", "103"]
    said = next(t for t in d.trace if t.kind == "group")
    assert said.details["skipped"] == {"102": "paused"} and "102 paused" in said.text


def test_one_by_one_never_comes_to_a_paused_member():
    d = group("linear").first_step(facts(), State(presence={"101": PAUSED}))
    assert [leg.target for leg in d.step.legs] == ["102", "103"]


def test_paused_wins_over_a_group_that_rings_busy_and_unregistered_members():
    # skip_* false rings members in any state, but never one who said they are away.
    r = group(skip_busy=False, skip_dnd=False, skip_unregistered=False)
    state = State(presence={"101": Presence(registered=False), "102": PAUSED, "103": Presence(dnd=True)})
    assert [leg.target for leg in r.first_step(facts(), state).step.legs] == ["101", "103"]


def test_everyone_paused_is_nobody_to_ring():
    d = group(on_unavailable="hangup").first_step(facts(), State(presence={e: PAUSED for e in ("101", "102", "103")}))
    assert isinstance(d.step, Hangup)
    assert next(t for t in d.trace if t.kind == "group").details["outcome"] == "unavailable"


def queue():
    return router(simple("queue:support", queues={"support": {
        "name": "Support", "strategy": "ringall", "members": [201, 202], "on_fail": "hangup"}}))


def test_a_queue_rings_only_agents_not_paused():
    r = queue()
    step = r.first_step(facts(), State()).step
    assert isinstance(step, Queue)
    ring = r.queue_ring(step, facts(), State(presence={"201": PAUSED}))
    assert [leg.target for leg in ring.step.legs] == ["202"]


def test_a_queue_whose_agents_are_all_paused_keeps_the_caller_waiting():
    # Agents on a break come back: the caller waits (max_wait still holds), nobody is rung meanwhile.
    r = queue()
    state = State(presence={"201": PAUSED, "202": PAUSED})
    step = r.first_step(facts(), state).step
    assert isinstance(step, Queue)
    assert r.queue_ring(step, facts(), state).step.legs == ()


def test_a_direct_call_still_rings_a_paused_extension():
    d = router(simple("ext:101")).first_step(facts(), State(presence={"101": PAUSED}))
    assert isinstance(d.step, Ring) and [leg.target for leg in d.step.legs] == ["101"]
