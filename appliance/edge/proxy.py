"""The record-routing stateless proxy between phones and the engine (RFC 3261 16.11).

The edge keeps no transaction state for relayed requests; what it needs later
it writes into the messages: its Via branch is a hash of the request (the
same for an INVITE, its CANCEL and its ACK, so the phone or engine matches
them), and its Record-Route URIs carry a signed flow token
(`pbxf=<extension>~<transport>~<host>~<port>~<signature>`) naming the
phone's extension and NAT address, bound to the dialog's Call-ID.  An
in-dialog request that comes back through that Route is relayed without a new
challenge: to the engine with the extension, or from the engine to the phone
at the flow in the token.

Only requests of recently relayed INVITEs are remembered (for CANCEL and for
the ACK of a failure), so that those two, which cannot be challenged, still
come only from the phone that sent the INVITE.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from appliance.edge.bindings import BindingTable, Flow
from appliance.sip import Request, Response, SipError, SipURI, Via, parse_name_addr, parse_uri, parse_via
from appliance.sip.errors import is_decimal
from appliance.sip.uri import format_params

MAGIC = "z9hG4bKpbx"
EXTENSION_HEADER = "X-PBX-Extension"
# The edge's proof to the engine that it relayed the request: a per-boot
# secret that only the two know (phones never see it: every X-PBX- header is
# stripped from what comes in and what goes out).  Without it, any process on
# the machine could send the engine an INVITE naming an extension and call out
# as that extension.
LINK_HEADER = "X-PBX-Link"
# How the phone reached the edge ("udp", "tcp", "tls"): the engine offers and
# accepts SRTP (RFC 4568 SDES keys in the SDP) on legs of phones on TLS only,
# where the keys travel encrypted.
TRANSPORT_HEADER = "X-PBX-Transport"
# Requests that start a dialog and so get our Record-Route.
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})
INVITE_MEMORY = 300.0  # seconds a relayed INVITE stays known for its CANCEL and ACK


@dataclass(frozen=True, slots=True)
class FlowToken:
    extension: str
    flow: Flow


def is_internal_header(name: str) -> bool:
    return name[:6].lower() == "x-pbx-"


def with_received(via_text: str, flow: Flow) -> str:
    """The Via with received and rport set to where it really came from (RFC 3261 18.2.1, RFC 3581)."""
    via = parse_via(via_text)
    params = [(n, v) for n, v in via.params if n.lower() not in ("received", "rport")]
    params += [("received", flow.host), ("rport", str(flow.port))]
    return str(Via(via.transport, via.host, via.port, tuple(params)))


class Proxy:
    def __init__(self, *, table: BindingTable, secret: bytes, inner: tuple[str, int], outer: tuple[str, int], engine: Flow, send,
                 link_key: str = "", outer_tls: tuple[str, int] | None = None):
        self.table = table
        self.secret = secret
        self.link_key = link_key
        self.inner = inner
        self.outer = outer
        self.outer_tls = outer_tls  # where TLS phones reach us (the TLS port), if TLS is on
        self.engine = engine
        self.send = send  # send(flow, bytes) -> bool
        self.invites: dict[tuple[str, int, str], tuple[FlowToken, float]] = {}
        self._our_hosts = {(inner[0].lower(), inner[1]), (outer[0].lower(), outer[1])}
        if outer_tls is not None:
            self._our_hosts.add((outer_tls[0].lower(), outer_tls[1]))

    # -- tokens and branches ------------------------------------------------

    def _sign(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()[:16]

    def token(self, extension: str, flow: Flow, call_id: str) -> str:
        body = f"{extension}~{flow.transport}~{flow.host}~{flow.port}"
        return f"{body}~{self._sign(body + '~' + call_id)}"

    def read_token(self, value: str, call_id: str) -> FlowToken | None:
        parts = value.split("~")
        if len(parts) != 5 or not is_decimal(parts[3], 5):
            return None
        body = "~".join(parts[:4])
        if not hmac.compare_digest(parts[4], self._sign(body + "~" + call_id)):
            return None
        return FlowToken(parts[0], Flow(parts[1], parts[2], int(parts[3])))

    def branch(self, req: Request, top_via: Via) -> str:
        # Loop part: what a spiral changes and a loop does not (RFC 3261 16.6 item 8).
        loop = f"{req.uri}|{req.call_id}|{req.cseq[0]}|{req.from_.tag}|{req.to.tag}"
        txn = f"{top_via.branch}|{top_via.host}|{top_via.port}"
        return f"{MAGIC}{self._sign(loop)[:8]}.{self._sign(txn)[:12]}"

    def is_our_via(self, via: Via) -> bool:
        return (via.branch or "").startswith(MAGIC) and (via.host.lower(), via.port or 5060) in self._our_hosts

    def is_our_uri(self, uri) -> bool:
        return isinstance(uri, SipURI) and ((uri.host.lower(), uri.port or 5060) in self._our_hosts or uri.user is None and any(n == "pbxf" for n, _ in uri.params))

    def outer_for(self, transport: str) -> tuple[str, int]:
        """Our address as a phone on `transport` sees it (TLS has a port of its own)."""
        return self.outer_tls if transport == "tls" and self.outer_tls else self.outer

    def record_route(self, token: str, transport: str, *, inner: bool) -> str:
        host, port = self.inner if inner else self.outer_for(transport)
        params = [("lr", None)]
        if not inner and transport in ("tcp", "tls"):
            params.append(("transport", transport))
        params.append(("pbxf", token))
        return f"<sip:{host}:{port}{format_params(tuple(params))}>"

    # -- routes -------------------------------------------------------------

    def split_routes(self, req: Request) -> tuple[list[str], FlowToken | None]:
        """Our own Route entries removed; the flow token among them, if valid."""
        kept: list[str] = []
        token: FlowToken | None = None
        for value in req.headers.values("route"):
            try:
                uri = parse_name_addr(value, where="Route").uri
            except SipError:
                kept.append(value)
                continue
            if self.is_our_uri(uri):
                tok = uri.params and dict((n.lower(), v) for n, v in uri.params).get("pbxf")
                if tok and token is None:
                    token = self.read_token(tok, req.call_id)
                continue
            kept.append(value)
        return kept, token

    # -- relaying -----------------------------------------------------------

    def _forward(self, req: Request, source: Flow, target: Flow, routes: list[str], *, via_host: tuple[str, int], headers_extra=(), record_route: list[str] | None = None) -> bool:
        h = req.headers
        mf_text = h.get("max-forwards")
        mf = int(mf_text) if mf_text is not None else 70
        if mf <= 0:
            raise SipError(483, "Too Many Hops", req)
        vias = h.values("via")
        top = parse_via(vias[0])
        for v in vias:
            via = parse_via(v)
            if self.is_our_via(via) and via.branch.split(".")[0] == self.branch(req, top).split(".")[0]:
                raise SipError(482, "Loop Detected", req)
        branch = self.branch(req, top)
        h = h.remove_if(is_internal_header).remove("route").remove("proxy-authorization")
        vias = [with_received(vias[0], source), *vias[1:]]
        h = h.replace_values("Via", [f"SIP/2.0/{target.transport.upper()} {via_host[0]}:{via_host[1]};branch={branch};rport", *vias])
        if routes:
            h = h.replace_values("Route", routes)
        for rr in reversed(record_route or []):
            h = h.prepend("Record-Route", rr)
        h = h.set("Max-Forwards", str(mf - 1))
        for name, value in headers_extra:
            h = h.append(name, value)
        return self.send(target, req.with_(headers=h).to_bytes())

    def to_engine(self, req: Request, source: Flow, extension: str, *, record_route: bool) -> bool:
        """Relay a phone's request (authenticated or in a dialog we record-routed) to the engine."""
        routes, _ = self.split_routes(req)
        rr = None
        if record_route:
            token = self.token(extension, source, req.call_id)
            # The engine uses the first (loopback), the phone the last (its side).
            rr = [self.record_route(token, source.transport, inner=True), self.record_route(token, source.transport, inner=False)]
        if req.method == "INVITE":
            key = (req.call_id, req.cseq[0], req.top_via.branch or "")
            self.invites[key] = (FlowToken(extension, source), INVITE_MEMORY)
        return self._forward(
            req, source, self.engine, routes, via_host=self.inner,
            headers_extra=((EXTENSION_HEADER, extension), (LINK_HEADER, self.link_key), (TRANSPORT_HEADER, source.transport)),
            record_route=rr,
        )

    def remembered_invite(self, req: Request, source: Flow) -> FlowToken | None:
        """The relayed INVITE a phone's CANCEL or ACK belongs to, if the same phone sent it."""
        key = (req.call_id, req.cseq[0], req.top_via.branch or "")
        found = self.invites.get(key)
        if found is None or found[0].flow.host != source.host:
            return None
        return found[0]

    def from_engine(self, req: Request, now: float) -> tuple[Flow | None, str | None]:
        """Relay the engine's request to a phone; returns (target, None) or (None, reason to refuse)."""
        routes, token = self.split_routes(req)
        if token is not None:
            target, extension = token.flow, token.extension
        else:
            try:
                uri = parse_uri(req.uri)
            except SipError:
                return None, "bad Request-URI"
            hint = uri.user_unescaped if isinstance(uri, SipURI) else None
            binding = self.table.find_contact(uri.key(), hint)
            if binding is None:
                to_uri = req.to.uri
                hint = to_uri.user_unescaped if isinstance(to_uri, SipURI) else None
                binding = self.table.find_contact(uri.key(), hint)
            if binding is None and self.is_our_uri(uri):
                # The engine calling "EXT@pbx" itself: a transfer's Refer-To from a
                # phone names us, and pjsua places that call on its own.  Only the
                # engine may take it, so it goes straight back there.
                if not self._forward(req, self.engine, self.engine, routes, via_host=self.inner):
                    return None, "engine unreachable"
                return self.engine, None
            if binding is None:
                return None, "no such binding"
            target, extension = binding.flow, binding.extension
        rr = None
        if req.method in DIALOG_CREATING and req.to.tag is None:
            tok = self.token(extension, target, req.call_id)
            rr = [self.record_route(tok, target.transport, inner=False), self.record_route(tok, target.transport, inner=True)]
        if not self._forward(req, self.engine, target, routes, via_host=self.outer_for(target.transport), record_route=rr):
            return None, "phone not connected"
        return target, None

    def response(self, resp: Response, source: Flow) -> bool:
        """Relay a response along its Via stack: our Via off, on to the next one's address."""
        vias = resp.headers.values("via")
        if len(vias) < 2:
            return False
        top = parse_via(vias[0])
        if not self.is_our_via(top):
            return False
        nxt = parse_via(vias[1])
        host, port = nxt.response_address()
        target = Flow(nxt.transport.lower(), host, port)
        from_engine = source == self.engine
        if not from_engine and target != self.engine:
            return False  # phones' responses go to the engine only: we are no relay between outsiders
        h = resp.headers.replace_values("Via", vias[1:])
        if not from_engine:
            h = h.remove_if(is_internal_header)
        return self.send(target, resp.with_(headers=h).to_bytes())

    def sweep(self, elapsed: float) -> None:
        self.invites = {k: (t, left - elapsed) for k, (t, left) in self.invites.items() if left - elapsed > 0}
