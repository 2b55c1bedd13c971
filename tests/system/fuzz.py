"""Mutation fuzzing of SIP: a corpus of valid messages and a seeded mutator, no I/O.

`shots(seed, dests)` yields the messages to send, one `Shot` at a time: a
scenario from the corpus (a call, a cancelled call, a delayed offer, a
registration, the responses to a call...) addressed to one listening port from
one source address, each of its messages mutated or, now and then, left valid
so that the later messages of a scenario reach deeper states.  Everything
random comes from one `random.Random(seed)`: a seed names one sequence of
messages, byte for byte: the messages are made and mutated with a mark where
the appliance's port goes (its ports change from run to run), and the port is
written over the mark at the end, in five digits so that no length changes.
Via and Contact carry a fixed port, 5060; `rport` brings the answers back.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Iterator

CRLF = b"\r\n"
MUTATE = 0.8  # the share of messages that are mutated; the rest move a scenario on
PAD_OVER_64K = 70_000
PORT_MARK = "PPPPP"  # where the destination's port goes, see `shots`


@dataclass(frozen=True)
class Dest:
    """A listening port, what its valid messages dial, and where they may come from."""

    name: str
    port: int
    transport: str  # "udp" or "tcp"
    numbers: tuple[str, ...]  # dialled numbers that mean something there
    sources: tuple[str, ...]  # source addresses in 127.0.0.0/8
    weight: float = 1.0
    host: str = "127.0.0.1"

    @property
    def limit(self) -> int:
        # The largest UDP datagram loopback carries; TCP takes anything.
        return 65_000 if self.transport == "udp" else 200_000


@dataclass(frozen=True)
class Shot:
    """One message to send, and how it came about (for a report of what was sent before a failure)."""

    n: int
    take: int  # which scenario, counted from 0: its messages share a TCP connection
    dest: Dest
    source: str
    scenario: str
    message: str
    ops: tuple[str, ...]
    data: bytes

    def describe(self) -> str:
        ops = ",".join(self.ops) or "valid"
        return (f"#{self.n} {self.dest.name} port {self.dest.port} from {self.source}: "
                f"{self.scenario}/{self.message} [{ops}] {len(self.data)} bytes")


# -- the corpus ---------------------------------------------------------------


class Party:
    """One scenario's identity: who calls whom, its Call-ID, tags and branches."""

    def __init__(self, rng: random.Random, dest: Dest, source: str):
        self.rng, self.dest, self.source = rng, dest, source
        self.transport = dest.transport.upper()
        self.dialled = rng.choice(dest.numbers)
        self.caller = rng.choice(("101", "102", "+380501234567", "0671234567", "anonymous"))
        self.call_id = f"{self.token()}@{source}"
        self.tag, self.to_tag = self.token(), self.token()
        self.uri = f"sip:{self.dialled}@{dest.host}:{PORT_MARK}"
        self.cseq = rng.randint(1, 20)

    def token(self) -> str:
        return f"{self.rng.getrandbits(48):012x}"

    def branch(self) -> str:
        return "z9hG4bK" + self.token()

    def contact(self) -> str:
        suffix = ";transport=tcp" if self.transport == "TCP" else ""
        return f"<sip:{self.caller}@{self.source}:5060{suffix}>"

    def request(self, method: str, *, body: bytes = b"", ctype: str = "application/sdp", branch: str | None = None,
                cseq: int | None = None, in_dialog: bool = False, uri: str | None = None, extra=(),
                length: bool = True) -> bytes:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        to_tag = f";tag={self.to_tag}" if in_dialog else ""
        lines = [
            f"{method} {uri or self.uri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport} {self.source}:5060;branch={branch or self.branch()};rport",
            "Max-Forwards: 70",
            f'From: "Fuzz" <sip:{self.caller}@{self.source}>;tag={self.tag}',
            f"To: <{self.uri}>{to_tag}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: {self.contact()}",
            "User-Agent: pbx-fuzz/1.0",
            *(f"{name}: {value}" for name, value in extra),
        ]
        return _finish(lines, body, ctype, length)

    def response(self, status: int, reason: str, *, body: bytes = b"", method: str = "INVITE",
                 cseq: int = 1) -> bytes:
        # An answer to a request of ours nobody sent: the Via names us, the tags are made up.
        lines = [
            f"SIP/2.0 {status} {reason}",
            f"Via: SIP/2.0/{self.transport} {self.source}:5060;branch={self.branch()};rport",
            f"From: <sip:{self.dialled}@{self.dest.host}>;tag={self.tag}",
            f"To: <sip:{self.caller}@{self.source}>" + (f";tag={self.to_tag}" if status > 100 else ""),
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            *([f"Contact: {self.contact()}"] if 100 < status < 300 else []),
        ]
        return _finish(lines, body, "application/sdp", True)


