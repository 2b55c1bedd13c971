"""Inbound calls over the trunks, carried out by the B2BUA with real pjsua2 peers."""

from __future__ import annotations

import time

import pytest

from tests.engine import harness, routes

pytestmark = pytest.mark.sip

COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


def wait_call(office, call_id: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        office.flush()
        with office.store() as st:
            row = [c for c in st.recent_calls(50) if c["id"] == call_id and c["outcome"] != "in progress"]
            if row:
                return row[0]
        time.sleep(0.1)
    raise AssertionError(f"no call record for {call_id}")


def test_ip_trunk_ring_all_answered_by_second_phone(world, tmp_path):
    world.route("ringall")
    pid = world.ip_call()
    started = world.engine.expect(kind="CallStarted")
    assert started["direction"] == "inbound" and started["trunk"] == "ipprov"
    assert started["dialled"] == routes.SALES_NUMBER and started["caller"] == "+380501234567"
    rings = {ext: p.expect(ev="incoming") for ext, p in world.phones.items()}
    for ext, inc in rings.items():
        assert "+380501234567" in inc["remote"] and "Customer" in inc["remote"]
    world.provider.expect(ev="state", id=pid, state="early", code=180)

    world.phones["102"].send(cmd="answer", id=rings["102"]["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    for ext in ("101", "103"):
        world.phones[ext].expect(ev="cancel", reason=COMPLETED_ELSEWHERE)
        world.phones[ext].expect(ev="state", id=rings[ext]["id"], state="disconnected")
    answered = world.engine.expect(kind="CallAnswered")
    assert answered["by"] == "102"
    world.engine.expect(kind="CallBridged")

    # Audio both ways: each end plays its own tone and records the other.
    p_wav, d_wav = harness.exchange_tones(world.provider, pid, world.phones["102"], rings["102"]["id"], tmp_path)
    assert harness.goertzel(p_wav, 1400) > 0.5, "the caller does not hear the desk phone"
    assert harness.goertzel(p_wav, 600) < 0.1
    assert harness.goertzel(d_wav, 600) > 0.5, "the desk phone does not hear the caller"
    assert harness.goertzel(d_wav, 1400) < 0.1

    world.provider.send(cmd="hangup", id=pid)
    world.phones["102"].expect(ev="state", id=rings["102"]["id"], state="disconnected")
    ended = world.engine.expect(kind="CallEnded")
    assert ended["outcome"] == "answered" and ended["answered_by"] == "102"
    assert not world.engine.all(kind="CallMissed")

    row = wait_call(world, started["call_id"])
    assert row["outcome"] == "answered" and row["answered_by"] == "102"
    assert row["direction"] == "inbound" and row["trunk"] == "ipprov"
    assert row["talk_s"] > 1.0 and row["wait_s"] >= 0
    end = row["path"][-1]
    assert end["kind"] == "end" and end["rung"] == ["101", "102", "103"]
    kinds = [p["kind"] for p in row["path"]]
    assert "step" in kinds and "answered" in kinds
    with world.store() as st:
        assert not [m for m in st.open_missed() if m["call_id"] == started["call_id"]]
        kinds = [e["kind"] for e in st.events(200) if e["call_id"] == started["call_id"]]
    assert {"CallStarted", "LegRinging", "CallAnswered", "CallEnded"} <= set(kinds)


def test_nobody_answers_is_a_missed_call(world):
    world.route("ringall_short")
    pid = world.ip_call(caller="+380509998877")
    started = world.engine.expect(kind="CallStarted")
    for p in world.phones.values():
        p.expect(ev="incoming")
    # Ring time is 3 s; the group's exit is hangup.
    for p in world.phones.values():
        p.expect(ev="cancel", timeout=6)
    world.provider.expect(ev="state", id=pid, state="disconnected", timeout=6)
    ended = world.engine.expect(kind="CallEnded")
    assert ended["outcome"] == "missed"
    world.engine.expect(kind="CallMissed")
    row = wait_call(world, started["call_id"])
    assert row["outcome"] == "missed" and not row["answered_by"]
    with world.store() as st:
        missed = [m for m in st.open_missed() if m["call_id"] == started["call_id"]]
    assert missed and missed[0]["caller"] == "+380509998877"


def test_registered_trunk_registers_and_takes_calls(world):
    world.route("ringall")
    deadline = time.monotonic() + 5
    while world.registrar.contact is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert world.registrar.contact, "the trunk did not register"
    assert world.registrar.authorised >= 1 and world.registrar.registers >= 2  # challenged first
    # The provider sends the call to the contact the PBX registered.
    user = world.registrar.contact.split("sip:", 1)[1].split("@", 1)[0]
    assert user == "pbxuser"
    world.provider.send(cmd="call", uri=world.registrar.contact,
                        **{"from": f"<sip:+380671230000@127.0.0.1:{world.provider_port}>"})
    # Registered trunks often send the DID in To; here the Request-URI has the username.
    pid = world.provider.expect(ev="calling")["id"]
    started = world.engine.expect(kind="CallStarted")
    assert started["trunk"] == "regprov" and started["caller"] == "+380671230000"
    rings = {ext: p.expect(ev="incoming") for ext, p in world.phones.items()}
    world.phones["103"].send(cmd="answer", id=rings["103"]["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["answered_by"] == "103"


def test_unknown_source_is_refused(world):
    # Loopback has one address, so the stranger here is a call to the phones'
    # port without the edge's X-PBX-Extension: it may not reach anything, least
    # of all a trunk (the dialled number is a mobile).
    world.mobile.send(cmd="call", uri=f"sip:{routes.MOBILE}@127.0.0.1:{world.sip_port}")
    mid = world.mobile.expect(ev="calling")["id"]
    st = world.mobile.expect(ev="state", id=mid, state="disconnected")
    assert st["code"] == 403
    refused = world.engine.expect(kind="CallRefused")
    assert refused["reason"] == "unknown source"
    # ... and the provider's own address, sent to the trunk port, is welcome.
    pid = world.ip_call()
    world.engine.expect(kind="CallStarted")
    world.provider.expect(ev="state", id=pid, state="early")
