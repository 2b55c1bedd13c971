import socket
import time

import pytest
from click.testing import CliRunner

from appliance.edge import GuardPolicy, SourceBanned
from appliance.edge.commands import guard
from appliance.edge.guard import Guard, Proof, is_scanner
from appliance.store import Store
from tests.edge.conftest import RunningEdge, until
from tests.edge.test_proxy import SDP, response_from
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
    assert guard.ban_reason("a", 171) == "auth failures" and guard.ban_reason("a", 173) is None
    assert guard.ban_reason("b", 100) is None


def test_guard_flood_limit_counts_what_proves_nothing():
    guard = Guard(GuardPolicy(flood_requests=3, flood_window=2, flood_ban=50, flood_trickle=1))
    # Credentials and dialogs are never counted.
    assert all(guard.admit("a", 0.1, proof) == (True, None) for proof in (Proof.CREDENTIALS, Proof.DIALOG) for _ in range(10))
    assert [guard.admit("a", t, Proof.NONE) for t in (0, 0.5, 1.0)] == [(True, None)] * 3
    assert guard.admit("a", 1.5, Proof.NONE) == (False, (51.5, "flood"))
    assert guard.admit("b", 1.5, Proof.NONE) == (True, None)
    # Banned for a flood: what proves itself passes; of the rest, a trickle per window.
    assert guard.admit("a", 1.6, Proof.CREDENTIALS) == (True, None)
    assert guard.admit("a", 1.7, Proof.NONE) == (False, None)  # this window is spent
    assert guard.admit("a", 3.6, Proof.NONE) == (True, None)  # the next window's one answer
    assert guard.admit("a", 3.7, Proof.NONE) == (False, None)
    assert guard.admit("a", 52.0, Proof.NONE) == (True, None)  # the ban is over


def test_a_password_ban_lets_only_dialogs_through():
    guard = Guard(GuardPolicy(max_failures=2, failure_ban=100))
    guard.auth_failed("a", 0)
    assert guard.auth_failed("a", 1) == (101, "auth failures")
    assert guard.admit("a", 2, Proof.NONE) == (False, None)
    assert guard.admit("a", 2, Proof.CREDENTIALS) == (False, None)  # no password checks: no oracle
    assert guard.admit("a", 2, Proof.DIALOG) == (True, None)  # a call that is up ends properly


def test_trusted_addresses_are_never_counted_or_banned():
    guard = Guard(GuardPolicy(flood_requests=1, max_failures=1), trusted=frozenset({"t"}))
    assert all(guard.admit("t", 0, Proof.NONE) == (True, None) for _ in range(50))
    assert guard.auth_failed("t", 0) is None
    guard.bans["t"] = (100.0, "flood")  # stored before the address became a trunk's
    assert guard.ban_reason("t", 1) is None and guard.admit("t", 1, Proof.NONE) == (True, None)


def test_a_banned_address_is_parsed_only_when_it_may_prove_something():
    guard = Guard(GuardPolicy(flood_trickle=0))
    guard.bans = {"f": (100.0, "flood"), "p": (100.0, "auth failures")}
    invite = b"INVITE sip:202@pbx SIP/2.0\r\nVia: x\r\n\r\n"
    with_auth = invite.replace(b"\r\n\r\n", b"\r\nProxy-Authorization: Digest x\r\n\r\n")
    in_dialog = b"BYE sip:e@127.0.0.1 SIP/2.0\r\nRoute: <sip:127.0.0.1;lr;pbxf=201~udp~h~1~s>\r\n\r\n"
    assert guard.worth_parsing("other", 1, invite)
    assert not guard.worth_parsing("f", 1, invite) and guard.worth_parsing("f", 1, with_auth)
    assert not guard.worth_parsing("p", 1, with_auth) and guard.worth_parsing("p", 1, in_dialog)
    assert guard.worth_parsing("p", 1, b"SIP/2.0 200 OK\r\n") and guard.worth_parsing("p", 1, b"ACK sip:x SIP/2.0\r\n")


def test_lifting_a_ban_forgets_the_counts_behind_it():
    guard = Guard(GuardPolicy(flood_requests=2, flood_window=10))
    results = [guard.admit("a", 0, Proof.NONE)[1] for _ in range(3)]
    assert results[2] is not None
    guard.replace_bans({})
    assert guard.admit("a", 1, Proof.NONE) == (True, None)


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


