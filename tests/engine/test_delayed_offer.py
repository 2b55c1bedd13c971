"""INVITEs without SDP (delayed offer, RFC 3261 13.2.1) on every way into the engine.

A bodyless INVITE that the engine refused used to abort the whole process
(pjsua2 freed the INVITE's cloned rdata twice, see B2BUA.incoming).  Each test
here sends one on a path that ends in a refusal and then checks that the
engine still answers; the last ones carry delayed-offer calls to the end.
"""

from __future__ import annotations

import time

import pytest

from appliance.sip import Response
from tests.engine import harness, routes
from tests.peers.sipclient import SipClient

pytestmark = pytest.mark.sip


def alive(world) -> None:
    """The engine process runs and its SIP stack answers OPTIONS."""
    assert world.engine.p.poll() is None, "the engine process died"
    c = SipClient(world.sip_port)
    try:
        c.send_raw(c.request("OPTIONS", f"sip:127.0.0.1:{world.sip_port}"))
        res = c.recv(3)
        assert isinstance(res, Response) and res.status == 200, res
    finally:
        c.close()


def bodyless_invite(port: int, number: str, *, host: str = "127.0.0.1", headers=()) -> list[int]:
    """Send an INVITE with Content-Length: 0 to `port`; the statuses that came back, ACKing a final one."""
    c = SipClient(port, host=host, user="+380501112233")
    try:
        uri = f"sip:{number}@127.0.0.1:{port}"
        headers = [("Contact", c.contact()), *headers]
        branch = "z9hG4bKdelayed" + str(time.monotonic_ns())
        c.send_raw(c.request("INVITE", uri, to=f"<{uri}>", headers=headers, branch=branch, cseq=1))
        codes: list[int] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            res = c.recv(1)
            if not isinstance(res, Response):
                continue
            codes.append(res.status)
            if res.status >= 200:
                to = res.headers.get("to")
                if res.status < 300:  # an answer: ACK it with an answer and end the call
                    c.send_raw(c.request("ACK", uri, to=to, cseq=1))
                    c.send_raw(c.request("BYE", uri, to=to, cseq=2))
                else:
                    c.send_raw(c.request("ACK", uri, to=to, cseq=1, branch=branch))
                break
        return codes
    finally:
        c.close()


def test_bodyless_invite_from_a_stranger_to_the_trunk_port(world):
    # 127.0.0.2 is no trunk's address: refused, and the engine lives on.
    codes = bodyless_invite(world.trunk_port, routes.SALES_NUMBER, host="127.0.0.2")
    assert codes[-1] == 403, codes
    alive(world)


def test_bodyless_invite_to_the_phones_port_without_the_edge(world):
    # An extension header with no (or a wrong) link secret: refused as forged.
    for headers in ([("X-PBX-Extension", "101")],
                    [("X-PBX-Extension", "101"), ("X-PBX-Link", "guessed")],
                    []):
        codes = bodyless_invite(world.sip_port, routes.MOBILE, headers=headers)
        assert codes[-1] == 403, (headers, codes)
        alive(world)
    assert world.engine.expect(kind="CallRefused")["reason"] == "extension header not from the edge"


@pytest.mark.parametrize("ext, number, code", [
    ("102", "00441234567890", 403),     # 102 may not call abroad (dial rules)
    ("101", "55", 484),                 # no such extension, too short for an outside number
    ("101", "**103", 404),              # pickup with nothing ringing at 103
    ("101", "*99", 404),                # no such feature code
    ("101", "12a", 484),                # not a number
    ("101", "101", 486),                # one's own extension
])
def test_bodyless_invite_from_a_phone_on_every_refusal_path(world, ext, number, code):
    link = [(k, v) for k, v in harness.edge_headers(ext).items()]
    codes = bodyless_invite(world.sip_port, number, headers=link)
    assert codes[-1] == code, codes
    alive(world)


def test_bodyless_invite_to_an_extension_that_is_not_registered(world):
    with world.store() as st:
        st.add_extension("108", "Away", "pw108")  # no binding: nowhere to ring
    world.engine.send(cmd="reload")
    world.engine.expect(kind="done", cmd="reload")
    link = list(harness.edge_headers("101").items())
    codes = bodyless_invite(world.sip_port, "108", headers=link)
    assert codes[-1] >= 400, codes
    alive(world)


