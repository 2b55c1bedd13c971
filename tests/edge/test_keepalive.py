"""NAT keep-alives: OPTIONS pings to UDP bindings, their answers absorbed; a TCP phone that reconnects
from a new source port is called over its new connection."""

from appliance.edge import GuardPolicy
from appliance.edge.keepalive import KeepAlive
from appliance.edge.bindings import Flow
from tests.edge.conftest import RunningEdge, until
from tests.edge.test_tls import engine_invite
from tests.peers.sipclient import SipClient


def test_flows_are_pinged_once_an_interval_after_they_were_seen():
    k = KeepAlive(25.0)
    a, b = Flow("udp", "10.0.0.1", 5060), Flow("udp", "10.0.0.2", 5062)
    assert k.due({a: "sip:a"}, 0.0) == []
    assert k.due({a: "sip:a", b: "sip:b"}, 10.0) == []
    assert k.due({a: "sip:a", b: "sip:b"}, 25.0) == [(a, "sip:a")]
    assert k.due({a: "sip:a", b: "sip:b"}, 35.0) == [(b, "sip:b")]
    assert k.due({b: "sip:b"}, 50.0) == []  # a is gone: forgotten, never pinged
    assert a not in k.next_at
    assert KeepAlive(0).due({a: "sip:a"}, 100.0) == []


def test_udp_bindings_get_options_pings_and_their_answers_are_absorbed(data_dir, engine):
    r = RunningEdge(data_dir, engine.addr, policy=GuardPolicy(flood_requests=5), keepalive_interval=0.3)
    r.start()
    try:
        phone = SipClient(r.edge.port)
        assert phone.register(contact="<sip:201@192.168.1.20:5060>").status == 200
        for n in range(10):  # more answers than the flood limit would let pass if they were counted
            ping = phone.recv(timeout=3)
            assert ping.method == "OPTIONS" and ping.uri == "sip:201@192.168.1.20:5060"
            assert ping.vias[0].port == r.edge.port
            lines = ["SIP/2.0 200 OK"] + [f"{k}: {v}" for k, v in ping.headers.fields
                                            if k.lower() in ("via", "from", "to", "call-id", "cseq")]
            phone.send_raw(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
        assert until(lambda: r.edge.keepalive.answers == 10)
        assert not r.store.bans(0)
        assert phone.register(contact="<sip:201@192.168.1.20:5060>").status == 200  # not flood-banned
        phone.close()
    finally:
        r.close()


def test_a_tcp_phone_that_reconnects_from_a_new_port_is_called_over_the_new_connection(running, engine):
    contact = "sip:201@192.168.1.20:5060;transport=tcp"
    first = SipClient(running.edge.port, transport="tcp")
    assert first.register(contact=f"<{contact}>").status == 200
    first.close()  # the router dropped the connection
    second = SipClient(running.edge.port, transport="tcp")
    assert second.addr[1] != first.addr[1]
    assert second.register(contact=f"<{contact}>").status == 200
    assert until(lambda: [b["source_port"] for b in running.store.bindings("201")] == [second.addr[1]])
    engine.send(engine_invite(running.edge.port, engine.addr[1], contact), running.edge.port)
    got = second.recv()
    assert got.method == "INVITE" and got.uri == contact
    second.close()