def _finish(lines: list[str], body: bytes, ctype: str, length: bool) -> bytes:
    if body:
        lines.append(f"Content-Type: {ctype}")
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sdp(p: Party) -> bytes:
    session = p.rng.randint(1, 2**31)
    port = 2 * p.rng.randint(5000, 30000)
    return (
        f"v=0\r\no=- {session} {session} IN IP4 {p.source}\r\ns=pbx-fuzz\r\nc=IN IP4 {p.source}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    ).encode()


def _invite(p: Party, delayed: bool, branch: str | None = None, extra=()) -> bytes:
    return p.request("INVITE", body=b"" if delayed else sdp(p), branch=branch, extra=extra)


def call(p: Party) -> list[tuple[str, bytes]]:
    """A call and what its dialog carries; the to-tag is a guess, so the in-dialog requests are strangers."""
    dtmf = b"Signal=5\r\nDuration=160\r\n"
    return [
        ("INVITE", _invite(p, delayed=False)),
        ("ACK", p.request("ACK", cseq=p.cseq, in_dialog=True)),
        ("INFO", p.request("INFO", body=dtmf, ctype="application/dtmf-relay", in_dialog=True)),
        ("UPDATE", p.request("UPDATE", body=sdp(p), in_dialog=True)),
        ("PRACK", p.request("PRACK", in_dialog=True, extra=[("RAck", f"1 {p.cseq} INVITE")])),
        ("REFER", p.request("REFER", in_dialog=True, extra=[
            ("Refer-To", f"<sip:102@{p.dest.host}>"), ("Referred-By", f"<sip:{p.caller}@{p.source}>")])),
        ("BYE", p.request("BYE", in_dialog=True)),
    ]


def delayed_call(p: Party) -> list[tuple[str, bytes]]:
    """A delayed offer: the INVITE has no body, the answer would come in the ACK."""
    invite = _invite(p, delayed=True)
    return [("INVITE-no-body", invite),
            ("ACK", p.request("ACK", body=sdp(p), cseq=p.cseq, in_dialog=True)),
            ("BYE", p.request("BYE", in_dialog=True))]


def cancelled_call(p: Party) -> list[tuple[str, bytes]]:
    """An INVITE (with or without SDP) cancelled at once: the CANCEL races the engine's decision."""
    branch, delayed = p.branch(), p.rng.random() < 0.5
    invite = _invite(p, delayed, branch)
    cseq = p.cseq
    return [("INVITE-no-body" if delayed else "INVITE", invite),
            ("CANCEL", p.request("CANCEL", branch=branch, cseq=cseq)),
            ("ACK", p.request("ACK", branch=branch, cseq=cseq, in_dialog=True))]


def bare_invite(p: Party) -> list[tuple[str, bytes]]:
    """An INVITE with no body and no Content-Length at all (allowed on UDP)."""
    return [("INVITE-no-length", p.request("INVITE", length=False))]


def forged_phone(p: Party) -> list[tuple[str, bytes]]:
    """A bodyless INVITE that claims to come from a desk phone through the edge."""
    extra = [("X-PBX-Extension", p.rng.choice(("101", "102", "999"))), ("X-PBX-Link", p.token())]
    return [("INVITE-no-body-forged", _invite(p, delayed=True, extra=extra))]


def registration(p: Party) -> list[tuple[str, bytes]]:
    uri = f"sip:{p.dest.host}:{PORT_MARK}"
    auth = (f'Digest username="{p.caller}", realm="pbx", nonce="{p.token()}", uri="{uri}", '
            f'response="{p.token()}{p.token()}", algorithm=MD5, cnonce="{p.token()}", qop=auth, nc=00000001')
    return [("REGISTER", p.request("REGISTER", uri=uri, extra=[("Expires", "3600")])),
            ("REGISTER-auth", p.request("REGISTER", uri=uri, extra=[("Expires", "3600"), ("Authorization", auth)]))]


def options(p: Party) -> list[tuple[str, bytes]]:
    return [("OPTIONS", p.request("OPTIONS", extra=[("Accept", "application/sdp")]))]


def subscription(p: Party) -> list[tuple[str, bytes]]:
    frag = b"SIP/2.0 100 Trying\r\n"
    return [
        ("SUBSCRIBE", p.request("SUBSCRIBE", extra=[("Event", "presence"), ("Expires", "600"),
                                                    ("Accept", "application/pidf+xml")])),
        ("NOTIFY", p.request("NOTIFY", body=frag, ctype="message/sipfrag;version=2.0", in_dialog=True,
                             extra=[("Event", "refer"), ("Subscription-State", "active;expires=60")])),
    ]


def message(p: Party) -> list[tuple[str, bytes]]:
    return [("MESSAGE", p.request("MESSAGE", body="Привіт, office".encode(), ctype="text/plain;charset=utf-8"))]


def responses(p: Party) -> list[tuple[str, bytes]]:
    """The answers to an INVITE that nobody sent: stray responses must be dropped quietly."""
    return [("100", p.response(100, "Trying")), ("180", p.response(180, "Ringing")),
            ("200", p.response(200, "OK", body=sdp(p))), ("404", p.response(404, "Not Found")),
            ("487", p.response(487, "Request Terminated"))]


SCENARIOS: dict[str, Callable[[Party], list[tuple[str, bytes]]]] = {
    "call": call,
    "delayed-call": delayed_call,
    "cancelled-call": cancelled_call,
    "bare-invite": bare_invite,
    "forged-phone": forged_phone,
    "registration": registration,
    "options": options,
    "subscription": subscription,
    "message": message,
    "responses": responses,
}


# -- the mutator ----------------------------------------------------------------

METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK", "REFER",
           "SUBSCRIBE", "NOTIFY", "MESSAGE", "PUBLISH", "FOO", "invite", "INV ITE", "", "I" * 300)
