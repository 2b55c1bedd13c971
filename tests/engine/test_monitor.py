"""The live monitor on real legs: a customer hears the greeting, presses 2 at the menu, waits in the
queue, agent 103 rings and answers.  The engine's events, as it prints them, feed `LiveCalls`
exactly as `pbx run` feeds it; each stage must appear in the monitor's stream in that order, with
the menu's keys, the queue and position, whom it rang and with whom it talks, and the snapshot
must show the call where it is at each step.
"""

from __future__ import annotations

import queue
import time

import pytest

from appliance.monitor import CHANGED, ENDED, LiveCalls
from appliance.routing.model import Announcement, Availability, Exits, Member, Menu, Queue, RoutingConfig, Route
from tests.engine import listen, routes

pytestmark = pytest.mark.sip

CALLER = "+380501234567"


def greeting_menu_queue(store):
    """Route: greeting `t-hello`, then menu `main` (2: queue `support` with agent 103)."""
    return routes._router(store, RoutingConfig(
        routes=(Route("sales", "announcement:hello", numbers=(routes.SALES_NUMBER,)),),
        announcements={"hello": Announcement("hello", "Hello", "t-hello", "menu:main")},
        menus={"main": Menu("main", "Main", "t-main", {"1": "ext:101", "2": "queue:support"},
                            on_timeout="hangup", on_invalid="hangup", timeout=10, inter_digit=1, retries=0)},
        queues={"support": Queue("support", "Support", "ringall", (Member("103"),),
                                 Exits("hangup", "hangup", "hangup", "hangup"), ring_time=20, retry=1,
                                 max_wait=60, announce_every=0, availability=Availability(True, True, True, 0, 1))},
    ))


@pytest.fixture(scope="module", autouse=True)
def prompts(office):
    listen.tone_wav(office.data / "prompts" / "t-hello.wav", 900, 0.6)
    listen.tone_wav(office.data / "prompts" / "t-main.wav", 700, 0.6)


class Watching:
    """The engine's events, in the order it printed them, fed to a LiveCalls; what it published."""

    def __init__(self, engine):
        self.engine = engine
        self.published: list[dict] = []
        self.monitor = LiveCalls(self.published.append)

    def until(self, check, what: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while not (found := check()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout} s; monitor published {self.stages()}")
            try:
                self.monitor.on_event(self.engine.lines.get(timeout=min(left, 0.2)))
            except queue.Empty:
                pass
        return found

    def stage(self, stage: str, **fields) -> dict:
        """Wait until the monitor publishes the call at `stage` (with these fields); that view."""
        def seen():
            return next((e["call"] for e in self.published if e["kind"] == CHANGED and e["call"]["stage"] == stage
                         and all(e["call"].get(k) == v for k, v in fields.items())), None)
        return self.until(seen, f"{stage} {fields or ''}")

    def stages(self) -> list[str]:
        """The stages published, each change of stage once."""
        out: list[str] = []
        for e in self.published:
            if e["kind"] == CHANGED and (not out or out[-1] != e["call"]["stage"]):
                out.append(e["call"]["stage"])
        return out

    def now(self) -> dict:
        calls = self.monitor.snapshot()["calls"]
        assert len(calls) == 1, calls
        return calls[0]


def test_each_stage_of_a_call_appears_in_order_and_in_the_snapshot(world):
    world.engine.send(cmd="router", factory="tests.engine.test_monitor:greeting_menu_queue")
    world.engine.expect(kind="done", cmd="router")
    world.engine.clear()
    w = Watching(world.engine)

    pid = world.ip_call(caller=CALLER)
    arriving = w.stage("arriving")
    assert (arriving["caller"], arriving["direction"], arriving["dialled"]) == (CALLER, "inbound", routes.SALES_NUMBER)
    w.stage("greeting", dest="announcement:hello")
    assert w.now()["stage"] == "greeting"

    menu = w.stage("menu", dest="menu:main")
    assert menu["keys"] == "" and w.now()["stage"] == "menu"
    world.provider.send(cmd="dtmf", id=pid, digits="2")
    assert w.stage("menu", keys="2")["dest"] == "menu:main"

    queued = w.stage("queue", queue="support")
    assert queued["position"] == 1 and queued["vip"] is False and queued["queue_s"] is not None
    ringing = w.stage("ringing", ringing=["103"])
    assert ringing["queue"] == "support"            # still its place in the queue while agents ring
    assert w.now()["stage"] == "ringing" and w.now()["ringing"] == ["103"]

    inc = world.phones["103"].expect(ev="incoming", timeout=8)
    world.phones["103"].send(cmd="answer", id=inc["id"])
    talking = w.stage("talking", **{"with": "103"})
    assert talking["ringing"] == [] and talking["position"] == 0
    assert w.now()["stage"] == "talking" and w.now()["stage_s"] < 5

    assert w.stages() == ["arriving", "greeting", "menu", "queue", "ringing", "talking"]

    world.provider.send(cmd="hangup", id=pid)
    w.until(lambda: any(e["kind"] == ENDED for e in w.published), "LiveCallEnded")
    assert w.monitor.snapshot()["calls"] == []
    seqs = [e["seq"] for e in w.published]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
