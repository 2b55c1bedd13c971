"""Busy lamps: desk phones subscribe to the dialog event package at the edge (RFC 6665, RFC 4235).

A small UDP phone (`Subscriber`) and sipp subscribe with digest auth; the
lamps' states are fed as the appliance feeds them (the engine's events, the
night service's), and every NOTIFY is read off the wire and answered.
"""

from __future__ import annotations

import secrets
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from appliance.edge.presence import DialogState, DialogStates
from appliance.edge.sipp import free_udp_port, sipp_path
from appliance.sip import Request, Response
from appliance.store import Store
from appliance.store.subscriptions import Subscriptions
from tests.edge.conftest import RunningEdge, until
from tests.peers.sipclient import SipClient

NS = {"d": "urn:ietf:params:xml:ns:dialog-info"}


@dataclass
class Notify:
    request: Request
    version: int
    entity: str
    dialogs: list[dict]

    @property
    def state(self) -> str:
        return self.request.headers.get("subscription-state") or ""

    @property
    def lamp(self) -> str:
        """What the lamp shows: idle, or the first dialog's state (with its direction)."""
        live = [d for d in self.dialogs if d["state"] != "terminated"]
        if not live:
            return "idle" if not self.dialogs else "terminated"
        d = live[0]
        return f"{d['state']} {d['direction']}".strip()


def read_notify(req: Request) -> Notify:
    assert req.headers.get("content-type") == "application/dialog-info+xml"
    root = ET.fromstring(req.body)
    dialogs = []
    for d in root.findall("d:dialog", NS):
        remote = d.find("d:remote", NS)
        dialogs.append({
            "id": d.get("id"), "direction": d.get("direction") or "", "state": d.findtext("d:state", "", NS),
            "remote": remote.findtext("d:identity", "", NS) if remote is not None else "",
            "display": remote.find("d:identity", NS).get("display") if remote is not None else None,
            "target": remote.find("d:target", NS).get("uri") if remote is not None else None,
        })
    return Notify(req, int(root.get("version")), root.get("entity"), dialogs)


@dataclass
class Presence:
    request: Request
    basic: str
    note: str
    activities: list[str]
    entity: str

    @property
    def shown(self) -> tuple[str, str, list[str]]:
        return self.basic, self.note, self.activities


def read_presence(req: Request) -> Presence:
    assert req.headers.get("content-type") == "application/pidf+xml"
    ns = {"p": "urn:ietf:params:xml:ns:pidf", "dm": "urn:ietf:params:xml:ns:pidf:data-model",
          "r": "urn:ietf:params:xml:ns:pidf:rpid"}
    root = ET.fromstring(req.body)
    acts = root.find("dm:person/r:activities", ns)
    return Presence(req, root.findtext("p:tuple/p:status/p:basic", "", ns), root.findtext("dm:person/dm:note", "", ns),
                    [a.tag.rsplit("}", 1)[-1] for a in (acts if acts is not None else [])], root.get("entity"))