BAD_URIS = ("", "sip:", "sip:@", "sip:101@", "sip:101@[::1", "sip:101@127.0.0.1:99999", "sip:101@127.0.0.1:-1",
            "sip:%ZZ@127.0.0.1", "sip:%00@127.0.0.1", "tel:+380501234567", "sips:101@127.0.0.1",
            "http://127.0.0.1/", "<sip:101@127.0.0.1>", "sip:101@127.0.0.1;lr;lr;maddr=", "*",
            "sip:101@127.0.0.1?Route=%3Csip:x%3E", "sip:" + "9" * 2000 + "@127.0.0.1", "sip:101@256.1.1.1")
VERSIONS = ("SIP/2.0", "SIP/3.0", "SIP/2.0 extra", "sip/2.0", "SIP/", "HTTP/1.1", "", "SIP/2.00")
STATUS_LINES = ("SIP/2.0 200", "SIP/2.0 99 Low", "SIP/2.0 1000 High", "SIP/2.0 abc Bad", "SIP/2.0  200  OK",
                "SIP/2.0 -1 Negative", "SIP/3.0 200 OK", "HTTP/1.1 200 OK", "SIP/2.0 699 " + "x" * 5000,
                "SIP/2.0 183 Session Progress", "SIP/2.0 401 Unauthorized", "SIP/2.0 0 Zero")
