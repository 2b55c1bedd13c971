import time

from appliance.edge import BindingAdded, BindingRemoved
from appliance.store import Store
from tests.peers.sipclient import SipClient


def test_register_needs_digest_and_returns_the_binding(running):
    phone = SipClient(running.edge.port)
    phone.send_raw(phone.request("REGISTER", "sip:pbx", headers=[("Contact", phone.contact())]))
    challenge = phone.recv()
    assert challenge.status == 401
    offered = challenge.headers.get_all("www-authenticate")
    assert any("algorithm=SHA-256" in c for c in offered) and any("algorithm=MD5" in c for c in offered)
    for algorithm in ("MD5", "SHA-256"):
        res = phone.register(algorithm=algorithm)
        assert res.status == 200
        contact = res.headers.get("contact")
        assert contact.startswith(f"<sip:201@127.0.0.1:{phone.addr[1]}>;expires=")
        assert 3590 <= int(contact.split("expires=")[1]) <= 3600
    assert running.edge.contacts("201") == [f"sip:201@127.0.0.1:{phone.addr[1]}"]
    assert any(isinstance(e, BindingAdded) and e.extension == "201" for e in running.events)


def test_binding_keeps_source_address_and_is_written_to_the_store(running):
    phone = SipClient(running.edge.port)
    # A phone behind NAT advertises its private address; the edge keeps where it really came from.
    res = phone.register(contact="<sip:201@192.168.1.50:5060>", extra=[("User-Agent", "desk/2")])
    assert res.status == 200
    time.sleep(0.4)
    with Store(running.data_dir) as store:
        rows = store.bindings("201")
    assert len(rows) == 1
    row = rows[0]
    assert (row["contact"], row["source_host"], row["source_port"], row["transport"]) == (
        "sip:201@192.168.1.50:5060", "127.0.0.1", phone.addr[1], "udp")


def test_two_contacts_and_removal(running):
    desk, soft = SipClient(running.edge.port), SipClient(running.edge.port)
    assert desk.register().status == 200
    res = soft.register()
    assert res.status == 200 and len(res.headers.values("contact")) == 2
    assert len(running.edge.contacts("201")) == 2
    remaining = soft.register(expires=0).headers.values("contact")
    assert len(remaining) == 1 and remaining[0].startswith(desk.contact() + ";expires=")
    assert running.edge.contacts("201") == [desk.contact()[1:-1]]
    assert any(isinstance(e, BindingRemoved) and e.reason == "unregistered" for e in running.events)


def test_star_removes_all_and_needs_expires_zero(running):
    a, b = SipClient(running.edge.port), SipClient(running.edge.port)
    a.register(), b.register()
    assert a.register(contact="*", expires=3600).status == 400
    res = a.register(contact="*", expires=0)
    assert res.status == 200 and res.headers.get("contact") is None
    assert running.edge.contacts("201") == []


def test_expires_limits(running):
    phone = SipClient(running.edge.port)
    res = phone.register(expires=30)
    assert res.status == 423 and res.headers.get("min-expires") == "60"
    res = phone.register(expires=100000)
    assert res.headers.get("contact").endswith(";expires=7200")
    res = phone.register(expires=None)
    assert 3599 <= int(res.headers.get("contact").split("expires=")[1]) <= 3600
    res = phone.register(expires=None, contact=f"{phone.contact()};expires=120")
    assert 119 <= int(res.headers.get("contact").split("expires=")[1]) <= 120


def test_wrong_password_unknown_user_and_other_extension_get_the_same_answer(running):
    phone = SipClient(running.edge.port)
    assert phone.register(password="wrong").status == 403
    stranger = SipClient(running.edge.port, user="299")
    stranger.send_raw(stranger.request("REGISTER", "sip:pbx", headers=[("Contact", stranger.contact())]))
    known = phone.request("REGISTER", "sip:pbx", headers=[("Contact", phone.contact())])
    first = stranger.recv()
    phone.send_raw(known)
    second = phone.recv()
    assert first.status == second.status == 401
    strip = lambda r: sorted(c.split("nonce=")[0] for c in r.headers.get_all("www-authenticate"))
    assert strip(first) == strip(second)
    assert stranger.register().status == 403
    # Authenticating as 202 to register 201's address is refused.
    assert phone.register(username="202", password="hunter22").status == 403


def test_digest_uri_must_match_the_request_uri(running):
    phone = SipClient(running.edge.port)
    phone.send_raw(phone.request("REGISTER", "sip:pbx", headers=[("Contact", phone.contact())]))
    challenge = phone.recv().headers.get("www-authenticate")
    auth = phone.authorization(challenge, "REGISTER", "sip:pbx", digest_uri="sip:elsewhere")
    phone.send_raw(phone.request("REGISTER", "sip:pbx", headers=[("Contact", phone.contact()), ("Authorization", auth)]))
    assert phone.recv().status == 403


def test_expired_nonce_is_stale(data_dir, engine):
    from tests.edge.conftest import RunningEdge

    clock = [1_000_000.0]
    r = RunningEdge(data_dir, engine.addr, clock=lambda: clock[0])
    r.start()
    try:
        phone = SipClient(r.edge.port)
        phone.send_raw(phone.request("REGISTER", "sip:pbx", headers=[("Contact", phone.contact())]))
        challenge = phone.recv().headers.get("www-authenticate")
        clock[0] += 301
        auth = phone.authorization(challenge, "REGISTER", "sip:pbx")
        phone.send_raw(phone.request("REGISTER", "sip:pbx", headers=[("Contact", phone.contact()), ("Authorization", auth)]))
        res = phone.recv()
        assert res.status == 401 and all("stale=true" in c for c in res.headers.get_all("www-authenticate"))
        assert phone.register().status == 200
    finally:
        r.close()


def test_binding_expires(data_dir, engine):
    from tests.edge.conftest import RunningEdge

    clock = [1_000_000.0]
    r = RunningEdge(data_dir, engine.addr, clock=lambda: clock[0])
    r.start()
    try:
        phone = SipClient(r.edge.port)
        assert phone.register(expires=60).status == 200
        clock[0] += 61
        time.sleep(0.4)
        assert r.edge.contacts("201") == []
        assert any(isinstance(e, BindingRemoved) and e.reason == "expired" for e in r.events)
    finally:
        r.close()


def test_tcp_register_and_keepalive(running):
    phone = SipClient(running.edge.port, transport="tcp")
    assert phone.register().status == 200
    b = running.edge.bindings("201")[0]
    assert b.flow.transport == "tcp" and b.flow.port == phone.addr[1]
    phone.sock.sendall(b"\r\n\r\n")
    assert phone.sock.recv(10) == b"\r\n"


def test_options_answered(running):
    phone = SipClient(running.edge.port)
    phone.send_raw(phone.request("OPTIONS", "sip:127.0.0.1", to="<sip:127.0.0.1>"))
    res = phone.recv()
    assert res.status == 200 and "REGISTER" in res.headers.get("allow")


def test_require_unknown_extension_gets_420(running):
    phone = SipClient(running.edge.port)
    phone.send_raw(phone.request("REGISTER", "sip:pbx", headers=[("Contact", phone.contact()), ("Require", "foo-ext")]))
    res = phone.recv()
    assert res.status == 420 and res.headers.get("unsupported") == "foo-ext"


def test_restart_keeps_bindings(running):
    phone = SipClient(running.edge.port)
    assert phone.register().status == 200
    port = running.edge.port
    running.stop()
    running.start(port)
    assert running.edge.contacts("201") == [phone.contact()[1:-1]]
    assert running.edge.bindings("201")[0].flow.port == phone.addr[1]
