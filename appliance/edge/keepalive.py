"""NAT keep-alives for phones registered over UDP: an OPTIONS ping to each source flow every `interval`.

A home or office router forgets a UDP mapping after 30 s to a few minutes
without traffic; then the engine's INVITE for a phone behind it is dropped
until the phone re-registers.  Pinging the flow the phone registered from
(like Asterisk's qualify) keeps the mapping open: 25 s is under the 30 s
that the least patient consumer routers keep.  TCP and TLS phones keep their
own mapping with RFC 5626 CRLF pings, which the connection answers.

No I/O here: `due()` says which flows to ping now, `request()` makes the
bytes, `answered()` recognises the answers (our branch prefix) so the edge
absorbs them instead of counting them as strays.
"""

from __future__ import annotations

import secrets

from appliance.edge.bindings import Flow
from appliance.sip import Response, SipError

BRANCH = "z9hG4bKka"  # apart from the proxy's z9hG4bKpbx: these answers end here
DEFAULT_INTERVAL = 25.0


class KeepAlive:
    """When each UDP flow with a binding is pinged next; `interval` 0 turns the pings off."""

    def __init__(self, interval: float = DEFAULT_INTERVAL):
        self.interval = interval
        self.next_at: dict[Flow, float] = {}
        self.sent = 0
        self.answers = 0
        self._cseq = 0
        self._call_id = secrets.token_hex(8)

    def due(self, flows: dict[Flow, str], now: float) -> list[tuple[Flow, str]]:
        """The (flow, contact) pairs to ping at `now`; flows no longer registered are forgotten.

        A new flow is first pinged one interval after it was seen: its
        REGISTER has just opened the mapping.
        """
        if self.interval <= 0:
            self.next_at.clear()
            return []
        self.next_at = {f: t for f, t in self.next_at.items() if f in flows}
        out = []
        for flow, contact in flows.items():
            at = self.next_at.get(flow)
            if at is None:
                self.next_at[flow] = now + self.interval
            elif at <= now:
                self.next_at[flow] = now + self.interval
                out.append((flow, contact))
        return out

    def request(self, flow: Flow, contact: str, via: tuple[str, int]) -> bytes:
        """An OPTIONS for the phone at `flow`, addressed to its Contact (the router forwards by the flow)."""
        self._cseq += 1
        self.sent += 1
        host, port = via
        return (
            f"OPTIONS {contact} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch={BRANCH}{secrets.token_hex(6)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:pbx@{host}:{port}>;tag={self._call_id[:8]}\r\n"
            f"To: <{contact}>\r\n"
            f"Call-ID: ka-{self._call_id}@{host}\r\n"
            f"CSeq: {self._cseq} OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    def answered(self, resp: Response) -> bool:
        """True for an answer to one of our pings (any status: the mapping is open either way)."""
        try:
            branch = resp.top_via.branch or ""
            method = resp.cseq[1]
        except SipError:
            return False
        if not branch.startswith(BRANCH) or method != "OPTIONS":
            return False
        self.answers += 1
        return True