NASTY = ("", " ", "\t", ",", ";", "<", ">", '"', "%", "%00", "\\", "'; DROP TABLE extensions; --",
         "../../../etc/passwd", "${jndi:ldap://127.0.0.1/a}", "%s%s%s%n", "\u202e\u0000", "=?utf-8?b?AA==?=",
         "9" * 40, "-" * 3, "()<>@,;:\\\"/[]?={}")
BAD_VALUES: dict[str, tuple[str, ...]] = {
    "Via": ("SIP/2.0/UDP", "SIP/2.0/UDP 127.0.0.9", "SIP/2.0/UDP :5060;branch=z9hG4bK1",
            "SIP/2.0/UDP 127.0.0.9:99999;branch=z9hG4bK1", "SIP/2.0/UDP 127.0.0.9:-1;branch=",
            "SIP/2.0/XYZ 127.0.0.9:5060;branch=z9hG4bK1", "SIP/3.0/UDP 127.0.0.9;branch=z9hG4bK1",
            "SIP/2.0/UDP [::1;branch=z9hG4bK1", "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1;rport=abc",
            "SIP/2.0/UDP 127.0.0.9;branch=z9hG4bK1;received=not-an-address", "SIP/2.0/UDP 127.0.0.9;;;;;",
            "SIP/2.0/UDP 127.0.0.9;branch=z9hG4bK1, garbage", 'SIP/2.0/UDP 127.0.0.9;branch="quoted"',
            "SIP/2.0/UDP 127.0.0.9;branch=z9hG4bK1;maddr=224.0.0.1;ttl=999", "SIP/2.0/UDP 127.0.0.9;rport=0",
            "SIP/2.0/TCP 127.0.0.9:5060;branch=z9hG4bK1;alias", "SIP/2.0/UDP evil.invalid:5060;branch=z9hG4bKx"),
    "CSeq": ("1", "INVITE", "abc INVITE", "-1 INVITE", "4294967296 INVITE", "99999999999999999999999 INVITE",
             "1 BYE", "1 INVITE extra", "1  INVITE", "1 invite", "0 ACK", "1 FOO", "2147483648 BYE"),
    "From": ("<sip:", "sip:@", "<sip:101@127.0.0.1", '"unterminated <sip:1@h>', "<sip:1@h>;tag=",
             "<sip:1@h>;tag=a;tag=b", "<>", "tel:+380", "<tel:+380501234567>;tag=1", "<sip:%00@h>;tag=1",
             "<sips:1@h>;tag=1", "<mailto:a@b>", '"\\"<sip:1@h>', "<sip:1@h?X-PBX-Extension=101>;tag=x",
             '"' + "N" * 3000 + '" <sip:1@h>;tag=1', "<sip:101@127.0.0.1>"),
    "To": ("<sip:", "sip:@", "<>", "<sip:1@h>;tag=", "<sip:1@h>;tag=a;tag=b", "<tel:0441234567>",
           "<sip:0441234567@127.0.0.1>", "<sip:*8@127.0.0.1>", "<sip:**101@127.0.0.1>", "<sip:101@127.0.0.1>;tag=x",
           "<sip:00441234567890@127.0.0.1>", "<sip:" + "1" * 500 + "@127.0.0.1>"),
    "Call-ID": (" ", "a b", "x" * 3000, "@", '""'),
    "Max-Forwards": ("0", "-1", "abc", "256", "99999999999999999999"),
    "Contact": ("*", "<sip:1@h>;expires=abc", "<sip:1@h>;expires=-1", "<sip:1@h>, <sip:2@h>, *", "<sip:1@h:0>",
                "<sip:1@256.256.256.256>", "<sip:1@127.0.0.1;transport=sctp>", "sip:1@h;q=2.5",
                ", ".join(f"<sip:{i}@127.0.0.9>" for i in range(200)), "<sip:1@[::1]:5060>"),
    "Content-Type": ("application/sdp;charset", "text/html", "multipart/mixed;boundary=x", "application",
                     'application/sdp; x="unterminated', "*/*"),
    "Expires": ("-1", "abc", "4294967296", "0", "99999999999999999999"),
    "Authorization": ("Digest", "Digest username=", "Basic abc", 'Digest realm="pbx",,,,',
                      'Digest username="101", realm="pbx", nonce="' + "A" * 2000 + '", uri="sip:pbx", response="0"',
                      'Digest username="101", realm="pbx", nonce="x", uri="sip:pbx", response="0", algorithm=SHA-512-256',
                      'Digest username="101\x00", realm="pbx", nonce="x", uri="sip:pbx", response="0", qop=auth, nc=zz'),
    "Proxy-Authorization": ("Digest", 'Digest username="101", realm="pbx", nonce="1.2.3", uri="sip:x", response="y"'),
    "Require": ("100rel", "foo, bar", "replaces", "timer"),
    "Proxy-Require": ("foo", "sec-agree"),
    "Event": ("presence;id=", "refer", "dialog", "x" * 100),
    "Refer-To": ("<sip:102@127.0.0.1>", "<sip:102@evil.invalid>", "<sip:0671234567@127.0.0.1>",
                 "<sip:102@127.0.0.1?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>", "<tel:+380>", "<>"),
    "RAck": ("1", "1 1", "a b INVITE", "1 1 INVITE", "4294967296 1 INVITE"),
    "Route": ("<sip:127.0.0.1;lr>", "<sip:127.0.0.1;lr;pbxf=garbage>", "<sip:127.0.0.1:1;lr>",
              "<sip:127.0.0.1;lr>, <sip:127.0.0.2;lr>"),
    "Record-Route": ("<sip:127.0.0.1;lr>", "<sip:127.0.0.9:1;lr;pbxf=AAAA>"),
    "X-PBX-Extension": ("101", "999", "101\x00", "*8"),
    "X-PBX-Link": ("guessed",),
    "Replaces": ("abc;to-tag=1;from-tag=2", ";;;"),
    "Session-Expires": ("0", "abc", "90;refresher=uas"),
    "Subscription-State": ("terminated;reason=x", "active;expires=-1"),
    "Supported": ("100rel, timer, replaces", ""),
}
COMPACT = {b"via": b"v", b"from": b"f", b"to": b"t", b"call-id": b"i", b"contact": b"m", b"content-length": b"l",
           b"content-type": b"c", b"supported": b"k", b"subject": b"s", b"event": b"o", b"refer-to": b"r",
           b"referred-by": b"b", b"allow-events": b"u", b"content-encoding": b"e"}