def test_delayed_offer_customer_call_is_answered_and_bridged_both_ways(world, tmp_path):
    world.route("ringall")
    world.provider.send(cmd="call", uri=f"sip:{routes.SALES_NUMBER}@127.0.0.1:{world.trunk_port}", delayed=True,
                        **{"from": f"<sip:+380501234567@127.0.0.1:{world.provider_port}>"})
    pid = world.provider.expect(ev="calling")["id"]
    world.engine.expect(kind="CallStarted")
    rings = {ext: p.expect(ev="incoming") for ext, p in world.phones.items()}
    world.phones["101"].send(cmd="answer", id=rings["101"]["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    world.engine.expect(kind="CallBridged")

    p_wav, d_wav = harness.exchange_tones(world.provider, pid, world.phones["101"], rings["101"]["id"], tmp_path)
    assert harness.goertzel(p_wav, 1400) > 0.5, "the caller does not hear the desk phone"
    assert harness.goertzel(d_wav, 600) > 0.5, "the desk phone does not hear the caller"
    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["answered_by"] == "101"
    alive(world)


def test_delayed_offer_from_a_phone_refused_then_a_call_that_connects(world):
    # The pjsua2 desk phone itself sends the delayed offer: first refused
    # (102 may not call abroad), then an extension call answered.
    p = world.phones["102"]
    p.send(cmd="call", uri=f"sip:00441234567890@127.0.0.1:{world.sip_port}", delayed=True,
           headers=harness.edge_headers("102"))
    cid = p.expect(ev="calling")["id"]
    assert p.expect(ev="state", id=cid, state="disconnected")["code"] == 403
    alive(world)
    p.send(cmd="call", uri=f"sip:103@127.0.0.1:{world.sip_port}", delayed=True, headers=harness.edge_headers("102"))
    cid = p.expect(ev="calling")["id"]
    inc = world.phones["103"].expect(ev="incoming")
    world.phones["103"].send(cmd="answer", id=inc["id"])
    p.expect(ev="state", id=cid, state="confirmed")
    world.engine.expect(kind="CallBridged")
    p.send(cmd="hangup", id=cid)
    world.phones["103"].expect(ev="state", id=inc["id"], state="disconnected")
    alive(world)


def test_an_invite_with_bytes_that_are_not_utf8_is_routed_and_recorded(world):
    # A Latin-1 display name and Call-ID: the call rings the group, is
    # recorded, and ends when the caller cancels; nothing is lost or stuck.
    world.route("ringall")
    c = SipClient(world.trunk_port, user="+380501112244")
    try:
        uri = f"sip:{routes.SALES_NUMBER}@127.0.0.1:{world.trunk_port}"
        host, port = c.addr
        head = (f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{port};branch=z9hG4bKlatin1;rport\r\n"
                f"Max-Forwards: 70\r\nFrom: \"Caf\xe9\" <sip:+380501112244@{host}>;tag=l1\r\nTo: <{uri}>\r\n"
                f"Call-ID: caf\xe9-1@{host}\r\nCSeq: 1 INVITE\r\nContact: <sip:+380501112244@{host}:{port}>\r\n"
                "Content-Length: 0\r\n\r\n").encode("latin-1")
        c.send_raw(head)
        started = world.engine.expect(kind="CallStarted")
        assert started["caller"] == "+380501112244"
        for p in world.phones.values():
            assert "Caf\ufffd" in p.expect(ev="incoming")["remote"]
        c.send_raw(head.replace(b"INVITE " + uri.encode(), b"CANCEL " + uri.encode()).replace(b"1 INVITE", b"1 CANCEL"))
        ended = world.engine.expect(kind="CallEnded")
        assert ended["call_id"] == started["call_id"]
    finally:
        c.close()
    deadline = time.monotonic() + 5
    while True:
        world.flush()
        with world.store() as st:
            row = next((r for r in st.recent_calls(20) if r["id"] == started["call_id"]), None)
        if row and row["outcome"] != "in progress":
            break
        assert time.monotonic() < deadline, row
        time.sleep(0.1)
    assert row["caller"] == "+380501112244"
    alive(world)
