"""pjsua2 user agents against the edge on loopback: phones, and a pjsua2 UA standing in for the engine."""

import pytest

from tests.edge.conftest import RunningEdge
from tests.peers.phone import Phone
from tests.peers.sipclient import SipClient

pytestmark = pytest.mark.sip


@pytest.fixture
def phones():
    started: list[Phone] = []

    def start(*args, **kwargs):
        p = Phone(*args, **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_reregister_unregister(running, phones, transport):
    phone = phones(transport)
    registrar = f"sip:127.0.0.1:{running.edge.port}" + (";transport=tcp" if transport == "tcp" else "")
    phone.account("a", "201", "secret", registrar, expires=120)
    first = phone.reg("a")
    assert (first["code"], first["active"]) == (200, True)
    [binding] = running.edge.bindings("201")
    assert binding.flow.transport == transport
    if transport == "udp":
        assert binding.flow.port == phone.port
    else:  # the connection's own port, which is where requests for the phone must go
        assert binding.flow.port != phone.port and f":{binding.flow.port};" in binding.contact
    first_cseq = binding.cseq
    phone.send(cmd="register", name="a")
    assert phone.reg("a")["code"] == 200
    [again] = running.edge.bindings("201")
    assert again.cseq > first_cseq and again.call_id == binding.call_id
    phone.send(cmd="unregister", name="a")
    gone = phone.reg("a")
    assert (gone["code"], gone["active"]) == (200, False)
    assert running.edge.bindings("201") == []


def test_two_devices_share_an_extension_and_both_ring(data_dir, phones):
    engine = phones("udp", answer=180)
    r = RunningEdge(data_dir, ("127.0.0.1", engine.port))
    r.start()
    try:
        desk, mobile = phones("udp", answer=200), phones("tcp", answer=200)
        route = f"<sip:127.0.0.1:{r.edge.port};lr>"
        desk.account("a", "201", "secret", f"sip:127.0.0.1:{r.edge.port}")
        mobile.account("a", "201", "secret", f"sip:127.0.0.1:{r.edge.port};transport=tcp")
        assert desk.reg("a")["code"] == 200 and mobile.reg("a")["code"] == 200
        contacts = r.edge.contacts("201")
        assert len(contacts) == 2
        # The engine rings each binding: Request-URI = the contact, Route = the edge.
        engine.account("e", "engine", "x", None, proxy=route)
        for contact in contacts:
            device = desk if f"127.0.0.1:{desk.port}" in contact else mobile
            engine.send(cmd="call", name="e", uri=contact)
            incoming = device.wait(lambda e: e["event"] == "incoming", 10)
            assert "record-route" in incoming["headers"]
            confirmed = engine.wait(lambda e: e["event"] == "call" and e["state"] == "CONFIRMED", 10)
            engine.send(cmd="hangup", call=confirmed["call"])
            assert device.wait(lambda e: e["event"] == "call" and e["state"] == "DISCONNECTED", 10)
    finally:
        r.close()


def test_phone_calls_the_engine_with_its_extension(data_dir, phones):
    engine = phones("udp", answer=200)
    r = RunningEdge(data_dir, ("127.0.0.1", engine.port))
    r.start()
    try:
        phone = phones("udp")
        phone.account("a", "202", "hunter22", f"sip:127.0.0.1:{r.edge.port}", proxy=f"<sip:127.0.0.1:{r.edge.port};lr>")
        assert phone.reg("a")["code"] == 200
        engine.account("e", "engine", "x", None)
        phone.send(cmd="call", name="a", uri="sip:0441234567@pbx")
        incoming = engine.wait(lambda e: e["event"] == "incoming", 10)
        assert incoming["headers"]["x-pbx-extension"] == "202"
        confirmed = phone.wait(lambda e: e["event"] == "call" and e["state"] == "CONFIRMED", 10)
        # The phone hangs up: its BYE follows the record-route, unchallenged, to the engine.
        phone.send(cmd="hangup", call=confirmed["call"])
        assert engine.wait(lambda e: e["event"] == "call" and e["state"] == "DISCONNECTED", 10)
    finally:
        r.close()


def test_wrong_passwords_silence_the_source_and_a_phone_elsewhere_keeps_working(running, phones):
    attacker = phones("udp", bind="127.0.0.2")
    attacker.account("a", "201", "not-the-password", f"sip:127.0.0.1:{running.edge.port}")
    codes = [attacker.reg("a")["code"]]
    for _ in range(4):
        attacker.send(cmd="register", name="a")
        codes.append(attacker.reg("a")["code"])
    assert codes == [403] * 5
    probe = SipClient(running.edge.port, host="127.0.0.2")
    probe.send_raw(probe.request("OPTIONS", "sip:127.0.0.1", to="<sip:127.0.0.1>"))
    assert probe.recv(timeout=0.5) is None
    good = phones("udp")
    good.account("a", "201", "secret", f"sip:127.0.0.1:{running.edge.port}")
    assert good.reg("a")["code"] == 200
