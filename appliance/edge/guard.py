"""The edge's door policy: scanners, floods, repeated authentication failures, TCP limits.

All decisions take `now` from the caller.  What a message proves about
itself (`Proof`) decides how far a ban reaches:

- A flood is counted in requests that prove nothing (no credentials that
  verify, no dialog of ours).  Anybody can write an address into a UDP
  packet, so a flood ban must not lock out the phones at that address: it
  silences only what proves nothing (but for a trickle, the challenges a
  real phone there needs), and credentials that verify still pass.
- Failed passwords need a nonce we sent to that address, so they cannot be
  spoofed from elsewhere; that ban silences everything, password checks
  included (an answer only to the right password would be an oracle).
- Under any ban, messages of dialogs and transactions we relayed (our signed
  flow token, a remembered INVITE's CANCEL and ACK, responses to our Via)
  pass: calls that are up end properly.

A trunk's addresses are `trusted`: never counted, never banned.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import IntEnum

# User-Agent substrings of well-known SIP scanners and war-diallers (lower case).
SCANNERS = (
    "friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "sundayddr", "iwar",
    "sivus", "vaxsipuseragent", "pplsip", "smap", "sipsak 0.9.6-1", "fperson", "voip-scanner",
)

FLOOD = "flood"
AUTH_FAILURES = "auth failures"


class Proof(IntEnum):
    """What a message shows for itself, weakest first."""

    NONE = 0  # a new request without credentials, or with credentials that did not verify
    CREDENTIALS = 1  # digest credentials that verify
    DIALOG = 2  # part of a dialog or transaction we relayed


# The least proof that still passes a ban, by the ban's reason.  A reason not
# listed here (a row written into the bans table by hand) is as strict as the strictest.
PASSES_BAN = {FLOOD: Proof.CREDENTIALS, AUTH_FAILURES: Proof.DIALOG}

# What a message must contain to possibly show a proof: looked for in the raw
# bytes of a banned address's messages, so that a flood from it costs a regex
# search, not a parse.  A response may answer our Via; an ACK or CANCEL may
# belong to an INVITE we relayed; pbxf= is our flow token in a Route.
_MAY_SHOW = {
    Proof.DIALOG: re.compile(rb"\A\s*(?:SIP/2\.0\s|ACK\s|CANCEL\s)|pbxf=", re.I),
    Proof.CREDENTIALS: re.compile(rb"\A\s*(?:SIP/2\.0\s|ACK\s|CANCEL\s)|pbxf=|authorization\s*:", re.I),
}


def is_scanner(user_agent: str | None) -> bool:
    if not user_agent:
        return False
    ua = user_agent.lower()
    return any(s in ua for s in SCANNERS)


@dataclass
class GuardPolicy:
    """The guard's numbers; each can be changed by a store setting (the keys: docs/edge.md)."""

    max_failures: int = 5
    failure_window: float = 600.0
    failure_ban: float = 1800.0
    # Requests proving nothing, per window and address.  50 phones behind one
    # NAT re-registering after a power cut send 50 REGISTERs and about as many
    # SUBSCRIBEs that are each challenged once, within a second or two; a
    # source placing 10 calls a second sends 20 (the challenged INVITE and the
    # ACK of its 407).  A scanner at full speed still crosses it in a moment.
    flood_requests: int = 200
    flood_window: float = 2.0
    # Added to the limit for every phone registered from the address: a bigger
    # office behind one NAT makes more challenged requests.
    flood_per_phone: int = 4
    flood_ban: float = 600.0
    # While an address is flood-banned, this many of its requests proving
    # nothing are still answered per window: the challenge a real phone there
    # needs before its credentials can pass.  A spoofed flood gets no more.
    flood_trickle: int = 4
    # TCP: a message must be complete this long after its first byte; a
    # connection that carries no binding is closed after this much silence;
    # one address may hold this many connections.
    tcp_message_timeout: float = 10.0
    tcp_idle_timeout: float = 120.0
    tcp_per_source: int = 64
    # Trunk host names are looked up again this often (their addresses are trusted).
    trunk_refresh: float = 300.0