class Subscriber:
    """A desk phone's lamp keys over UDP: SUBSCRIBE with digest auth, every NOTIFY answered (200 unless told)."""

    def __init__(self, edge_port: int, user: str = "201", password: str = "secret"):
        self.client = SipClient(edge_port, user=user, password=password)
        self.inbox: list[Request] = []
        self.answered: set[tuple[str, str]] = set()
        self.answer_with = 200
        self.tags: dict[str, str] = {}  # Call-ID -> the edge's To tag
        self.lamps: dict[str, str] = {}  # Call-ID -> lamp
        self.call_id = ""  # of the last SUBSCRIBE

    def close(self) -> None:
        self.client.close()

    def moved_to(self, edge_port: int) -> None:
        self.client.edge = ("127.0.0.1", edge_port)

    def _headers(self, event: str, expires: int | None) -> list[tuple[str, str]]:
        accept = "application/pidf+xml" if event == "presence" else "application/dialog-info+xml"
        h = [("Event", event), ("Accept", accept), ("Contact", self.client.contact())]
        return h + ([("Expires", str(expires))] if expires is not None else [])

    def subscribe(self, lamp: str, *, expires: int | None = 600, event: str = "dialog", authenticate: bool = True,
                  call_id: str | None = None) -> Response:
        """A new subscription (or, with `call_id`, a refresh in its dialog); returns the final answer."""
        c = self.client
        refresh = call_id is not None
        call_id = call_id or f"blf-{secrets.token_hex(5)}"
        self.lamps.setdefault(call_id, lamp)
        host, port = c.edge
        uri = f"sip:{host}:{port}" if refresh else f"sip:{lamp}@{host}:{port}"
        to = f"<sip:{lamp}@pbx>" + (f";tag={self.tags[call_id]}" if refresh else "")
        headers = self._headers(event, expires)
        c.send_raw(c.request("SUBSCRIBE", uri, to=to, headers=headers, call_id=call_id))
        res = self.response()
        if res.status in (401, 407) and authenticate:
            name = "www-authenticate" if res.status == 401 else "proxy-authenticate"
            auth = c.authorization(res.headers.get_all(name)[0], "SUBSCRIBE", uri)
            header = "Authorization" if res.status == 401 else "Proxy-Authorization"
            c.send_raw(c.request("SUBSCRIBE", uri, to=to, headers=[*headers, (header, auth)], call_id=call_id))
            res = self.response()
        if res.status == 200:
            self.tags[call_id] = res.to.tag
        self.call_id = call_id
        return res

    def _next(self, timeout: float) -> Request | Response | None:
        msg = self.client.recv(timeout)
        if isinstance(msg, Request) and msg.method == "NOTIFY":
            key = (msg.call_id, msg.headers.get("cseq"))
            self._answer(msg)
            if key in self.answered:
                return self._next(timeout)  # a retransmission: answered again, told once
            self.answered.add(key)
        return msg

    def _answer(self, req: Request) -> None:
        from appliance.sip import response_to

        self.client.send_raw(response_to(req, self.answer_with).to_bytes())

    def response(self, timeout: float = 5.0) -> Response:
        while True:
            msg = self._next(timeout)
            assert msg is not None, "no answer to the SUBSCRIBE"
            if isinstance(msg, Response):
                return msg
            self.inbox.append(msg)

    def next_request(self, timeout: float = 5.0) -> Request:
        while not self.inbox:
            msg = self._next(timeout)
            assert msg is not None, "no NOTIFY came"
            if isinstance(msg, Request):
                self.inbox.append(msg)
        return self.inbox.pop(0)

    def notify(self, timeout: float = 5.0) -> Notify:
        return read_notify(self.next_request(timeout))

    def presence(self, timeout: float = 5.0) -> Presence:
        return read_presence(self.next_request(timeout))

    def raw_notify(self, timeout: float = 5.0) -> Request | None:
        """The next NOTIFY as it came, not answered (to see retransmissions)."""
        msg = self.client.recv(timeout)
        return msg if isinstance(msg, Request) else None


# -- the edge on its own: lamps fed with events as the appliance feeds them ------------------------

class Clock:
    def __init__(self):
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def night():
    return ["day", "day"]


@pytest.fixture
def edge(data_dir, engine, clock, night):
    r = RunningEdge(data_dir, engine.addr, clock=clock, night_modes=lambda: list(night))
    r.start()
    yield r
    r.close()


@pytest.fixture
def phone(edge):
    s = Subscriber(edge.edge.port)
    yield s
    s.close()


def feed(edge: RunningEdge, kind: str, call_id: str, **data) -> None:
    edge.call(edge.edge.notifier.on_event, {"kind": kind, "call_id": call_id, **data})


def test_a_subscribe_is_challenged_then_answered_with_the_state_at_once(edge, phone):
    res = phone.subscribe("202", authenticate=False)
    assert res.status == 401 and "Digest" in res.headers.get("www-authenticate")
    res = phone.subscribe("202")
    assert res.status == 200
    assert res.headers.get("expires") == "600" and res.headers.get("contact") == f"<sip:127.0.0.1:{edge.edge.port}>"
    assert res.to.tag
    n = phone.notify()
    assert n.state == "active;expires=600"
    assert (n.version, n.entity, n.dialogs, n.lamp) == (0, "sip:202@127.0.0.1", [], "idle")
    req = n.request
    assert req.uri == phone.client.contact()[1:-1] and req.headers.get("event") == "dialog"
    assert req.from_.tag == res.to.tag and req.to.tag == phone.client.tag and req.call_id == phone.call_id


def test_other_packages_unknown_extensions_and_bad_credentials_are_refused(edge, phone):
    res = phone.subscribe("202", event="message-summary")
    assert (res.status, res.reason, res.headers.get("allow-events")) == (489, "Bad Event", "dialog, presence")
    assert phone.subscribe("299").status == 404
    assert phone.subscribe("202", expires=30).headers.get("min-expires") == "60"
    stranger = Subscriber(edge.edge.port, password="wrong")
    try:
        assert stranger.subscribe("202").status == 403
    finally:
        stranger.close()
    assert edge.edge.notifier.subs == {}


