"""The live monitor's actions on a queued caller, on real legs: put in another place in the line, made a
VIP for the call, moved to another group or to another agent.

The provider calls in twice over the IP trunk; both callers wait in queue `support`, whose agent 103
rings (and does not answer) for the caller at the front, one round of RING_TIME seconds at a time.
The engine runner's "place", "vip" and "move" commands are what `monitor.place`, `monitor.vip` and
`monitor.move` carry out (appliance/engine/moves.py).
"""

from __future__ import annotations

import queue as queues
import time

import pytest

from appliance.routing.model import Availability, Exits, Group, Member, Queue, RoutingConfig, Route
from tests.engine import harness, routes

pytestmark = pytest.mark.sip

FIRST = "+380507654321"
SECOND = "+380501234567"
RING_TIME = 3
HANGUP = Exits("hangup", "hangup", "hangup", "hangup")


def queue_and_group(store):
    """Queue `support` (agent 103) and group `sales` (102)."""
    return routes._router(store, RoutingConfig(
        routes=(Route("sales", "queue:support", numbers=(routes.SALES_NUMBER,)),),
        queues={"support": Queue("support", "Support", "ringall", (Member("103"),), HANGUP, ring_time=RING_TIME,
                                 retry=1, max_wait=120, announce_every=0,
                                 availability=Availability(True, True, True, 0, 1))},
        groups={"sales": Group("sales", "Sales", "ringall", (Member("102"),), HANGUP, ring_time=20)},
    ))


@pytest.fixture
def line(world):
    world.engine.send(cmd="router", factory="tests.engine.test_monitor_actions:queue_and_group")
    world.engine.expect(kind="done", cmd="router")
    world.engine.clear()
    return world


def join(world, caller: str) -> tuple[int, str]:
    """The provider calls in as `caller`; (its call id, the engine's call id) once it waits in the queue."""
    pid = world.ip_call(caller=caller)
    return pid, world.engine.expect(kind="QueueJoined", caller=caller)["call_id"]


def rings_for(world, ext: str, caller: str, timeout: float = 10.0) -> dict:
    """The next incoming call at `ext` that shows `caller` (incoming calls for others are left aside)."""
    phone = world.phones[ext]
    deadline = time.monotonic() + timeout
    while True:
        for inc in phone.all(ev="incoming"):
            if caller in inc["remote"]:
                phone.seen.remove(inc)
                return inc
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{ext} did not ring for {caller}; saw {phone.seen[-10:]}")
        try:
            phone.seen.append(phone.lines.get(timeout=min(left, 0.2)))
        except queues.Empty:
            pass


def ask(world, cmd: str, **args) -> dict:
    """A monitor action through the engine runner: its answer, or {"error": ...} when refused."""
    world.engine.send(cmd=cmd, **args)
    while True:
        reply = world.engine.expect(cmd=cmd)
        if reply["kind"] == "moved":
            return reply["answer"]
        if reply["kind"] == "refused":
            return {"error": reply["error"]}


def talk(world, pid: int, ext: str, inc: dict, tmp_path) -> None:
    """The caller and the phone hear each other."""
    caller_heard, phone_heard = harness.exchange_tones(world.provider, pid, world.phones[ext], inc["id"], tmp_path)
    assert harness.goertzel(caller_heard, 1400) > 0.5, "the caller does not hear the agent"
    assert harness.goertzel(phone_heard, 600) > 0.5, "the agent does not hear the caller"


def test_the_second_caller_put_first_is_bridged_first_when_the_agent_comes_free(line, tmp_path):
    world = line
    first_pid, first = join(world, FIRST)
    rings_for(world, "103", FIRST)                      # the agent rings for the first caller
    second_pid, second = join(world, SECOND)

    assert "error" in ask(world, "place", call_id="no-such-call", position=1)
    assert ask(world, "place", call_id=second, position=1) == {"call_id": second, "queue": "support", "position": 1}
    assert world.engine.expect(kind="QueuePosition", call_id=second)["position"] == 1
    assert world.engine.expect(kind="QueuePosition", call_id=first)["position"] == 2

    # The first caller's round ends unanswered: the agent's next ring is for the second caller.
    inc = rings_for(world, "103", SECOND, timeout=RING_TIME + 8)
    world.phones["103"].send(cmd="answer", id=inc["id"])
    assert world.engine.expect(kind="CallAnswered", call_id=second)["by"] == "103"
    world.provider.expect(ev="state", id=second_pid, state="confirmed")
    world.engine.expect(kind="CallBridged", call_id=second)
    talk(world, second_pid, "103", inc, tmp_path)
    assert world.engine.all(kind="CallAnswered", call_id=first) == []
    assert "answered" in ask(world, "place", call_id=second, position=2)["error"]

    for pid in (first_pid, second_pid):
        world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded", call_id=first)
    world.engine.expect(kind="CallEnded", call_id=second)