NON_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
            b"\xc0\xaf", b"\x80" * 16)
BAD_SDP = ("m=audio 99999 RTP/AVP 0", "m=audio -1 RTP/AVP 0", "m=audio 4000 RTP/AVP " + " ".join(map(str, range(300))),
           "m=video 4002 RTP/AVP 96", "m=audio 4000 RTP/SAVP 0", "m=audio 0 RTP/AVP 0", "m=image 4000 udptl t38",
           "m=audio 4000 RTP/AVP", "m=audio 4000/2 RTP/AVP 0", "m=", "c=IN IP4 999.1.1.1", "c=IN IP6 ::1",
           "c=IN IP4", "c=", "o=", "o=- x y IN IP4", "v=1", "v=", "s=", "t=abc", "a=rtpmap:0", "a=rtpmap:96 opus/0",
           "a=rtpmap:101 telephone-event/0", "a=fmtp:101 0-99999", "a=sendonly", "a=inactive", "a=recvonly",
           "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xxxx", "a=rtcp:abc", "a=rtcp:0 IN IP4 0.0.0.0", "b=AS:-1",
           "a=" + "x" * 4000, "m=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 8", "m=audio 4000 RTP/AVP 0\r\n" * 40,
           "a=ptime:0", "a=maxptime:-20", "a=rtpmap:0 PCMU/0/0", "k=prompt", "z=0 0")