def test_a_call_rings_is_answered_and_ends_on_the_lamp(edge, phone):
    phone.subscribe("202")
    assert phone.notify().lamp == "idle"
    feed(edge, "CallStarted", "c1", direction="inbound", caller="0501234567", caller_name="Olena", dialled="0441234567",
         trunk="t", extension="")
    feed(edge, "LegStarted", "c1", target="202", uri="sip:202@x", leg=1)
    feed(edge, "LegStarted", "c1", target="202", uri="sip:202@y", leg=2)  # two phones of 202
    feed(edge, "LegRinging", "c1", target="202", leg=1, code=180)
    n = phone.notify()
    assert n.lamp == "early recipient" and n.version == 1
    d = n.dialogs[0]
    assert d["remote"] == "sip:0501234567@127.0.0.1" and d["display"] == "Olena"
    assert d["target"] == "sip:**202@127.0.0.1"  # calling it picks the call up
    feed(edge, "LegEnded", "c1", target="202", code=486, reason="Busy Here")  # one phone refused, the other rings
    feed(edge, "CallAnswered", "c1", by="202", wait_s=1.0)
    n = phone.notify()
    assert n.lamp == "confirmed recipient" and n.version == 2
    feed(edge, "CallEnded", "c1", outcome="answered", answered_by="202")
    n = phone.notify()
    assert [d["state"] for d in n.dialogs] == ["terminated"] and n.version == 3
    # The next document no longer names the call: the lamp is idle.
    feed(edge, "CallStarted", "c2", direction="internal", caller="202", caller_name="Sales", dialled="201",
         trunk="", extension="202")
    assert phone.notify().lamp == "trying initiator"


def test_expires_zero_ends_with_a_terminated_notify_and_refreshes_need_no_new_challenge(edge, phone):
    phone.subscribe("202")
    call_id = phone.call_id
    phone.notify()
    again = phone.subscribe("202", call_id=call_id, expires=900, authenticate=False)
    assert again.status == 200 and again.headers.get("expires") == "900"
    assert phone.notify().state == "active;expires=900"
    gone = phone.subscribe("202", call_id=call_id, expires=0, authenticate=False)
    assert gone.status == 200 and gone.headers.get("expires") == "0"
    n = phone.notify()
    assert n.state == "terminated;reason=timeout" and n.version == 2
    assert edge.edge.notifier.subs == {}
    assert phone.subscribe("202", call_id=call_id, authenticate=True).status == 481


def test_an_expired_subscription_gets_a_last_notify(edge, phone, clock):
    phone.subscribe("202", expires=60)
    phone.notify()
    clock.now += 61  # the edge's housekeeping tick notices
    n = phone.notify()
    assert n.state == "terminated;reason=timeout"
    assert until(lambda: edge.edge.notifier.subs == {})


def test_a_notify_is_sent_again_until_answered_and_481_ends_the_subscription(edge, phone):
    phone.subscribe("202")
    first = phone.raw_notify()
    again = phone.raw_notify()  # not answered: timer E sends it again
    assert again is not None and again.to_bytes() == first.to_bytes()
    phone._answer(again)
    phone.answered.add((again.call_id, again.headers.get("cseq")))
    phone.answer_with = 481
    feed(edge, "LegRinging", "c9", target="202", leg=1, code=180)
    assert phone.notify().lamp == "early recipient"
    assert until(lambda: edge.edge.notifier.subs == {})


def test_the_night_keys_light_with_night_mode(edge, phone, night):
    assert phone.subscribe("*28").status == 200
    assert phone.notify().lamp == "idle"
    assert phone.subscribe("*282").status == 200
    assert phone.notify().lamp == "idle"
    assert phone.subscribe("*283").status == 404  # the routing has two switches
    night[0] = "night"
    edge.call(edge.edge.notifier.on_event, {"kind": "NightModeChanged", "switch": "kyiv", "mode": "night"})
    n = phone.notify()
    assert n.entity == "sip:*28@127.0.0.1" and n.lamp == "confirmed" and n.version == 1
    night[0] = "day"
    edge.call(edge.edge.notifier.on_event, {"kind": "NightModeChanged", "switch": "kyiv", "mode": "day"})
    assert phone.notify().lamp == "idle"
    assert phone.inbox == []  # *282 did not change