def test_an_address_with_registered_phones_gets_a_higher_limit():
    guard = Guard(GuardPolicy(flood_requests=30, flood_per_phone=4, flood_window=2.0))
    # Ten phones behind one address: 70 challenged requests in a window are their normal traffic.
    assert all(guard.admit("198.51.100.7", 100.0 + i * 0.01, Proof.NONE, phones=10) == (True, None) for i in range(70))
    # A stranger at another address is banned past 30.
    results = [guard.admit("203.0.113.9", 100.0 + i * 0.01, Proof.NONE)[1] for i in range(31)]
    assert results[:30] == [None] * 30 and results[30] is not None


# -- floods, phones and trunks on real sockets ------------------------------------


def place_call(phone, engine, edge_port, call_id, *, dialled="0441234567"):
    """INVITE, 407, ACK, INVITE with credentials; the engine answers 200; the phone ACKs.

    Returns what the phone needs to hang up: the route set, the To with the
    engine's tag, the engine's Contact URI.
    """
    uri = f"sip:{dialled}@pbx"
    headers = [("Contact", phone.contact()), ("Content-Type", "application/sdp")]
    phone.send_raw(phone.request("INVITE", uri, to=f"<{uri}>", headers=headers, body=SDP, call_id=call_id))
    res = phone.recv()
    assert res is not None and res.status == 407, res
    phone.send_raw(phone.request("ACK", uri, to=res.headers.get("to"), cseq=phone.cseq, call_id=call_id))
    auth = phone.authorization(res.headers.get("proxy-authenticate"), "INVITE", uri)
    phone.send_raw(phone.request("INVITE", uri, to=f"<{uri}>", headers=[*headers, ("Proxy-Authorization", auth)], body=SDP, call_id=call_id))
    invite, _ = engine.recv()
    assert invite is not None and invite.method == "INVITE" and invite.call_id == call_id
    target = f"sip:engine@127.0.0.1:{engine.addr[1]}"
    engine.send(response_from(invite, 200, "OK", tag=f"e{call_id}", extra=[("Contact", f"<{target}>")]), edge_port)
    ok = phone.recv()
    assert ok is not None and ok.status == 200 and ok.call_id == call_id, ok
    routes = list(reversed(ok.headers.values("record-route")))
    to = ok.headers.get("to")
    phone.send_raw(phone.request("ACK", target, to=to, cseq=phone.cseq, call_id=call_id, headers=[("Route", r) for r in routes]))
    ack, _ = engine.recv()
    assert ack is not None and ack.method == "ACK" and ack.call_id == call_id
    return routes, to, target


def hang_up(phone, engine, edge_port, call_id, call) -> bool:
    """The phone's BYE through the record-route; True when it reached the engine and the 200 came back."""
    routes, to, target = call
    phone.send_raw(phone.request("BYE", target, to=to, call_id=call_id, headers=[("Route", r) for r in routes]))
    bye, _ = engine.recv()
    if bye is None or bye.method != "BYE" or bye.headers.get("x-pbx-extension") != phone.user:
        return False
    engine.send(response_from(bye, 200, "OK", tag=f"e{call_id}"), edge_port)
    ok = phone.recv()
    return ok is not None and ok.status == 200


def register_like_a_phone(phone, seconds=6.0):
    """REGISTER again until answered, as a phone retransmits (a dropped request is tried again)."""
    return until(lambda: phone.register(), seconds, step=0)


def flood(client, count, method="INVITE"):
    for i in range(count):
        client.send_raw(client.request(method, "sip:0800123456@pbx", to="<sip:0800123456@pbx>", call_id=f"flood{i}"))


def answers(client, timeout=0.3):
    n = 0
    while client.recv_raw(timeout) is not None:
        n += 1
    return n


def test_a_spoofed_flood_does_not_lock_out_the_phone_at_that_address(data_dir, engine):
    r = RunningEdge(data_dir, engine.addr)  # the default policy
    r.start()
    try:
        port, limit = r.edge.port, r.edge.policy.flood_requests
        phone = SipClient(port, host="127.0.0.6")
        assert phone.register().status == 200
        up = place_call(phone, engine, port, "before-flood")
        # Unauthenticated INVITEs from the phone's address (another port: the same host).
        spoofer = SipClient(port, host="127.0.0.6", user="299")
        flood(spoofer, 3 * limit)
        assert until(lambda: [e for e in r.events if isinstance(e, SourceBanned)])[0].reason == "flood"
        assert answers(spoofer) <= limit + r.edge.policy.flood_trickle
        # The call that was up ends properly, at once.
        assert hang_up(phone, engine, port, "before-flood", up)
        # The phone re-registers (its first tries may fall in the flood's window) and calls out.
        assert register_like_a_phone(phone).status == 200
        routes, to, target = place_call(phone, engine, port, "after-flood")
        assert hang_up(phone, engine, port, "after-flood", (routes, to, target))
        # Still banned: a stranger's unauthenticated requests there get no more than the trickle.
        flood(spoofer, 20, method="OPTIONS")
        assert answers(spoofer) <= r.edge.policy.flood_trickle
    finally:
        r.close()


