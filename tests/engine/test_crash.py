"""The engine killed with calls up: nothing in flight is lost, and orphaned legs end.

SIGKILL leaves no chance to write anything, so a call's record is written
when it starts.  The next start closes those records as interrupted, turns
the customer calls nobody had answered into missed calls and tells callers
still ringing that the call is over (503), and the legs the
dead engine placed to phones end by their session timers (RFC 4028), here
90 s, the shortest interval the RFC allows.
"""

from __future__ import annotations

import time

import pytest

from tests.engine import harness, routes
from tests.engine.conftest import make_office

pytestmark = [pytest.mark.sip, pytest.mark.slow]


def in_progress(office, ids: set[str], timeout: float = 5.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        office.flush()
        with office.store() as st:
            rows = {c["id"]: c for c in st.recent_calls(50) if c["id"] in ids}
        if len(rows) == len(ids) and all(r["outcome"] == "in progress" for r in rows.values()):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


def test_sigkill_with_calls_up_then_restart(tmp_path):
    office = make_office(tmp_path, engine_settings={"session_expires": 90})
    procs = [*office.phones.values(), office.provider, office.mobile]
    try:
        # An answered customer call, a ringing one, and a desk-to-desk call answered.
        answered = office.ip_call(caller="+380501110001")
        first = office.engine.expect(kind="CallStarted")["call_id"]
        rings = {ext: p.expect(ev="incoming") for ext, p in office.phones.items()}
        office.phones["101"].send(cmd="answer", id=rings["101"]["id"])
        office.provider.expect(ev="state", id=answered, state="confirmed")
        office.engine.expect(kind="CallBridged")
        ringing = office.ip_call(caller="+380501110002")
        second = office.engine.expect(kind="CallStarted")["call_id"]
        for ext in ("102", "103"):
            office.phones[ext].expect(ev="incoming")
        office.provider.expect(ev="state", id=ringing, state="early")
        internal = office.phone_call("101", "102")
        third = office.engine.expect(kind="CallStarted")["call_id"]
        inc = office.phones["102"].expect(ev="incoming")
        office.phones["102"].send(cmd="answer", id=inc["id"])
        office.phones["101"].expect(ev="state", id=internal, state="confirmed")
        rows = in_progress(office, {first, second, third})
        assert rows[first]["answered_by"] == "101" and not rows[second]["answered_by"]

        office.engine.p.kill()
        office.engine.p.wait(5)
        t_kill = time.monotonic()
        office.engine = harness.engine(office.data, office.sip_port, office.trunk_port, "tests.engine.routes:ringall")
        interrupted = office.engine.expect(kind="CallsInterrupted")
        assert set(interrupted["calls"]) == {first, second, third} and interrupted["missed"] == 1

        with office.store() as st:
            calls = {c["id"]: c for c in st.recent_calls(50)}
            missed = {m["call_id"]: m for m in st.open_missed()}
        for cid in (first, second, third):
            assert calls[cid]["outcome"] == "interrupted" and calls[cid]["ended_at"]
            assert calls[cid]["path"][-1]["kind"] == "end"
        assert calls[first]["answered_by"] == "101" and calls[first]["caller"] == "+380501110001"
        assert set(missed) == {second} and missed[second]["caller"] == "+380501110002"
        # The customer who was still ringing is told: the call ends instead of ringing on.
        assert office.provider.expect(ev="state", id=ringing, state="disconnected")["code"] == 503

        # The answered legs the dead engine placed to phones end by their session
        # timers (the engine asked for 90 s).  A caller's own leg runs on the
        # interval its INVITE asked for (pjsua's default is 1800 s): the same
        # happens to it, later.
        for proc, cid in ((office.phones["101"], rings["101"]["id"]), (office.phones["102"], inc["id"])):
            left = max(1.0, 100 - (time.monotonic() - t_kill))
            proc.expect(timeout=left, ev="state", id=cid, state="disconnected")
        # The new engine works: a new customer call is taken.
        office.provider.send(cmd="hangup", id="all")
        pid = office.ip_call(caller="+380501110003")
        office.engine.expect(kind="CallStarted")
        office.provider.expect(ev="state", id=pid, state="early")
    finally:
        for p in (office.engine, *procs):
            p.stop()
        office.registrar.stop()
