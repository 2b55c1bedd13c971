"""The control socket: a subscription to some kinds of events gets those and no others."""

from __future__ import annotations

import asyncio
import threading

import pytest

from appliance.control import ControlClient, ControlError, ControlServer


@pytest.fixture
def server(tmp_path):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = ControlServer(tmp_path / "control.sock")
    asyncio.run_coroutine_threadsafe(srv.start(), loop).result(5)
    yield srv, loop
    asyncio.run_coroutine_threadsafe(srv.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def publish(loop, srv, events):
    async def go():
        for event in events:
            srv.publish(event)
    asyncio.run_coroutine_threadsafe(go(), loop).result(5)


def test_a_subscriber_for_some_kinds_gets_only_those_and_one_for_all_gets_all(server):
    srv, loop = server
    some, every = ControlClient(srv.path), ControlClient(srv.path)
    only = some.subscribe(["LiveCallChanged", "LiveCallEnded"])
    all_ = every.subscribe()
    events = [{"kind": "CallStarted", "n": 1}, {"kind": "LiveCallChanged", "n": 2}, {"kind": "StepStarted", "n": 3},
              {"kind": "LiveCallEnded", "n": 4}, {"kind": "CallEnded", "n": 5}]
    publish(loop, srv, events)
    assert [next(only)["n"] for _ in range(2)] == [2, 4]
    assert [next(all_)["n"] for _ in range(5)] == [1, 2, 3, 4, 5]
    publish(loop, srv, [{"kind": "LiveCallChanged", "n": 6}])
    assert next(only)["n"] == 6         # nothing else came between
    some.close()
    every.close()


def test_kinds_that_are_not_a_list_of_names_are_refused_with_the_reason(server):
    srv, _ = server
    with ControlClient(srv.path) as client:
        with pytest.raises(ControlError, match="kinds is a list of event kinds"):
            client.request("subscribe", kinds="LiveCallChanged")
        with pytest.raises(ControlError, match="kinds is a list of event kinds"):
            client.request("subscribe", kinds=[1, 2])
        assert client.request("ping") == "pong"   # the connection is still a command connection


def test_a_subscriber_that_stops_reading_is_cut_off_and_the_others_get_every_event(server):
    srv, loop = server
    srv.MAX_UNREAD = 256 << 10         # instead of 4 MiB
    stuck, reading = ControlClient(srv.path), ControlClient(srv.path)
    stuck.subscribe()                  # and never reads
    events = reading.subscribe()
    big = "x" * 1000
    for start in range(0, 4000, 20):   # one write a pass of the loop, as bursts come; read before the next
        publish(loop, srv, [{"kind": "CallStarted", "n": n, "pad": big} for n in range(start, start + 20)])
        assert [next(events)["n"] for _ in range(20)] == list(range(start, start + 20))
    assert len(srv._subscribers) == 1  # the stuck one is gone, and its unread bytes with it
    stuck._sock.settimeout(5)
    lines = stuck._file.readlines()    # what reached its socket before the cut, then the end
    assert 0 < len(lines) < 4000
    stuck.close()
    reading.close()