@dataclass
class Guard:
    policy: GuardPolicy = field(default_factory=GuardPolicy)
    trusted: frozenset[str] = frozenset()
    bans: dict[str, tuple[float, str]] = field(default_factory=dict)  # address -> (until, reason)
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _windows: dict[str, list[float]] = field(default_factory=dict)  # address -> [start, count]

    # -- bans ---------------------------------------------------------------

    def ban_reason(self, address: str, now: float) -> str | None:
        """Why this address is banned, or None (an expired ban is forgotten here)."""
        ban = self.bans.get(address)
        if ban is None or address in self.trusted:
            return None
        if ban[0] <= now:
            del self.bans[address]
            return None
        return ban[1]

    def passes(self, address: str, now: float, proof: Proof) -> bool:
        """Whether a message with this proof gets past the address's ban, if any (counts nothing)."""
        reason = self.ban_reason(address, now)
        return reason is None or proof >= PASSES_BAN.get(reason, Proof.DIALOG)

    def replace_bans(self, bans: dict[str, tuple[float, str]]) -> None:
        """Take the bans as stored; a lifted ban starts its address afresh (no counts left to re-ban it)."""
        for address in self.bans.keys() - bans.keys():
            self._windows.pop(address, None)
            self._failures.pop(address, None)
        self.bans = dict(bans)

    def worth_parsing(self, address: str, now: float, data: bytes) -> bool:
        """False for a banned address's message that cannot get past its ban."""
        reason = self.ban_reason(address, now)
        if reason is None:
            return True
        if _MAY_SHOW[PASSES_BAN.get(reason, Proof.DIALOG)].search(data):
            return True
        return reason == FLOOD and self._count(address, now) < self.policy.flood_trickle

    # -- counting -----------------------------------------------------------

    def admit(self, address: str, now: float, proof: Proof, phones: int = 0) -> tuple[bool, tuple[float, str] | None]:
        """Whether to act on a message; counts those that prove nothing.

        Returns (act on it, a new ban this message caused).  `phones` is how
        many phones registered from the address (each raises its limit).
        """
        if address in self.trusted:
            return True, None
        if proof > Proof.NONE:
            return self.passes(address, now, proof), None
        reason = self.ban_reason(address, now)
        if reason is not None and reason != FLOOD:
            return False, None
        count = self._add(address, now)
        if reason == FLOOD:
            return count <= self.policy.flood_trickle, None
        if count > self.flood_limit(phones):
            return False, self._ban(address, now + self.policy.flood_ban, FLOOD)
        return True, None

    def flood_limit(self, phones: int) -> int:
        return self.policy.flood_requests + self.policy.flood_per_phone * phones

    def _count(self, address: str, now: float) -> int:
        w = self._windows.get(address)
        return 0 if w is None or now - w[0] >= self.policy.flood_window else int(w[1])

    def _add(self, address: str, now: float) -> int:
        w = self._windows.get(address)
        if w is None or now - w[0] >= self.policy.flood_window:
            w = self._windows[address] = [now, 0]
        w[1] += 1
        return int(w[1])

    def auth_failed(self, address: str, now: float) -> tuple[float, str] | None:
        """Count a failed authentication; returns a new ban at the limit."""
        if address in self.trusted:
            return None
        cutoff = now - self.policy.failure_window
        times = [t for t in self._failures.get(address, []) if t > cutoff]
        times.append(now)
        if len(times) >= self.policy.max_failures:
            self._failures.pop(address, None)
            return self._ban(address, now + self.policy.failure_ban, AUTH_FAILURES)
        self._failures[address] = times
        return None

    def _ban(self, address: str, until: float, reason: str) -> tuple[float, str]:
        self.bans[address] = (until, reason)
        return until, reason

    def sweep(self, now: float) -> None:
        """Forget counters and bans that no longer matter (keeps memory flat under a scan)."""
        self._windows = {a: w for a, w in self._windows.items() if now - w[0] < self.policy.flood_window}
        cutoff = now - self.policy.failure_window
        self._failures = {a: t for a, t in self._failures.items() if t and t[-1] > cutoff}
        self.bans = {a: b for a, b in self.bans.items() if b[0] > now}


def trunk_hosts(trunks: list[dict]) -> frozenset[str]:
    """The host names and addresses of the enabled trunks, ports taken off, to be trusted once resolved."""
    names = set()
    for t in trunks:
        if not t.get("enabled", 1):
            continue
        for value in [t.get("host") or "", *(t.get("addresses") or [])]:
            name = host_part(str(value).strip())
            if name:
                names.add(name)
    return frozenset(names)


def host_part(value: str) -> str:
    """'sip.example.net:5060' -> 'sip.example.net'; '[2001:db8::1]:5060' and bare IPv6 too."""
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