def test_ten_calls_a_second_from_one_source_all_complete(data_dir, engine):
    r = RunningEdge(data_dir, engine.addr)  # the default policy
    r.start()
    try:
        port = r.edge.port
        phone = SipClient(port, host="127.0.0.7", user="202", password="hunter22")
        seconds, rate, held = 6, 10, 5  # each call stays up while the next five are placed
        up, completed, started = {}, 0, time.monotonic()
        for i in range(seconds * rate):
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
            up[f"c{i}"] = place_call(phone, engine, port, f"c{i}")
            if len(up) > held:
                call_id = next(iter(up))
                completed += hang_up(phone, engine, port, call_id, up.pop(call_id))
        for call_id in list(up):
            completed += hang_up(phone, engine, port, call_id, up.pop(call_id))
        assert time.monotonic() - started >= seconds - 0.5
        assert completed == seconds * rate
        assert not [e for e in r.events if isinstance(e, SourceBanned)]
    finally:
        r.close()


def test_a_trunk_is_never_banned(data_dir, engine):
    with Store(data_dir) as store:
        store.put_trunk({"name": "provider", "kind": "ip", "host": "localhost", "addresses": ["127.0.0.8:5060"]})
    r = RunningEdge(data_dir, engine.addr, policy=GuardPolicy(flood_requests=10, max_failures=2))
    r.start()
    try:
        # The literal address is trusted at once, the host name once looked up (off the loop).
        assert until(lambda: {"127.0.0.8", "127.0.0.1"} <= r.edge.guard.trusted)
        for host in ("127.0.0.8", "127.0.0.1"):
            trunk = SipClient(r.edge.port, host=host)
            flood(trunk, 50, method="OPTIONS")
            assert answers(trunk) == 50
            assert all(trunk.register(password="guess").status == 403 for _ in range(3))
        stranger = SipClient(r.edge.port, host="127.0.0.9")
        flood(stranger, 30, method="OPTIONS")
        assert answers(stranger) <= 10 + r.edge.policy.flood_trickle
        assert [e.address for e in r.events if isinstance(e, SourceBanned)] == ["127.0.0.9"]
    finally:
        r.close()


def test_an_unknown_authorization_scheme_is_challenged(running):
    # RFC 4475 3.3.7 (unknownauthscheme), with a Via that leads back to the test.
    client = SipClient(running.edge.port)
    host, port = client.addr
    client.send_raw((
        "REGISTER sip:example.com SIP/2.0\r\nTo: sip:j.user@example.com\r\n"
        "From: sip:j.user@example.com;tag=87321hj23128\r\nMax-Forwards: 8\r\nCall-ID: 0ha0isndaksdj\r\n"
        f"CSeq: 9338 REGISTER\r\nVia: SIP/2.0/UDP {host}:{port};branch=z9hG4bKvueijhoy;rport\r\n"
        "Authorization: NoOneKnowsThisScheme opaque-data=here\r\nContent-Length:0\r\n\r\n"
    ).encode())
    res = client.recv()
    assert res.status == 401 and res.headers.get("www-authenticate").startswith("Digest ")
    # A phone that also sends such a header next to its Digest credentials still registers.
    assert client.register(extra=[("Authorization", "NoOneKnowsThisScheme opaque-data=here")]).status == 200


def test_pbx_guard_list_and_unban(running):
    attacker = SipClient(running.edge.port, host="127.0.0.2")
    for _ in range(5):
        attacker.register(password="guess")
    assert options(attacker) is None
    data = ["--data", str(running.data_dir)]
    listed = CliRunner().invoke(guard, ["list", *data])
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()
    assert header.split()[:3] == ["ADDRESS", "REASON", "SILENCES"]
    assert row.startswith("127.0.0.2 ") and "auth failures" in row and "all but calls already up" in row
    lifted = CliRunner().invoke(guard, ["unban", "127.0.0.2", *data])
    assert lifted.exit_code == 0 and "127.0.0.2 is no longer banned" in lifted.output
    # The running edge reads the bans again within a tick.
    assert until(lambda: options(attacker), 3.0).status == 200
    assert attacker.register().status == 200
    again = CliRunner().invoke(guard, ["unban", "127.0.0.2", *data])
    assert again.exit_code == 1 and "127.0.0.2 is not banned" in again.output
    assert CliRunner().invoke(guard, ["list", *data]).output.strip() == "No addresses are banned."
