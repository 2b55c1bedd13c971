"""Many bridged calls hung up at the same moment from both ends, round after round.

What `pbx bench calls` ran into: on the second round the engine stopped
answering.  Every leg then carried a real-time text stream (pjsua 2.17 offers
m=text by default) whose clock thread each hang-up joined on the engine
thread, so a round of hang-ups held the loop for seconds; and the call
objects' life cycle (kept until DISCONNECTED, freed only while no newer call
has their pjsua call id) must survive BYEs crossing from both sides.

A provider places CALLS calls over an IP trunk to extension 101, the phone
answers them all, then provider and phone hang up together.  After two such
rounds the engine must hold no legs, have leaked none, still be running, and
answer a third round.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from appliance.store import Store
from tests.conftest import free_port
from tests.engine import harness

CALLS = 20
HOLD = 1.0
NUMBER = "+380440000000"  # the bench trunk's number (appliance.engine.bench:router sends all to 101)


class Peer:
    """A benchpeer process (appliance/engine/benchpeer.py): its stdout lines, read in the background."""

    def __init__(self, *args: str):
        self.p = subprocess.Popen([sys.executable, "-m", "appliance.engine.benchpeer", *args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=str(harness.ROOT), env={**os.environ, "PYTHONPATH": str(harness.ROOT)})
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=lambda: [self.lines.put(line.strip()) for line in self.p.stdout], daemon=True).start()
        self.wait(lambda line: line == "ready")

    def send(self, line: str) -> None:
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def wait(self, test, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if test(line):
                return line
        raise AssertionError(f"no expected line within {timeout} s (exit code {self.p.poll()})")

    def stop(self) -> str:
        if self.p.stdin and not self.p.stdin.closed:
            self.p.stdin.close()
        try:
            self.p.wait(15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)
        return self.p.stderr.read()


def _threads(proc: harness.Proc) -> int:
    return len(os.listdir(f"/proc/{proc.p.pid}/task"))


def _engine_stats(engine: harness.Proc) -> dict:
    engine.send(cmd="stats")
    return engine.expect(timeout=15, kind="stats")


@pytest.mark.sip
def test_calls_hung_up_together_from_both_ends_leave_the_engine_answering(tmp_path):
    data = tmp_path / "data"
    sip_port, trunk_port, phone_port, provider_port = (free_port() for _ in range(4))
    with Store(data) as store:
        store.add_extension("101", "Desk 101", "pw101")
        store.db["bindings"].insert({
            "extension": "101", "contact": f"sip:101@127.0.0.1:{phone_port}", "source_host": "127.0.0.1",
            "source_port": phone_port, "transport": "udp", "q": 1.0, "expires_at": time.time() + 86400,
            "registered_at": time.time()})
        store.put_trunk({"name": "prov", "kind": "ip", "host": "127.0.0.1", "port": provider_port,
                         "addresses": ["127.0.0.1"], "numbers": [NUMBER]})
    peers: list[Peer] = []
    engine = None
    try:
        phone = Peer("answer", str(phone_port))
        peers.append(phone)
        provider = Peer("call", str(provider_port), f"sip:{NUMBER}@127.0.0.1:{trunk_port}")
        peers.append(provider)
        engine = harness.engine(data, sip_port, trunk_port, "appliance.engine.bench:router")
        idle_threads = _threads(engine)

        for _ in range(2):
            provider.send(f"{CALLS} {HOLD}")
            held = json.loads(provider.wait(lambda line: line.startswith('{"held"')))
            assert held["held"] == CALLS, held
            # No thread per call: a call's media must not bring a thread that
            # its hang-up has to join on the engine thread (m=text did, 300 ms each).
            assert _threads(engine) <= idle_threads + 4, (idle_threads, _threads(engine))
            time.sleep(HOLD)  # the provider hangs up after HOLD seconds: BYEs cross in the engine
            phone.send("hangup")
            summary = json.loads(provider.wait(lambda line: line.startswith('{"placed"'), timeout=60))
            assert summary["answered"] == CALLS and summary["not_ended"] == 0, summary
            # Legs are let go a loop turn after DISCONNECTED: ask until they are.
            for _ in range(50):
                st = _engine_stats(engine)
                if st["live"] == 0 and st["sessions"] == 0:
                    break
                time.sleep(0.1)
            assert (st["sessions"], st["live"]) == (0, 0), st
            assert st.get("leaked", 0) == 0, st
            assert engine.p.poll() is None, "".join(engine.stderr[-20:])

        provider.send(f"{CALLS} {HOLD}")
        held = json.loads(provider.wait(lambda line: line.startswith('{"held"')))
        assert held["held"] == CALLS, held
        summary = json.loads(provider.wait(lambda line: line.startswith('{"placed"'), timeout=60))
        assert summary["answered"] == CALLS, summary
        assert engine.p.poll() is None
    finally:
        if engine is not None:
            engine.stop()
        stderr = {i: p.stop() for i, p in enumerate(peers)}
    errors = [line for line in engine.stderr if "Assertion" in line or "Traceback" in line]
    assert not errors, "".join(engine.stderr[-30:])
    assert engine.p.returncode == 0, "".join(engine.stderr[-30:])
    assert [p.p.returncode for p in peers] == [0, 0], stderr