def _split(msg: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = msg.partition(CRLF + CRLF)
    return head.split(CRLF), body


def _join(lines: list[bytes], body: bytes) -> bytes:
    return CRLF.join(lines) + CRLF + CRLF + body


def _headers(lines: list[bytes]) -> list[int]:
    return list(range(1, len(lines))) or [0]


def _set_length(msg: bytes, value: bytes) -> bytes:
    lines, body = _split(msg)
    lines = [ln for ln in lines if not re.match(rb"(?i)\s*(content-length|l)\s*:", ln)]
    return _join(lines + [b"Content-Length: " + value], body)


def fix_length(msg: bytes) -> bytes:
    """The Content-Length the body really has: a body mutation then reaches the body's parser."""
    return _set_length(msg, str(len(_split(msg)[1])).encode())


def flip_bits(rng: random.Random, msg: bytes) -> bytes:
    data = bytearray(msg)
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def insert_bytes(rng: random.Random, msg: bytes) -> bytes:
    pos = rng.randint(0, len(msg))
    return msg[:pos] + rng.randbytes(rng.randint(1, 32)) + msg[pos:]


def delete_bytes(rng: random.Random, msg: bytes) -> bytes:
    pos = rng.randint(0, len(msg))
    return msg[:pos] + msg[pos + rng.randint(1, 64):]


def duplicate_header(rng: random.Random, msg: bytes) -> bytes:
    lines, body = _split(msg)
    i = rng.choice(_headers(lines))
    lines[i + 1:i + 1] = [lines[i]] * rng.choice((1, 1, 2, 10, 500))
    return _join(lines, body)


def drop_header(rng: random.Random, msg: bytes) -> bytes:
    lines, body = _split(msg)
    del lines[rng.choice(_headers(lines))]
    return _join(lines, body)


def swap_headers(rng: random.Random, msg: bytes) -> bytes:
    lines, body = _split(msg)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))  # the start line may move too
    lines[i], lines[j] = lines[j], lines[i]
    return _join(lines, body)


def truncate(rng: random.Random, msg: bytes) -> bytes:
    return msg[:rng.randrange(max(1, len(msg)))]


