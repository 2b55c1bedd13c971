"""SIP over TLS at the edge: registration records the transport, the engine's requests go over the
phone's TLS connection, the engine is told the transport, CRLF pings are answered, and an extension
marked secure is refused over UDP and TCP."""

import socket
import ssl

import pytest

from appliance.edge import GuardPolicy
from appliance.edge import tls
from appliance.sip import parse_name_addr
from tests.edge.conftest import RunningEdge, until
from tests.edge.test_proxy import invite_through
from tests.peers.sipclient import SipClient


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return tls.certificate(tmp_path_factory.mktemp("tls"), ["127.0.0.1"])


@pytest.fixture
def edge(data_dir, engine, cert):
    r = RunningEdge(data_dir, engine.addr, policy=GuardPolicy(flood_requests=200), tls_port=0,
                    tls_context=tls.server_context(*cert))
    r.start()
    yield r
    r.close()


def tls_client(port, **kwargs) -> SipClient:
    """A SipClient whose stream is TLS (the certificate is self-signed: not checked, as a phone's first contact)."""
    c = SipClient(port, transport="tcp", **kwargs)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c.sock = ctx.wrap_socket(c.sock)
    c.transport = "tls"
    return c


def engine_invite(edge_port, engine_port, contact, call_id="tcall1"):
    return (
        f"INVITE {contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{engine_port};branch=z9hG4bK{call_id};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:202@pbx>;tag=e1\r\nTo: <sip:201@pbx>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Route: <sip:127.0.0.1:{edge_port};lr>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_the_fingerprint_is_the_sha256_of_the_certificate(cert):
    der = ssl.PEM_cert_to_DER_cert(cert[0].read_text())
    import hashlib

    assert tls.fingerprint(cert[0]).replace(":", "") == hashlib.sha256(der).hexdigest().upper()
    # Made once, then reused.
    assert tls.certificate(cert[0].parent.parent, ["127.0.0.1"]) == cert


def test_a_phone_registers_over_tls_and_is_called_over_its_connection(edge, engine):
    phone = tls_client(edge.edge.tls_port)
    contact = f"sip:201@{phone.addr[0]}:{phone.addr[1]};transport=tls"
    assert phone.register(contact=f"<{contact}>").status == 200
    assert until(lambda: [b["transport"] for b in edge.store.bindings("201")] == ["tls"])
    engine.send(engine_invite(edge.edge.port, engine.addr[1], contact), edge.edge.port)
    got = phone.recv()
    assert got.method == "INVITE"
    assert got.vias[0].transport == "TLS" and got.vias[0].port == edge.edge.tls_port
    outer = parse_name_addr(got.headers.values("record-route")[0]).uri
    assert outer.port == edge.edge.tls_port and ("transport", "tls") in outer.params
    phone.close()


def test_the_engine_is_told_the_phones_transport(edge, engine):
    phone = tls_client(edge.edge.tls_port)
    got, _ = invite_through(phone, engine)
    assert got.headers.get("x-pbx-transport") == "tls"
    udp = SipClient(edge.edge.port)
    got, _ = invite_through(udp, engine)
    assert got.headers.get("x-pbx-transport") == "udp"
    # A phone cannot claim TLS: X-PBX- headers from outside are removed.
    got, _ = invite_through(udp, engine, extra=[("X-PBX-Transport", "tls")])
    assert got.headers.values("x-pbx-transport") == ["udp"]
    phone.close()


def test_a_double_crlf_ping_over_tls_gets_one_crlf(edge):
    phone = tls_client(edge.edge.tls_port)
    phone.sock.sendall(b"\r\n\r\n")
    phone.sock.settimeout(2)
    assert phone.sock.recv(10) == b"\r\n"
    phone.close()


def test_a_double_crlf_ping_over_tcp_gets_one_crlf(edge):
    s = socket.create_connection(("127.0.0.1", edge.edge.port), timeout=2)
    s.sendall(b"\r\n\r\n")
    assert s.recv(10) == b"\r\n"
    s.close()


def test_a_secure_extension_registers_over_tls_only(edge):
    edge.store.db["extensions"].update("201", {"secure": 1})
    for client in (SipClient(edge.edge.port), SipClient(edge.edge.port, transport="tcp")):
        res = client.register()
        assert res.status == 403 and "TLS" in res.reason and str(edge.edge.tls_port) in res.reason
        client.close()
    assert not edge.store.bindings("201")
    phone = tls_client(edge.edge.tls_port)
    assert phone.register().status == 200
    phone.close()


def test_a_taken_tls_port_leaves_udp_and_tcp_serving(data_dir, engine, cert):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    r = RunningEdge(data_dir, engine.addr, tls_port=holder.getsockname()[1], tls_context=tls.server_context(*cert))
    try:
        r.start()
        assert r.edge.tls_port is None
        assert SipClient(r.edge.port).register().status == 200
    finally:
        r.close()
        holder.close()
