"""Phones outside the office through `pbx run`: pjsua2 desk phones on SIP over TLS with SRTP.

Extension 101 (secure: TLS only) and 103 register over TLS, 102 over UDP.
The TLS phones' legs carry SRTP (their SDP: RTP/SAVP with a=crypto), the UDP
phone's leg plain RTP, and both ends of each call hear each other's tone.
"""

from __future__ import annotations

import sys

import pytest

from appliance.configfile import import_config
from appliance.store import Store
from tests.conftest import free_port
from tests.engine import harness
from tests.system.running import Running
from tests.system.test_office import wait_for_bindings

PASSWORDS = {"101": "remote-101-pass", "102": "office-102-pass", "103": "remote-103-pass"}
OVER_TLS = {"101", "103"}


def config() -> str:
    lines = ["version: 1", "timezone: Europe/Kyiv", "extensions:"]
    for n, p in PASSWORDS.items():
        lines += [f"  - number: {n}", f"    name: Desk {n}", f"    password: {p}"]
        if n == "101":
            lines.append("    secure: true")
    return "\n".join(lines + ["routing:", "  unmatched: hangup", ""])


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    data = tmp_path_factory.mktemp("remote") / "data"
    with Store(data) as store:
        import_config(store, config())
    app = Running(data, tls=True, web=False)
    procs = []
    try:
        phones = {}
        for ext, pw in PASSWORDS.items():
            port = app.tls if ext in OVER_TLS else app.sip
            args = [sys.executable, str(harness.AGENT), "--port", str(free_port()), "--name", ext,
                    "--register", f"127.0.0.1:{port}", "--password", pw] + (["--tls"] if ext in OVER_TLS else [])
            phones[ext] = harness.Proc(args, ext)
            procs.append(phones[ext])
        for phone in phones.values():
            phone.expect(timeout=15, ev="reg", code=200)
        wait_for_bindings(data, set(PASSWORDS))
        yield app, data, phones
    finally:
        for p in procs:
            p.stop()
        app.stop()


def test_the_banner_names_the_tls_port_and_bindings_record_tls(office):
    app, data, phones = office
    assert any(f"127.0.0.1:{app.tls} (TLS)" in line for line in app.banner)
    with Store(data) as store:
        assert {b["extension"]: b["transport"] for b in store.bindings()} == {"101": "tls", "102": "udp", "103": "tls"}
        shown = store.get_setting("sip_tls")
    assert shown["port"] == app.tls and len(shown["fingerprint"].split(":")) == 32


def call(app, phones, caller: str, callee: str, tmp_path):
    """`caller` calls `callee`, who answers; tones both ways; (what the caller heard, what the callee heard)."""
    a, b = phones[caller], phones[callee]
    for p in phones.values():
        p.clear()
    port = app.tls if caller in OVER_TLS else app.sip
    a.send(cmd="call", uri=f"sip:{callee}@127.0.0.1:{port}")
    cid = a.expect(ev="calling")["id"]
    inc = b.expect(timeout=10, ev="incoming")
    b.send(cmd="answer", id=inc["id"])
    a.expect(timeout=10, ev="state", id=cid, state="confirmed")
    b.expect(timeout=10, ev="state", id=inc["id"], state="confirmed")
    heard_a, heard_b = harness.exchange_tones(a, cid, b, inc["id"], tmp_path)
    a.send(cmd="hangup", id=cid)
    b.expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
    return harness.finished_recording(heard_a), harness.finished_recording(heard_b)


def sdps(phone) -> list[dict]:
    return phone.all(ev="sdp")


def test_a_tls_phone_calls_a_udp_phone_srtp_on_the_tls_leg_only(office, tmp_path):
    app, data, phones = office
    heard_101, heard_102 = call(app, phones, "101", "102", tmp_path)
    for sdp in sdps(phones["101"]):
        assert "RTP/SAVP" in sdp["m"] and sdp["crypto"], sdp
    assert {s["dir"] for s in sdps(phones["101"])} == {"tx", "rx"}
    for sdp in sdps(phones["102"]):
        assert "RTP/AVP " in sdp["m"] and not sdp["crypto"], sdp
    assert sdps(phones["102"])
    assert harness.goertzel(heard_101, 1400) > 0.3 > harness.goertzel(heard_101, 600)
    assert harness.goertzel(heard_102, 600) > 0.3 > harness.goertzel(heard_102, 1400)


def test_a_tls_phone_calls_another_tls_phone_srtp_on_both_legs(office, tmp_path):
    app, data, phones = office
    heard_101, heard_103 = call(app, phones, "101", "103", tmp_path)
    for ext in ("101", "103"):
        got = sdps(phones[ext])
        assert {s["dir"] for s in got} == {"tx", "rx"}
        for sdp in got:
            assert "RTP/SAVP" in sdp["m"] and sdp["crypto"], (ext, sdp)
    assert harness.goertzel(heard_101, 1400) > 0.3 > harness.goertzel(heard_101, 600)
    assert harness.goertzel(heard_103, 600) > 0.3 > harness.goertzel(heard_103, 1400)


def test_a_udp_phone_calls_a_tls_phone(office, tmp_path):
    app, data, phones = office
    heard_102, heard_103 = call(app, phones, "102", "103", tmp_path)
    assert all("RTP/SAVP" in s["m"] and s["crypto"] for s in sdps(phones["103"]))
    assert all(not s["crypto"] for s in sdps(phones["102"]))
    assert harness.goertzel(heard_102, 1400) > 0.3
    assert harness.goertzel(heard_103, 600) > 0.3


def test_the_secure_extension_cannot_register_over_udp(office):
    app, data, phones = office
    intruder = harness.Proc([sys.executable, str(harness.AGENT), "--port", str(free_port()), "--name", "101",
                             "--register", f"127.0.0.1:{app.sip}", "--password", PASSWORDS["101"]], "101-udp")
    try:
        assert intruder.expect(timeout=15, ev="reg")["code"] == 403
    finally:
        intruder.stop()
