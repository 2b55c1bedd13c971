from appliance.sip import parse_name_addr
from tests.peers.sipclient import SipClient

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def invite_through(phone, engine, extra=()):
    """Send an INVITE for 202, answer the 407, return what the engine received."""
    headers = [("Contact", phone.contact()), ("Content-Type", "application/sdp"), *extra]
    phone.send_raw(phone.request("INVITE", "sip:202@pbx", to="<sip:202@pbx>", headers=headers, body=SDP))
    res = phone.recv()
    assert res.status == 407
    ack = phone.request("ACK", "sip:202@pbx", to=res.headers.get("to"), cseq=phone.cseq)
    phone.send_raw(ack)
    auth = phone.authorization(res.headers.get("proxy-authenticate"), "INVITE", "sip:202@pbx")
    phone.send_raw(phone.request("INVITE", "sip:202@pbx", to="<sip:202@pbx>", headers=[*headers, ("Proxy-Authorization", auth)], body=SDP))
    return engine.recv()


def response_from(req, status, reason, *, tag="eng1", extra=()):
    lines = [f"SIP/2.0 {status} {reason}"]
    for name, value in req.headers.fields:
        low = name.lower()
        if low in ("via", "v", "from", "call-id", "cseq", "record-route"):
            lines.append(f"{name}: {value}")
        elif low in ("to", "t"):
            lines.append(f"{name}: {value};tag={tag}" if ";tag=" not in value else f"{name}: {value}")
    lines += [f"{n}: {v}" for n, v in extra]
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_phone_invite_is_challenged_then_relayed_with_the_extension(running, engine):
    phone = SipClient(running.edge.port)
    got, addr = invite_through(phone, engine, extra=[("X-PBX-Extension", "999"), ("X-PBX-Admin", "yes")])
    assert got.method == "INVITE" and got.body == SDP
    assert got.headers.get_all("x-pbx-extension") == ["201"]
    assert got.headers.get("x-pbx-admin") is None and got.headers.get("proxy-authorization") is None
    assert got.headers.get("max-forwards") == "69"
    vias = got.vias
    assert vias[0].host == "127.0.0.1" and vias[0].port == running.edge.port and vias[0].branch.startswith("z9hG4bK")
    assert vias[1].param("received") == "127.0.0.1" and vias[1].param("rport") == str(phone.addr[1])
    rr = got.headers.values("record-route")
    assert len(rr) == 2 and all(";lr" in r and "pbxf=201~udp~127.0.0.1~" in r for r in rr)
    assert addr == ("127.0.0.1", running.edge.port)


def test_unauthenticated_requests_never_reach_the_engine(running, engine):
    stranger = SipClient(running.edge.port, user="299", host="127.0.0.5")
    stranger.send_raw(stranger.request("INVITE", "sip:0800123456@pbx", to="<sip:0800123456@pbx>", headers=[("Contact", stranger.contact())]))
    assert stranger.recv().status == 407
    stranger.send_raw(stranger.request("MESSAGE", "sip:202@pbx", to="<sip:202@pbx>", body=b"hi"))
    assert stranger.recv().status == 407
    # A forged in-dialog request with a made-up token, and a CANCEL for nothing.
    forged = stranger.request("BYE", "sip:202@pbx", to="<sip:202@pbx>;tag=x", headers=[("Route", f"<sip:127.0.0.1:{running.edge.port};lr;pbxf=202~udp~127.0.0.5~5060~0000000000000000>")])
    stranger.send_raw(forged)
    assert stranger.recv().status == 407
    stranger.send_raw(stranger.request("CANCEL", "sip:202@pbx", to="<sip:202@pbx>"))
    assert stranger.recv().status == 481
    assert engine.recv(timeout=0.3) == (None, None)


def test_dialog_from_a_phone_responses_and_in_dialog_requests(running, engine):
    phone = SipClient(running.edge.port)
    invite, _ = invite_through(phone, engine)
    engine.send(response_from(invite, 180, "Ringing"), running.edge.port)
    ringing = phone.recv()
    assert ringing.status == 180 and len(ringing.vias) == 1 and ringing.vias[0].host == "127.0.0.1"
    engine.send(response_from(invite, 200, "OK", extra=[("Contact", f"<sip:engine@127.0.0.1:{engine.addr[1]}>")]), running.edge.port)
    ok = phone.recv()
    assert ok.status == 200
    # The phone's route set is the Record-Route reversed; its ACK and BYE go through it unchallenged.
    routes = list(reversed(ok.headers.values("record-route")))
    to = ok.headers.get("to")
    for method in ("ACK", "BYE"):
        cseq = phone.cseq if method == "ACK" else None
        phone.send_raw(phone.request(method, f"sip:engine@127.0.0.1:{engine.addr[1]}", to=to, cseq=cseq, headers=[("Route", r) for r in routes]))
        got, _ = engine.recv()
        assert got.method == method and got.headers.get("x-pbx-extension") == "201"
        assert got.headers.get("route") is None
    # The engine's BYE in the other direction follows its route set (Record-Route in order).
    bye = (
        f"BYE sip:201@127.0.0.1:{phone.addr[1]} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{engine.addr[1]};branch=z9hG4bKeb1;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {to}\r\nTo: {invite.headers.get('from')}\r\nCall-ID: {invite.call_id}\r\nCSeq: 9 BYE\r\n"
        + "".join(f"Route: {r}\r\n" for r in invite.headers.values("record-route"))
        + "Content-Length: 0\r\n\r\n"
    ).encode()
    engine.send(bye, running.edge.port)
    got = phone.recv()
    assert got.method == "BYE" and got.headers.get("route") is None
    phone.send_raw(response_from(got, 200, "OK", tag=phone.tag))
    res, _ = engine.recv()
    assert res.status == 200 and len(res.vias) == 1