def test_a_caller_made_a_vip_goes_ahead_and_is_rung_next(line):
    world = line
    first_pid, first = join(world, FIRST)
    rings_for(world, "103", FIRST)
    second_pid, second = join(world, SECOND)

    assert ask(world, "vip", call_id=second)["position"] == 1
    told = world.engine.expect(kind="QueuePosition", call_id=second)
    assert (told["position"], told["vip"]) == (1, True)
    assert world.engine.expect(kind="QueuePosition", call_id=first)["position"] == 2
    rings_for(world, "103", SECOND, timeout=RING_TIME + 8)

    for pid in (first_pid, second_pid):
        world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded", call_id=first)
    world.engine.expect(kind="CallEnded", call_id=second)


def test_a_caller_moved_to_a_group_leaves_the_queue_and_the_groups_phone_answers(line, tmp_path):
    world = line
    pid, cid = join(world, SECOND)
    rings_for(world, "103", SECOND)

    assert "no destination" in ask(world, "move", call_id=cid, to="group:nosuch")["error"]
    assert ask(world, "move", call_id=cid, to="group:sales", by="panel") == {"call_id": cid, "to": "group:sales"}
    assert world.engine.expect(kind="QueueLeft", call_id=cid)["reason"] == "moved"
    moved = world.engine.expect(kind="CallMoved", call_id=cid)
    assert (moved["queue"], moved["to"], moved["by"]) == ("support", "group:sales", "panel")
    world.phones["103"].expect(ev="state", state="disconnected")     # the queue's ringing stops
    inc = rings_for(world, "102", SECOND)
    world.phones["102"].send(cmd="answer", id=inc["id"])
    assert world.engine.expect(kind="CallAnswered", call_id=cid)["by"] == "102"
    world.engine.expect(kind="CallBridged", call_id=cid)
    talk(world, pid, "102", inc, tmp_path)

    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded", call_id=cid)["outcome"] == "answered"
    world.flush()
    with world.store() as st:
        (record,) = [r for r in st.recent_calls(20) if r["id"] == cid]
    steps = [p["dest"] for p in record["path"] if p["kind"] == "step"]
    assert steps[:2] == ["queue:support", "group:sales"] and record["answered_by"] == "102"   # one record for both
    moved = next(p for p in record["path"] if p["kind"] == "moved")
    assert (moved["to"], moved["by"], moved["queue"]) == ("group:sales", "panel", "support")


def test_a_caller_moved_to_another_agent_keeps_their_place_while_it_rings(line, tmp_path):
    world = line
    pid, cid = join(world, SECOND)
    rings_for(world, "103", SECOND)

    assert ask(world, "move", call_id=cid, to="102")["to"] == "ext:102"
    inc = rings_for(world, "102", SECOND)
    assert world.engine.all(kind="QueueLeft", call_id=cid) == []           # still waiting while 102 rings
    world.phones["102"].send(cmd="answer", id=inc["id"])
    assert world.engine.expect(kind="CallAnswered", call_id=cid)["by"] == "102"
    assert world.engine.expect(kind="QueueLeft", call_id=cid)["reason"] == "answered"
    talk(world, pid, "102", inc, tmp_path)

    world.provider.send(cmd="hangup", id=pid)
    world.engine.expect(kind="CallEnded", call_id=cid)


def test_a_queued_caller_taken_to_another_phone_talks_with_it_both_ways(line, tmp_path):
    world = line
    pid, cid = join(world, SECOND)
    rings_for(world, "103", SECOND)

    assert "no extension 999" in ask(world, "take", call_id=cid, ext="999")["error"]
    assert ask(world, "take", call_id=cid, ext="102") == {"call_id": cid, "ext": "102"}
    inc = rings_for(world, "102", SECOND)                             # alongside 103
    world.phones["102"].send(cmd="answer", id=inc["id"])
    assert world.engine.expect(kind="CallAnswered", call_id=cid)["by"] == "102"
    world.phones["103"].expect(ev="state", state="disconnected")     # the queue's ringing stops
    talk(world, pid, "102", inc, tmp_path)
    assert "answered" in ask(world, "take", call_id=cid, ext="103")["error"]

    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded", call_id=cid)["answered_by"] == "102"
