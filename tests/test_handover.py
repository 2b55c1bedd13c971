"""appliance.handover: every event reaches the loop, in order, with one wake-up per batch."""

from __future__ import annotations

import asyncio
import threading
import time

from appliance.handover import Handover


def _running_loop() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    return loop, thread


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_a_burst_while_the_loop_is_busy_arrives_whole_in_order_with_one_wake_up():
    loop, thread = _running_loop()
    got: list[int] = []
    done = threading.Event()

    def deliver(n: int) -> None:
        got.append(n)
        if n == 999:
            done.set()

    hand = Handover(loop, deliver)
    busy, release = threading.Event(), threading.Event()

    def hold_the_loop() -> None:
        busy.set()
        release.wait(5)

    loop.call_soon_threadsafe(hold_the_loop)
    assert busy.wait(5)
    for n in range(1000):          # the engine thread's burst while the loop is elsewhere
        hand.put(n)
    release.set()
    assert done.wait(5)
    _stop(loop, thread)
    assert got == list(range(1000))
    assert hand.events == 1000
    assert hand.wakeups == 1


def test_events_from_two_threads_are_all_delivered_and_each_thread_keeps_its_order():
    loop, thread = _running_loop()
    got: list[tuple[str, int]] = []
    hand = Handover(loop, got.append)

    def send(name: str) -> None:
        for n in range(5000):
            hand.put((name, n))

    senders = [threading.Thread(target=send, args=(name,)) for name in "ab"]
    for t in senders:
        t.start()
    for t in senders:
        t.join(10)
    # The drain the puts scheduled (or the one running) finishes before anything queued after it.
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5)
    _stop(loop, thread)
    assert len(got) == 10000
    for name in "ab":
        assert [n for who, n in got if who == name] == list(range(5000))
    assert hand.wakeups <= hand.events


def test_a_failing_subscriber_does_not_lose_the_events_after_it():
    loop, thread = _running_loop()
    got: list[int] = []
    done = threading.Event()

    def deliver(n: int) -> None:
        if n == 3:
            raise ValueError("a subscriber's bug")
        got.append(n)
        if n == 9:
            done.set()

    hand = Handover(loop, deliver)
    for n in range(10):
        hand.put(n)
    assert done.wait(5)
    _stop(loop, thread)
    assert got == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_after_the_loop_closed_a_late_event_is_dropped_quietly():
    loop, thread = _running_loop()
    hand = Handover(loop, lambda e: None)
    _stop(loop, thread)
    hand.put("late")               # the engine's last event during shutdown


def _settled(loop: asyncio.AbstractEventLoop) -> None:
    """Everything the loop had been asked to run before this has run."""
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5)


def test_puts_from_the_engine_thread_wait_for_the_end_of_its_turn():
    loop, thread = _running_loop()
    got: list[str] = []
    hand = Handover(loop, got.append)
    seen_before_flush: list[list[str]] = []

    def engine_turn() -> None:
        for n in range(3):
            hand.put(f"engine {n}")
        _settled(loop)                 # the loop ran whatever it was asked to: nothing was delivered
        seen_before_flush.append(list(got))
        hand.flush()                   # the turn's end

    engine = threading.Thread(target=engine_turn)
    hand.defer_for(engine)             # before it starts, as the appliance does
    engine.start()
    engine.join(5)
    _settled(loop)
    assert seen_before_flush == [[]]
    assert got == ["engine 0", "engine 1", "engine 2"]
    assert hand.wakeups == 1

    hand.put("edge")                   # any other thread wakes the loop at once
    _settled(loop)
    _stop(loop, thread)
    assert got[-1] == "edge" and hand.wakeups == 2


def test_a_put_from_another_thread_takes_the_engine_threads_pending_events_along_in_order():
    loop, thread = _running_loop()
    got: list[str] = []
    hand = Handover(loop, got.append)
    engine = threading.Thread(target=lambda: [hand.put("engine 1"), hand.put("engine 2")])
    hand.defer_for(engine)
    engine.start()
    engine.join(5)
    hand.put("other")
    _settled(loop)
    hand.flush()                       # nothing left: no wake-up
    _settled(loop)
    _stop(loop, thread)
    assert got == ["engine 1", "engine 2", "other"]
    assert hand.wakeups == 1


def test_a_busy_engine_keeps_its_events_until_it_is_idle_or_they_waited_long_enough():
    loop, thread = _running_loop()
    got: list[str] = []
    hand = Handover(loop, got.append)
    idle = [False]
    seen: dict[str, list[str]] = {}

    def engine_turns() -> None:
        hand.put("invite")
        hand.flush()                   # the turn handled a message: the 180 may come any moment
        _settled(loop)
        seen["busy"] = list(got)
        idle[0] = True
        hand.flush()                   # a turn that waited for nothing
        _settled(loop)
        seen["idle"] = list(got)
        idle[0] = False
        hand.put("180")
        time.sleep(0.25)               # longer than `within`: the loop must not fall behind
        hand.flush()
        _settled(loop)
        seen["waited"] = list(got)
        hand.put("200")
        hand.flush(force=True)         # the engine asks the loop for something: what came first goes first
        _settled(loop)
        seen["forced"] = list(got)

    engine = threading.Thread(target=engine_turns)
    hand.defer_for(engine, lambda: idle[0], within=0.2)
    engine.start()
    engine.join(5)
    _stop(loop, thread)
    assert seen == {"busy": [], "idle": ["invite"], "waited": ["invite", "180"], "forced": ["invite", "180", "200"]}
    assert hand.wakeups == 3