def huge_header(rng: random.Random, msg: bytes) -> bytes:
    lines, body = _split(msg)
    size = rng.choice((1024, 4096, 16_000, 20_000, PAD_OVER_64K))
    filler = rng.choice((b"x", b"9", b";a=b", b",<sip:1@h>", b" "))
    i = rng.choice(_headers(lines))
    lines[i] += (filler * (size // len(filler) + 1))[:size]
    return _join(lines, body)


def content_length(rng: random.Random, msg: bytes) -> bytes:
    n = len(_split(msg)[1])
    value = rng.choice((n + 1, n + 100, n - 1, 0, -1, -100, 2**31, 2**64, "abc", "", "1e3", " 12 ", "0x10",
                        "9" * 30, f"{n}, {n}", f"{n} {n}", "+5"))
    out = _set_length(msg, str(value).encode())
    if rng.random() < 0.3:  # and a second, different one
        lines, body = _split(out)
        out = _join(lines + [f"l: {n + rng.randint(1, 50)}".encode()], body)
    return out


def bad_start_line(rng: random.Random, msg: bytes) -> bytes:
    lines, body = _split(msg)
    parts = lines[0].decode("latin-1").split(" ", 2) + ["", "", ""]
    if rng.random() < 0.25 or parts[0].startswith("SIP/"):
        lines[0] = rng.choice(STATUS_LINES + ("", " ", "\x00", "GET / HTTP/1.1")).encode()
    else:
        method = rng.choice((parts[0], *METHODS))
        uri = rng.choice((parts[1], *BAD_URIS))
        version = rng.choice((parts[2], *VERSIONS))
        sep = rng.choice((" ", " ", "  ", "\t", ""))
        lines[0] = sep.join((method, uri, version)).encode("latin-1")
    return _join(lines, body)


def bad_header(rng: random.Random, msg: bytes) -> bytes:
    """A header with a value it must not have (replaced where present, added where not)."""
    lines, body = _split(msg)
    name = rng.choice(list(BAD_VALUES))
    value = rng.choice(BAD_VALUES[name] + NASTY).encode()
    line = name.encode() + b": " + value
    at = [i for i, ln in enumerate(lines) if ln.lower().startswith(name.lower().encode() + b":")]
    if at and rng.random() < 0.8:
        lines[rng.choice(at)] = line
    else:
        lines.insert(rng.randint(1, len(lines)), line)
    return _join(lines, body)


def non_utf8(rng: random.Random, msg: bytes) -> bytes:
    lines, body = _split(msg)
    i = rng.randrange(len(lines))
    pos = rng.randint(0, len(lines[i]))
    lines[i] = lines[i][:pos] + rng.choice(NON_UTF8) + lines[i][pos:]
    return _join(lines, body)


def compact_headers(rng: random.Random, msg: bytes) -> bytes:
    """Compact names (RFC 3261 7.3.3), odd case and space before the colon."""
    lines, body = _split(msg)
    style = rng.choice(("compact", "upper", "lower", "space"))
    for i in _headers(lines):
        name, colon, value = lines[i].partition(b":")
        if not colon or rng.random() < 0.3:
            continue
        if style == "compact":
            name = COMPACT.get(name.strip().lower(), name)
        elif style == "upper":
            name = name.upper()
        elif style == "lower":
            name = name.lower()
        else:
            name += b" " * rng.randint(1, 3)
        lines[i] = name + colon + value
    return _join(lines, body)


def fold_lines(rng: random.Random, msg: bytes) -> bytes:
    """Header values continued on the next line (obsolete line folding, RFC 3261 7.3.1)."""
    lines, body = _split(msg)
    i = rng.randrange(len(lines))  # the start line too, which must not be folded
    line = lines[i]
    pos = rng.randint(min(len(line), line.find(b":") + 1), len(line))
    lines[i] = line[:pos] + CRLF + rng.choice((b" ", b"\t", b"  \t ", b" " * 200)) + line[pos:]
    return _join(lines, body)


def nul_bytes(rng: random.Random, msg: bytes) -> bytes:
    pos = rng.randint(0, len(msg))
    return msg[:pos] + b"\x00" * rng.choice((1, 1, 4, 100)) + msg[pos:]


def corrupt_sdp(rng: random.Random, msg: bytes) -> bytes:
    """Break the SDP line by line and, mostly, keep the Content-Length true so that it gets parsed."""
    lines, body = _split(msg)
    if b"v=0" not in body:
        lines.append(b"Content-Type: application/sdp")
        body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    sdp_lines = body.split(CRLF)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(sdp_lines))
        action = rng.choice(("replace", "insert", "drop", "dup", "swap", "flip"))
        if action == "replace":
            sdp_lines[i] = rng.choice(BAD_SDP).encode()
        elif action == "insert":
            sdp_lines.insert(i, rng.choice(BAD_SDP).encode())
        elif action == "drop" and len(sdp_lines) > 1:
            del sdp_lines[i]
        elif action == "dup":
            sdp_lines.insert(i, sdp_lines[i])
        elif action == "swap":
            j = rng.randrange(len(sdp_lines))
            sdp_lines[i], sdp_lines[j] = sdp_lines[j], sdp_lines[i]
        else:
            sdp_lines[i] = flip_bits(rng, sdp_lines[i])
    out = _join(lines, CRLF.join(sdp_lines))
    return fix_length(out) if rng.random() < 0.8 else out


def empty_lines(rng: random.Random, msg: bytes) -> bytes:
    lines, body = _split(msg)
    lines[rng.randint(0, len(lines)):0] = [b""] * rng.choice((1, 1, 2, 50))
    return _join(lines, body)


def line_endings(rng: random.Random, msg: bytes) -> bytes:
    ending = rng.choice((b"\n", b"\r", b"\n\r", b"\r\r\n"))
    if rng.random() < 0.5:
        return msg.replace(CRLF, ending)
    return msg.replace(CRLF, ending, rng.randint(1, 5))


def very_long(rng: random.Random, msg: bytes) -> bytes:
    """A message over 64 KB: many headers, one long header, or a long body with a true length."""
    lines, body = _split(msg)
    kind = rng.choice(("headers", "header", "body"))
    if kind == "headers":
        lines += [f"X-Fuzz-{i}: {'y' * 60}".encode() for i in range(PAD_OVER_64K // 70)]
        return _join(lines, body)
    if kind == "header":
        return _join(lines + [b"Subject: " + b"z" * PAD_OVER_64K], body)
    return fix_length(_join(lines, body + b"a=x-pad:" + b"p" * PAD_OVER_64K + CRLF))


def long_number(rng: random.Random, msg: bytes) -> bytes:
    """A number (CSeq, Content-Length, a port, Expires, Max-Forwards...) thousands of digits long."""
    numbers = list(re.finditer(rb"\d+", msg))
    if not numbers:
        return msg
    m = rng.choice(numbers)
    return msg[:m.start()] + b"9" * rng.choice((20, 5000, 20_000)) + msg[m.end():]


def junk_body(rng: random.Random, msg: bytes) -> bytes:
    lines, _ = _split(msg)
    body = rng.randbytes(rng.choice((1, 100, 1400, 9000)))
    lines.append(b"Content-Type: " + rng.choice((b"application/sdp", b"multipart/mixed;boundary=b", b"text/plain")))
    return fix_length(_join(lines, body))


OPS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip": flip_bits, "insert": insert_bytes, "delete": delete_bytes, "dup-header": duplicate_header,
    "drop-header": drop_header, "swap-headers": swap_headers, "truncate": truncate, "huge-header": huge_header,
    "content-length": content_length, "start-line": bad_start_line, "bad-header": bad_header,
    "non-utf8": non_utf8, "compact": compact_headers, "fold": fold_lines, "nul": nul_bytes, "sdp": corrupt_sdp,
    "empty-lines": empty_lines, "line-endings": line_endings, "very-long": very_long, "junk-body": junk_body,
    "long-number": long_number,
}
# Header-level mutations are the ones most likely to get past the parser and into the call logic.
WEIGHTS = {"bad-header": 6, "sdp": 4, "content-length": 3, "start-line": 3, "dup-header": 2, "drop-header": 2,
           "compact": 2, "very-long": 0.5, "huge-header": 0.7}


def mutate(rng: random.Random, msg: bytes, limit: int) -> tuple[bytes, tuple[str, ...]]:
    """One to three mutations of `msg`, cut to `limit` bytes; returns the bytes and the names of the mutations."""
    names = list(OPS)
    weights = [WEIGHTS.get(n, 1) for n in names]
    chosen = tuple(rng.choices(names, weights, k=rng.choices((1, 2, 3), (6, 3, 1))[0]))
    for name in chosen:
        msg = OPS[name](rng, msg)
    return msg[:limit], chosen


def shots(seed: int, dests: list[Dest], count: int) -> Iterator[Shot]:
    """`count` messages for `dests`, scenario after scenario; the same seed gives the same messages."""
    rng = random.Random(seed)
    names = list(SCENARIOS)
    n = take = 0
    while n < count:
        dest = rng.choices(dests, [d.weight for d in dests])[0]
        source = rng.choice(dest.sources)
        scenario = rng.choice(names)
        for message, data in SCENARIOS[scenario](Party(rng, dest, source)):
            ops: tuple[str, ...] = ()
            if rng.random() < MUTATE:
                data, ops = mutate(rng, data, dest.limit)
            data = data.replace(PORT_MARK.encode(), b"%05d" % dest.port)
            yield Shot(n, take, dest, source, scenario, message, ops, data)
            n += 1
            if n >= count:
                return
        take += 1
