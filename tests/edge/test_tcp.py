"""TCP limits on real sockets: half messages time out, idle strangers are closed, one address holds few connections."""

import os
import socket
import time

import pytest

from appliance.edge import GuardPolicy
from tests.edge.conftest import RunningEdge, until
from tests.peers.sipclient import SipClient

HALF = b"REGISTER sip:pbx SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKhalf\r\nMax-Forwards: 70\r\n"


@pytest.fixture
def edge_with(data_dir, engine):
    started = []

    def start(**policy):
        r = RunningEdge(data_dir, engine.addr, policy=GuardPolicy(**policy))
        r.start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.close()


def connect(port, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_by_peer(s, timeout):
    """True when the other end closed the connection within `timeout`."""
    s.settimeout(timeout)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    except (socket.timeout, TimeoutError):
        return False


def options(client):
    client.send_raw(client.request("OPTIONS", "sip:127.0.0.1", to="<sip:127.0.0.1>"))
    return client.recv(timeout=1.0)


def status_line(sock):
    """OPTIONS over a connected socket (any source address); the answer's status line."""
    host, port = sock.getsockname()
    sock.sendall((
        f"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {host}:{port};branch=z9hG4bKo{port};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:201@pbx>;tag=o{port}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: o{port}@test\r\n"
        "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode())
    sock.settimeout(1.0)
    return sock.recv(4096).split(b"\r\n", 1)[0]


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_300_half_messages_are_closed_after_the_message_timeout(edge_with):
    timeout = 2.0
    r = edge_with(tcp_message_timeout=timeout)
    before = open_fds()
    socks = []
    for i in range(300):
        s = connect(r.edge.port, host=f"127.0.0.{20 + i // 60}")  # 60 an address, under the bound of 64
        s.sendall(HALF)
        socks.append((s, time.monotonic()))
    # Not before its time: the last one stays open while its timeout runs
    # (opening 300 connections may itself take longer than that on a busy machine).
    last, sent = socks[-1]
    if time.monotonic() - sent < timeout / 2:
        assert not closed_by_peer(last, timeout / 4), "closed before the message timeout"
    # ... and every one is closed by the edge, none left behind.
    assert all(closed_by_peer(s, 15.0) for s, _ in socks)
    assert until(lambda: not r.edge.connections and not r.edge.per_source)
    assert open_fds() - before == 300  # only the test's own ends are left
    for s, _ in socks:
        s.close()
    # The edge still serves TCP.
    assert options(SipClient(r.edge.port, transport="tcp")).status == 200


def test_a_message_sent_slowly_but_within_the_timeout_is_answered(edge_with):
    r = edge_with(tcp_message_timeout=3.0)
    client = SipClient(r.edge.port, transport="tcp")
    request = client.request("OPTIONS", "sip:127.0.0.1", to="<sip:127.0.0.1>")
    for _ in range(3):  # three whole messages, each in two halves 1 s apart: 3 s in all, each within its time
        client.send_raw(request[:40])
        time.sleep(1.0)
        client.send_raw(request[40:])
        assert client.recv().status == 200


def test_idle_connections_without_a_binding_are_closed_and_a_phones_stays(edge_with, engine):
    r = edge_with(tcp_idle_timeout=2.0)
    stranger = connect(r.edge.port)
    phone = SipClient(r.edge.port, transport="tcp")
    assert phone.register().status == 200
    assert closed_by_peer(stranger, 8.0)
    time.sleep(2.5)  # the phone's connection has been silent past the idle timeout too
    assert len(r.edge.connections) == 1
    invite = (
        f"INVITE {phone.contact()[1:-1]} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{engine.addr[1]};branch=z9hG4bKidle;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:202@pbx>;tag=e1\r\nTo: <sip:201@pbx>\r\nCall-ID: idlecall\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    engine.send(invite, r.edge.port)
    got = phone.recv()
    assert got is not None and got.method == "INVITE"
    # Once unregistered, its silence closes it too.
    assert phone.register(expires=0).status == 200
    assert closed_by_peer(phone.sock, 8.0)


def test_connections_beyond_the_bound_of_one_address_are_closed_at_once(edge_with):
    r = edge_with(tcp_per_source=5)
    kept = [SipClient(r.edge.port, transport="tcp") for _ in range(5)]
    assert all(options(c).status == 200 for c in kept)
    extra = connect(r.edge.port)
    assert closed_by_peer(extra, 1.0)
    assert r.edge.per_source == {"127.0.0.1": 5}
    # Another address is not affected, and a closed connection makes room again.
    assert status_line(connect(r.edge.port, host="127.0.0.40")) == b"SIP/2.0 200 OK"
    kept[0].close()
    assert until(lambda: r.edge.per_source.get("127.0.0.1") == 4)
    assert options(SipClient(r.edge.port, transport="tcp")).status == 200
    assert all(options(c).status == 200 for c in kept[1:])
