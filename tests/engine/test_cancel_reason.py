"""A phone slow to answer the INVITE still learns that the call was completed elsewhere.

RFC 3261 9.1: a CANCEL may be sent only after a provisional response.  When
a ring-all is answered before one of its phones has sent even 100 Trying,
pjsip keeps its CANCEL back and sends it with the first 1xx, without the
headers the engine gave the hang-up; the phone then got no `Reason: SIP;
cause=200;text="Call completed elsewhere"` and logged a missed call.

The slow phone here is a second device of extension 103: a UDP socket that
answers the engine's INVITE only when the test says so, after desk phone 102
has taken the call.  A sipp scenario waits for a message or for a fixed
time, not for the test; this peer sends nothing until the engine has reported
CallAnswered, so the order is the same on every run.
"""

from __future__ import annotations

import socket
import time

import pytest

from appliance.sip import Request, Response, parse, response_to
from tests.conftest import free_port

pytestmark = pytest.mark.sip

COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'
TAG = "slowphone1"


class SlowPhone:
    """A desk phone on loopback that sends each response only when told to."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.engine: tuple[str, int] | None = None
        self.seen: list[Request | Response] = []

    def _messages(self, seconds: float):
        """Each message the engine sends within `seconds`, parsed and kept in `seen`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, self.engine = self.sock.recvfrom(70000)
            except TimeoutError:
                return
            msg = parse(data)
            self.seen.append(msg)
            yield msg

    def expect(self, method: str, timeout: float = 10.0) -> Request:
        """The next request with this method; the engine's INVITE retransmissions are passed over."""
        for msg in self._messages(timeout):
            if isinstance(msg, Request) and msg.method == method:
                if method != "INVITE" or not any(
                        isinstance(m, Request) and m.method == "INVITE" for m in self.seen[:-1]):
                    return msg
        raise AssertionError(f"the slow phone got no {method} within {timeout} s; it got "
                             f"{[getattr(m, 'method', None) or getattr(m, 'status', None) for m in self.seen]}")

    def listen(self, seconds: float) -> None:
        """Take in whatever the engine sends for `seconds`."""
        for _ in self._messages(seconds):
            pass

    def answer(self, request: Request, status: int, headers: tuple[tuple[str, str], ...] = (),
               body: bytes = b"") -> None:
        res = response_to(request, status, headers=headers, body=body, to_tag=TAG)
        assert self.engine is not None
        self.sock.sendto(res.to_bytes(), self.engine)

    def requests(self, method: str) -> list[Request]:
        return [m for m in self.seen if isinstance(m, Request) and m.method == method]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def slow(world):
    """The slow phone, registered as a second device of extension 103 while the test runs."""
    phone = SlowPhone()
    with world.store() as st:
        st.db["bindings"].insert({
            "extension": "103", "contact": f"sip:103@127.0.0.1:{phone.port}", "source_host": "127.0.0.1",
            "source_port": phone.port, "transport": "udp", "q": 1.0, "expires_at": time.time() + 3600,
            "registered_at": time.time()})
    world.engine.send(cmd="reload")
    world.engine.expect(kind="done", cmd="reload")
    yield phone
    phone.close()
    with world.store() as st:
        st.db["bindings"].delete_where("contact = ?", [f"sip:103@127.0.0.1:{phone.port}"])
    world.engine.send(cmd="reload")
    world.engine.expect(kind="done", cmd="reload")


def answered_by_102_while_slow_phone_silent(world, slow: SlowPhone) -> tuple[int, Request]:
    """A ring-all over the IP trunk, taken by 102 before the slow phone has said a word."""
    world.route("ringall")
    pid = world.ip_call()
    world.engine.expect(kind="CallStarted")
    rings = {ext: p.expect(ev="incoming") for ext, p in world.phones.items()}
    invite = slow.expect("INVITE")
    world.phones["102"].send(cmd="answer", id=rings["102"]["id"])
    world.provider.expect(ev="state", id=pid, state="confirmed")
    # Emitted after the engine asked every other leg to stop.
    assert world.engine.expect(kind="CallAnswered")["by"] == "102"
    for ext in ("101", "103"):
        world.phones[ext].expect(ev="cancel", reason=COMPLETED_ELSEWHERE)
    slow.listen(0.3)
    assert not slow.requests("CANCEL"), "a CANCEL before any provisional response (RFC 3261 9.1)"
    return pid, invite


def no_leg_left(world) -> None:
    """The engine holds no leg and no pjsua object once the calls are over."""
    deadline = time.monotonic() + 5
    while True:
        world.engine.send(cmd="stats")
        st = world.engine.expect(kind="stats")
        if st["live"] == st["waiting"] == st["leaked"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (st["sessions"], st["live"], st["waiting"], st["leaked"]) == (0, 0, 0, 0), st


@pytest.mark.parametrize("first", [100, 180])
def test_slow_phone_gets_the_reason_with_its_cancel(world, slow, first):
    pid, invite = answered_by_102_while_slow_phone_silent(world, slow)

    contact = (("Contact", f"<sip:103@127.0.0.1:{slow.port}>"),) if first == 180 else ()
    slow.answer(invite, first, contact)
    cancel = slow.expect("CANCEL")
    assert cancel.headers.get("reason") == COMPLETED_ELSEWHERE
    assert cancel.headers.get("call-id") == invite.headers.get("call-id")
    assert cancel.headers.get("cseq").split()[0] == invite.headers.get("cseq").split()[0]
    slow.answer(cancel, 200)
    slow.answer(invite, 487)
    slow.expect("ACK")

    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["answered_by"] == "102"
    no_leg_left(world)


def test_slow_phone_that_answers_first_gets_a_bye_with_the_reason(world, slow):
    pid, invite = answered_by_102_while_slow_phone_silent(world, slow)

    # The phone was picked up before its 1xx went out: 200 crosses the engine's
    # wish to cancel, so the leg is set up and ended with a BYE.
    sdp = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           b"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n" % free_port())
    slow.answer(invite, 200, (("Contact", f"<sip:103@127.0.0.1:{slow.port}>"),
                              ("Content-Type", "application/sdp")), sdp)
    slow.expect("ACK")
    bye = slow.expect("BYE")
    assert bye.headers.get("reason") == COMPLETED_ELSEWHERE
    assert not slow.requests("CANCEL")
    slow.answer(bye, 200)

    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["answered_by"] == "102"
    no_leg_left(world)


def test_slow_phone_that_refuses_is_let_go(world, slow):
    pid, invite = answered_by_102_while_slow_phone_silent(world, slow)

    slow.answer(invite, 486)  # busy after all: nothing is left to cancel
    slow.expect("ACK")
    world.provider.send(cmd="hangup", id=pid)
    assert world.engine.expect(kind="CallEnded")["answered_by"] == "102"
    no_leg_left(world)
    assert not slow.requests("CANCEL") and not slow.requests("BYE")