def test_cancel_follows_the_invite(running, engine):
    phone = SipClient(running.edge.port)
    invite, _ = invite_through(phone, engine)
    branch = invite.vias[1].branch
    phone.send_raw(phone.request("CANCEL", "sip:202@pbx", to="<sip:202@pbx>", cseq=phone.cseq, branch=branch))
    got, _ = engine.recv()
    assert got.method == "CANCEL" and got.vias[0].branch == invite.vias[0].branch


def test_engine_reaches_a_phone_at_its_registered_source(running, engine):
    phone = SipClient(running.edge.port)
    # The phone claims a private address in Contact; the edge sends to where it registered from.
    assert phone.register(contact="<sip:201@10.9.8.7:5060>").status == 200
    invite = (
        f"INVITE sip:201@10.9.8.7:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{engine.addr[1]};branch=z9hG4bKei1;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:202@pbx>;tag=e1\r\nTo: <sip:201@pbx>\r\nCall-ID: ecall1\r\nCSeq: 1 INVITE\r\n"
        f"X-PBX-Secret: internal\r\nRoute: <sip:127.0.0.1:{running.edge.port};lr>\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    engine.send(invite, running.edge.port)
    got = phone.recv()
    assert got.method == "INVITE" and got.uri == "sip:201@10.9.8.7:5060"
    assert got.headers.get("route") is None and got.headers.get("x-pbx-secret") is None
    rr = got.headers.values("record-route")
    assert len(rr) == 2 and parse_name_addr(rr[0]).uri.params[-1][1].startswith("201~udp~127.0.0.1~")
    phone.send_raw(response_from(got, 486, "Busy Here", tag=phone.tag))
    res, _ = engine.recv()
    assert res.status == 486 and res.vias[0].port == engine.addr[1]
    # A request for a contact nobody registered is answered by the edge.
    engine.send(invite.replace(b"10.9.8.7", b"10.9.8.8").replace(b"ecall1", b"ecall2"), running.edge.port)
    res, _ = engine.recv()
    assert res.status == 480


def test_max_forwards_and_loops(running, engine):
    phone = SipClient(running.edge.port)
    assert phone.register().status == 200
    base = (
        f"OPTIONS {phone.contact()[1:-1]} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{engine.addr[1]};branch=z9hG4bKmf;rport\r\n"
        f"Max-Forwards: 0\r\nFrom: <sip:202@pbx>;tag=e1\r\nTo: <sip:201@pbx>\r\nCall-ID: mf1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    engine.send(base, running.edge.port)
    assert engine.recv()[0].status == 483
    engine.send(base.replace(b"Max-Forwards: 0", b"Max-Forwards: 5"), running.edge.port)
    relayed = phone.recv()
    assert relayed.headers.get("max-forwards") == "4"
    # The same request coming back with our Via in it has looped.
    looped = relayed.to_bytes().replace(b"Via: ", b"Via: SIP/2.0/UDP 127.0.0.1:" + str(engine.addr[1]).encode() + b";branch=z9hG4bKback\r\nVia: ", 1)
    engine.send(looped, running.edge.port)
    assert engine.recv()[0].status == 482


def test_tcp_phone_gets_engine_requests_on_its_connection(running, engine):
    phone = SipClient(running.edge.port, transport="tcp")
    assert phone.register().status == 200
    invite = (
        f"INVITE {phone.contact()[1:-1]} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{engine.addr[1]};branch=z9hG4bKt1;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:202@pbx>;tag=e1\r\nTo: <sip:201@pbx>\r\nCall-ID: tcall\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    engine.send(invite, running.edge.port)
    got = phone.recv()
    assert got.method == "INVITE" and got.vias[0].transport == "TCP"
    assert ";transport=tcp" in got.headers.values("record-route")[0]
    phone.send_raw(response_from(got, 603, "Decline", tag=phone.tag))
    assert engine.recv()[0].status == 603
