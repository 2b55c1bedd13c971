"""The link between two shops' appliances: the signed header on their calls, and the OPTIONS pings.

No pjsua2 and no sockets here: `sign` and `Checker.check` are the two ends
of the `X-PBX-Branch` header (docs/branches.md says why a header and not a
digest challenge), `Pinger` says when to ping and whether the link is up, and
`options` / `answer_of` are the bytes of a ping and of its answer.

The header is `t=<unix time>;n=<nonce>;mac=<hex>`, where mac is
HMAC-SHA256(secret, "t|n|from user|request-URI user").  The receiving side
takes it within WINDOW seconds of its own clock, once per nonce, so a copy
of a call's INVITE cannot be played again, and a changed caller or number
breaks the MAC.  The secret itself never travels.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from appliance.sip import Response, SipError, parse

HEADER = "X-PBX-Branch"
WINDOW = 120.0          # seconds of clock difference between two shops taken
PING_EVERY = 2.0        # seconds between OPTIONS pings
DOWN_AFTER = 5.0        # seconds without an answer before the link counts as down
BRANCH_PREFIX = "z9hG4bKbl"


def _mac(secret: str, t: str, nonce: str, from_user: str, ruri_user: str) -> str:
    msg = f"{t}|{nonce}|{from_user}|{ruri_user}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def sign(secret: str, from_user: str, ruri_user: str, now: float | None = None) -> str:
    """The header's value for a call from `from_user` to `ruri_user`."""
    t = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(8)
    return f"t={t};n={nonce};mac={_mac(secret, t, nonce, from_user, ruri_user)}"


def _fields(value: str) -> dict[str, str]:
    out = {}
    for part in value.split(";"):
        k, sep, v = part.strip().partition("=")
        if sep:
            out[k.strip().lower()] = v.strip()
    return out


class Checker:
    """The receiving end: whether a header was made with `secret` for this call, and not seen before."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}   # nonce -> its time, kept for WINDOW seconds

    def check(self, secret: str, value: str, from_user: str, ruri_user: str, now: float | None = None) -> str | None:
        """None when the header holds; else why not, in words."""
        now = time.time() if now is None else now
        f = _fields(value)
        t, nonce, mac = f.get("t", ""), f.get("n", ""), f.get("mac", "")
        if not (t.isdigit() and nonce and mac):
            return "the branch header is malformed"
        if abs(now - int(t)) > WINDOW:
            return f"the branch header is {int(now - int(t))} s off this appliance's clock"
        if not hmac.compare_digest(mac, _mac(secret, t, nonce, from_user, ruri_user)):
            return "the branch header was not made with this link's secret"
        self.seen = {n: at for n, at in self.seen.items() if now - at <= WINDOW}
        if nonce in self.seen:
            return "the branch header was used before (a replayed INVITE)"
        self.seen[nonce] = now
        return None


class Pinger:
    """One branch trunk's pings: when the next is due, and whether the link is up."""

    def __init__(self, now: float):
        self.next_at = now
        self.last_answer: float | None = None
        self.started = now
        self.up: bool | None = None        # None: not known yet
        self.code: int | None = None
        self.reason = ""
        self.cseq = 0
        self.call_id = secrets.token_hex(8)

    def due(self, now: float) -> bool:
        if now < self.next_at:
            return False
        self.next_at = now + PING_EVERY
        self.cseq += 1
        return True

    def answered(self, now: float, code: int, reason: str) -> bool:
        """An answer came (any status: the far appliance is there). True when the link just came up."""
        self.last_answer, self.code, self.reason = now, code, reason
        was, self.up = self.up, True
        return was is not True

    def lost(self, now: float, why: str = "") -> bool:
        """Nothing heard for DOWN_AFTER seconds (or the far port refused). True when the link just went down."""
        if why:
            self.code, self.reason = 503, why
        since = self.last_answer if self.last_answer is not None else self.started
        if not why and now - since < DOWN_AFTER:
            return False
        if not why:
            self.code, self.reason = 408, "no answer to OPTIONS"
        was, self.up = self.up, False
        return was is not False


def options(host: str, port: int, via: tuple[str, int], cseq: int, call_id: str) -> bytes:
    """An OPTIONS to the far appliance's trunk port (RFC 3261 11); its answer comes back to `via`."""
    vhost, vport = via
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {vhost}:{vport};branch={BRANCH_PREFIX}{secrets.token_hex(6)};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:pbx@{vhost}:{vport}>;tag={call_id[:8]}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: bl-{call_id}@{vhost}\r\n"
        f"CSeq: {cseq} OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def answer_of(data: bytes) -> tuple[int, str] | None:
    """(status, reason) of an answer to one of our pings; None for anything else."""
    try:
        msg = parse(data)
    except SipError:
        return None
    if not isinstance(msg, Response):
        return None
    try:
        if not (msg.top_via.branch or "").startswith(BRANCH_PREFIX) or msg.cseq[1] != "OPTIONS":
            return None
    except SipError:
        return None
    return msg.status, msg.reason
