import socket

import pytest

from appliance.edge import GuardPolicy, SourceBanned
from appliance.edge.guard import Guard, is_scanner
from tests.edge.conftest import RunningEdge
from tests.peers.sipclient import SipClient
from tests.sip.malformed import CORPUS


def options(client):
    client.send_raw(client.request("OPTIONS", "sip:127.0.0.1", to="<sip:127.0.0.1>"))
    return client.recv(timeout=0.5)


def test_guard_counts_failures_in_a_window():
    guard = Guard(GuardPolicy(max_failures=3, failure_window=60, failure_ban=100))
    assert guard.auth_failed("a", 0) is None
    assert guard.auth_failed("a", 70) is None  # the first fell out of the window
    assert guard.auth_failed("a", 71) is None
    assert guard.auth_failed("a", 72) == (172, "auth failures")
    assert guard.banned("a", 171) and not guard.banned("a", 173)
    assert not guard.banned("b", 100)


def test_guard_flood_limit():
    guard = Guard(GuardPolicy(flood_requests=3, flood_window=2, flood_ban=50))
    assert [guard.request_seen("a", t) for t in (0, 0.5, 1.0)] == [None, None, None]
    assert guard.request_seen("a", 1.5) == (51.5, "flood")
    assert guard.request_seen("b", 1.5) is None


def test_scanner_user_agents():
    assert is_scanner("friendly-scanner") and is_scanner("SIPVicious 0.3") and is_scanner("sipcli/v1.8")
    assert not is_scanner("Yealink SIP-T46S 66.86.0.15") and not is_scanner(None)


def test_wrong_passwords_silence_the_source_but_not_a_phone_elsewhere(running):
    attacker = SipClient(running.edge.port, host="127.0.0.2")
    good = SipClient(running.edge.port)
    for _ in range(5):
        assert attacker.register(password="guess").status == 403
    assert attacker.register() is None  # even the right password: silence
    assert options(attacker) is None
    assert any(isinstance(e, SourceBanned) and e.address == "127.0.0.2" for e in running.events)
    assert good.register().status == 200
    assert options(good).status == 200


def test_unknown_users_count_as_failures_too(running):
    attacker = SipClient(running.edge.port, host="127.0.0.3", user="777")
    for _ in range(5):
        assert attacker.register().status == 403
    assert options(attacker) is None


def test_ban_survives_a_restart(running):
    attacker = SipClient(running.edge.port, host="127.0.0.2")
    for _ in range(5):
        attacker.register(password="guess")
    port = running.edge.port
    running.stop()
    running.start(port)
    assert options(attacker) is None
    assert options(SipClient(port)).status == 200


def test_flood_bans_a_source(data_dir, engine):
    r = RunningEdge(data_dir, engine.addr, policy=GuardPolicy(flood_requests=10, flood_window=2))
    r.start()
    try:
        flooder = SipClient(r.edge.port, host="127.0.0.4")
        answers = [options(flooder) for _ in range(12)]
        assert all(a is not None for a in answers[:10])
        assert answers[10] is None and answers[11] is None
        assert options(SipClient(r.edge.port)).status == 200
    finally:
        r.close()


def test_scanners_get_no_answer(running):
    scanner = SipClient(running.edge.port, user_agent="friendly-scanner")
    assert options(scanner) is None
    scanner.send_raw(scanner.request("REGISTER", "sip:pbx", headers=[("Contact", scanner.contact())]))
    assert scanner.recv(timeout=0.3) is None


@pytest.mark.parametrize("name,data,status", CORPUS, ids=[c[0] for c in CORPUS])
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_malformed_corpus_is_refused_and_the_edge_keeps_answering(running, name, data, status, transport):
    client = SipClient(running.edge.port, transport=transport)
    if transport == "tcp" and name == "content-length-too-large":
        status = None  # on a stream the edge waits for the rest of the body
    client.send_raw(data)
    answer = client.recv(timeout=0.3)
    if status is None:
        assert answer is None
    else:
        assert answer is not None and answer.status == status
    if transport == "tcp":
        client = SipClient(running.edge.port, transport=transport)  # a broken stream may be closed
    assert options(client).status == 200


def test_udp_noise_and_keepalives_are_ignored(running):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for junk in (b"\r\n\r\n", b"\x00\x00\x00\x00", b"", b"x" * 60000):
        s.sendto(junk, ("127.0.0.1", running.edge.port))
    s.close()
    assert options(SipClient(running.edge.port)).status == 200


def test_an_address_with_registered_phones_gets_the_flood_limit_once_per_phone():
    from appliance.edge.guard import Guard, GuardPolicy

    guard = Guard(GuardPolicy(flood_requests=30, flood_window=2.0), trusted=frozenset())
    # Three phones behind one address: 80 messages in a window is their normal traffic.
    assert all(guard.request_seen("198.51.100.7", 100.0 + i * 0.01, phones=3) is None for i in range(80))
    # A stranger at another address is banned past 30.
    results = [guard.request_seen("203.0.113.9", 100.0 + i * 0.01) for i in range(31)]
    assert results[:30] == [None] * 30 and results[30] is not None