def test_subscriptions_outlive_a_restart_and_expired_ones_are_dropped(edge, phone, clock, data_dir):
    phone.subscribe("202", expires=3600)
    long_one = phone.call_id
    phone.notify()
    phone.subscribe("201", expires=60)
    phone.notify()
    feed(edge, "LegRinging", "c1", target="202", leg=1, code=180)
    assert phone.notify().version == 1
    edge.stop()
    clock.now += 120
    with Store(data_dir) as store:
        assert {r["resource"] for r in Subscriptions(store).load(clock.now - 200)} == {"201", "202"}
    edge.start()
    phone.moved_to(edge.edge.port)
    n = phone.notify()
    assert n.request.call_id == long_one and n.version == 2 and n.lamp == "idle"  # the engine's calls did not survive
    assert n.state == "active;expires=3480"
    assert list(edge.edge.notifier.lamps()) == ["202"]
    with Store(data_dir) as store:
        assert [r["resource"] for r in Subscriptions(store).load(clock.now)] == ["202"]


def test_sipp_subscribes_with_digest_is_notified_and_unsubscribes(edge, tmp_path):
    assert sipp_path(), "sipp is part of the test setup (apt-get install sip-tester)"
    scenario = tmp_path / "subscribe.xml"
    scenario.write_text(SIPP_SUBSCRIBE)
    port = edge.edge.port
    run = subprocess.run(
        [sipp_path(), f"127.0.0.1:{port}", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1",
         "-p", str(free_udp_port()), "-t", "u1", "-nostdin", "-timeout", "20s", "-timeout_error",
         "-recv_timeout", "5000", "-nd", "-trace_err", "-s", "201",
         # The digest uri names the Request-URI, as a phone's does (sipp's default is the address alone).
         "-auth_uri", f"201@127.0.0.1:{port}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:] + "".join(
        p.read_text() for p in tmp_path.glob("*errors.log"))
    assert edge.edge.notifier.subs == {}


# sipp as a desk phone (202) watching 201: challenged, subscribed, told idle, then unsubscribes.
SIPP_SUBSCRIBE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="SUBSCRIBE to the dialog package with digest authentication">
  <send retrans="500">
    <![CDATA[
      SUBSCRIBE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:202@pbx>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@pbx>
      Call-ID: [call_id]
      CSeq: 1 SUBSCRIBE
      Contact: <sip:202@[local_ip]:[local_port]>
      Event: dialog
      Accept: application/dialog-info+xml
      Expires: 600
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
      SUBSCRIBE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:202@pbx>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@pbx>
      Call-ID: [call_id]
      CSeq: 2 SUBSCRIBE
      Contact: <sip:202@[local_ip]:[local_port]>
      Event: dialog
      Accept: application/dialog-info+xml
      Expires: 600
      [authentication username=202 password=hunter22]
      Content-Length: 0

    ]]>
  </send>
  <recv response="200">
    <action>
      <ereg regexp=";tag=([^;>[:space:]]+)" search_in="hdr" header="To:" assign_to="chk,ourtag"/>
    </action>
  </recv>
  <recv request="NOTIFY">
    <action>
      <ereg regexp="active;expires=" search_in="hdr" header="Subscription-State:" check_it="true" assign_to="chk"/>
      <ereg regexp="dialog-info" search_in="body" check_it="true" assign_to="chk"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SUBSCRIBE sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:202@pbx>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@pbx>;tag=[$ourtag]
      Call-ID: [call_id]
      CSeq: 3 SUBSCRIBE
      Contact: <sip:202@[local_ip]:[local_port]>
      Event: dialog
      Expires: 0
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <recv request="NOTIFY">
    <action>
      <ereg regexp="terminated" search_in="hdr" header="Subscription-State:" check_it="true" assign_to="chk"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


# -- the model on its own ----------------------------------------------------------------------------

def states_of(model: DialogStates, lamp: str) -> list[tuple[str, str]]:
    return [(d.direction, str(d.state)) for d in model.dialogs(lamp)]


def test_the_model_follows_a_desk_call_a_pickup_and_a_step_that_moves_on():
    m = DialogStates()
    assert m.on_event({"kind": "CallStarted", "call_id": "a", "direction": "internal", "caller": "101",
                       "dialled": "102", "extension": "101"}) == {"101"}
    assert m.on_event({"kind": "LegStarted", "call_id": "a", "target": "102", "leg": 1}) == set()
    assert m.on_event({"kind": "LegRinging", "call_id": "a", "target": "102", "leg": 1}) == {"101", "102"}
    assert states_of(m, "101") == [("initiator", "early")] and states_of(m, "102") == [("recipient", "early")]
    # 103 dials **102: its own call becomes the answering leg.
    m.on_event({"kind": "CallStarted", "call_id": "p", "direction": "internal", "caller": "103", "dialled": "**102",
                "extension": "103"})
    changed = m.on_event({"kind": "CallPickedUp", "call_id": "a", "by": "103", "picker": "p"})
    changed |= m.on_event({"kind": "CallAnswered", "call_id": "a", "by": "103"})
    assert changed == {"101", "102", "103"}
    assert states_of(m, "102") == [("recipient", "terminated")]
    assert sorted(states_of(m, "103")) == [("initiator", "terminated"), ("recipient", "confirmed")]
    assert states_of(m, "101") == [("initiator", "confirmed")]
    for lamp in ("101", "102", "103"):
        m.settle(lamp)
    assert states_of(m, "102") == [] and states_of(m, "103") == [("recipient", "confirmed")]
    # A call that nobody answers goes on to voicemail: the ringing stops.
    m.on_event({"kind": "CallStarted", "call_id": "b", "direction": "inbound", "caller": "0501234567"})
    m.on_event({"kind": "LegRinging", "call_id": "b", "target": "104", "leg": 7})
    assert m.on_event({"kind": "StepStarted", "call_id": "b", "step": "voicemail"}) == {"104"}
    assert states_of(m, "104") == [("recipient", "terminated")]
    assert m.on_event({"kind": "CallEnded", "call_id": "a"}) == {"101", "103"}
    assert m.calls.keys() == {"b"}


def test_the_night_keys_follow_the_switches_in_order():
    m = DialogStates()
    assert m.set_night(["day", "night"]) == {"*282"}
    assert states_of(m, "*282") == [("", str(DialogState.CONFIRMED))] and states_of(m, "*28") == []
    assert m.set_night(["night", "night"]) == {"*28", "*281"}
    assert m.set_night([]) == {"*28", "*281", "*282"}


def test_presence_shows_offline_available_ringing_and_on_the_phone(edge, phone):
    res = phone.subscribe("202", event="presence")
    assert res.status == 200 and res.headers.get("allow-events") == "dialog, presence"
    first = phone.presence()
    assert first.request.headers.get("event") == "presence" and first.entity == "sip:202@127.0.0.1"
    assert first.shown == ("closed", "Offline", [])  # no phone of 202 is registered
    sales = SipClient(edge.edge.port, user="202", password="hunter22")
    try:
        assert sales.register().status == 200
        edge.call(edge.edge.notifier.on_event, {"kind": "BindingAdded", "extension": "202"})
        assert phone.presence().shown == ("open", "Available", [])
        feed(edge, "CallStarted", "c1", direction="inbound", caller="0501234567", caller_name="", dialled="1",
             trunk="t", extension="")
        feed(edge, "LegStarted", "c1", target="202", uri="sip:202@x", leg=1)
        feed(edge, "LegRinging", "c1", target="202", leg=1, code=180)
        assert phone.presence().shown == ("open", "Ringing", [])
        feed(edge, "LegStarted", "c1", target="202", uri="sip:202@y", leg=2)   # a second phone: nothing to tell
        feed(edge, "CallAnswered", "c1", by="202", wait_s=1.0)
        assert phone.presence().shown == ("open", "On the phone", ["busy", "on-the-phone"])
        feed(edge, "CallEnded", "c1", outcome="answered", answered_by="202")
        assert phone.presence().shown == ("open", "Available", [])
        assert sales.register(expires=0).status == 200
        edge.call(edge.edge.notifier.on_event, {"kind": "BindingRemoved", "extension": "202", "reason": "unregistered"})
        assert phone.presence().shown == ("closed", "Offline", [])
    finally:
        sales.close()
    assert phone.inbox == [] and phone.raw_notify(0.3) is None  # one NOTIFY a change, none for the second phone


def test_presence_of_the_night_key_and_a_refresh_gets_the_state_again(edge, phone, night):
    assert phone.subscribe("*28", event="presence").status == 200
    assert phone.presence().shown == ("open", "Day mode", [])
    night[0] = "night"
    edge.call(edge.edge.notifier.on_event, {"kind": "NightModeChanged", "switch": "kyiv", "mode": "night"})
    assert phone.presence().shown == ("open", "Night mode", ["busy"])
    assert phone.subscribe("*28", event="presence", call_id=phone.call_id).status == 200  # a refresh
    assert phone.presence().shown == ("open", "Night mode", ["busy"])  # told again, as RFC 6665 asks
    res = phone.subscribe("*28", event="dialog", call_id=phone.call_id)
    assert (res.status, res.headers.get("allow-events")) == (489, "presence")  # a dialog keeps its package
    res = phone.subscribe("202", event="presence", expires=0)
    assert res.status == 200 and phone.presence().request.headers.get("subscription-state") == \
        "terminated;reason=timeout"
