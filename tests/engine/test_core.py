"""The engine thread: commands with futures, guarded callbacks, clean stop."""

from __future__ import annotations

import threading
import time

import pytest

from appliance.engine.core import EngineConfig, EngineThread, Registry, guarded
from tests.conftest import free_port


@pytest.fixture
def engine():
    beats = []
    e = EngineThread(EngineConfig(sip_port=free_port(), log_level=1), on_heartbeat=lambda: beats.append(time.monotonic()))
    e.start()
    e.beats = beats
    yield e
    e.stop()


def test_commands_run_on_the_thread_that_created_the_library(engine):
    caller = threading.get_ident()
    ident = engine.call(threading.get_ident)
    assert ident != caller
    assert engine.call(lambda: engine.ep.libIsThreadRegistered())
    # Every command runs on that same one thread.
    assert {engine.call(threading.get_ident) for _ in range(5)} == {ident}


def test_a_failing_command_hands_its_exception_to_the_caller_and_the_engine_goes_on(engine):
    def boom():
        raise ValueError("bad command")

    with pytest.raises(ValueError, match="bad command"):
        engine.call(boom)
    assert engine.call(lambda: 41 + 1) == 42


def test_codecs_are_g711_first_and_speex_off(engine):
    prio = engine.call(lambda: {c.codecId.split("/")[0]: c.priority for c in engine.ep.codecEnum2()})
    assert prio["PCMU"] > prio["PCMA"] > prio["G722"] > 0
    assert prio["speex"] == 0 and prio["opus"] == 0


def test_heartbeats_come_from_the_running_loop(engine):
    time.sleep(2.2)
    assert len(engine.beats) >= 2


def test_stop_is_prompt_and_later_commands_fail_clearly():
    e = EngineThread(EngineConfig(sip_port=free_port(), log_level=1))
    e.start()
    t0 = time.monotonic()
    e.stop()
    assert time.monotonic() - t0 < 3.0
    assert not e.running
    with pytest.raises(RuntimeError, match="not running"):
        e.call(lambda: 1)


def test_a_second_engine_in_one_process_is_refused(engine):
    with pytest.raises(RuntimeError, match="another engine"):
        EngineThread(EngineConfig(sip_port=free_port())).start()
    assert engine.call(lambda: 2) == 2


def test_a_taken_port_fails_start_with_the_reason_and_frees_the_library():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(Exception, match="(?i)address|in use|bind"):
            EngineThread(EngineConfig(sip_port=port, log_level=0)).start()
    # The library was destroyed and the slot given back: a new engine starts.
    e = EngineThread(EngineConfig(sip_port=free_port(), log_level=1))
    e.start()
    e.stop()


def test_guarded_callbacks_log_and_swallow(caplog):
    @guarded
    def callback():
        raise KeyError("inside callback")

    assert callback() is None
    assert "inside callback" in caplog.text


def test_registry_releases_on_the_next_turn_and_sees_leaks():
    class Obj:
        pass

    reg = Registry()
    a, b = Obj(), Obj()
    reg.keep(1, a)
    reg.keep(2, b)
    reg.done(1)
    assert reg.get(1) is None and len(reg) == 1
    del a
    assert reg.release_done() == 1
    assert reg.leaked() == 0
    reg.done(2)
    reg.release_done()
    assert reg.leaked() == 1  # the test still holds b
    del b
    assert reg.leaked() == 0


def test_reference_cycles_with_pj_objects_are_freed_on_the_engine_thread(engine):
    """A cycle freed by the collector on another thread would destroy its pj object there (abort)."""
    import gc
    import weakref

    assert not gc.isenabled()  # the automatic collector could run on any thread
    freed_on = []

    class Holder:
        def __init__(self):
            self.me = self  # a cycle: only the collector frees it
            import pjsua2

            self.tone = pjsua2.ToneGenerator()  # built on the engine thread (Holder is)

        def __del__(self):
            freed_on.append(threading.get_ident())

    engine_thread = engine.call(threading.get_ident)
    ref = weakref.ref(engine.call(Holder))
    # Allocate from this thread until the engine's collector has run.
    junk = []
    deadline = time.monotonic() + 5
    while ref() is not None and time.monotonic() < deadline:
        junk.append([[] for _ in range(100)])  # kept: the counters only grow
        time.sleep(0.001)
    assert ref() is None
    assert freed_on == [engine_thread]


def test_the_collector_runs_by_itself_again_after_stop():
    import gc

    e = EngineThread(EngineConfig(sip_port=free_port(), log_level=1))
    e.start()
    e.stop()
    assert gc.isenabled()


def test_the_registry_forgets_released_objects_that_are_gone():
    # One weak reference per released call would grow for as long as the appliance runs.
    import weakref as _weakref

    from appliance.engine.core import RELEASED_KEPT, Registry

    class Obj:
        def isActive(self):
            return False

    reg = Registry()
    for i in range(RELEASED_KEPT + 10):
        reg.keep(("leg", i), Obj())
        reg.done(("leg", i))
        reg.release_done()
    assert len(reg._released) <= RELEASED_KEPT
    assert reg.leaked() == 0
    assert all(isinstance(r, _weakref.ref) for r in reg._released)
