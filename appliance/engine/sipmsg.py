"""The few facts the B2BUA reads from a received INVITE, read with appliance/sip.

pjsua2 hands the engine the whole message (`SipRxData.wholeMsg`) and the
source address; `parse_invite` turns them into the request URI's user and
port, the From/To users and display name, and the headers (the edge's among
them), through the same parser as the edge's.  pjsua has already accepted
the message, so a header our parser refuses costs only that fact (an empty
user, no display name), never the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs

from appliance.sip import Headers, Request, SipError, SipURI, parse_name_addr, parse_uri
from appliance.sip.message import parse_head


@dataclass(frozen=True)
class Invite:
    ruri_user: str
    ruri_port: int
    from_user: str
    from_name: str
    to_user: str
    headers: Headers = field(default_factory=lambda: Headers(()))
    source_host: str = ""
    source_port: int = 0

    def header(self, name: str) -> str:
        return self.headers.get(name) or ""


def split_address(addr: str) -> tuple[str, int]:
    """'127.0.0.1:5060' -> ('127.0.0.1', 5060); IPv6 '[::1]:5060' too."""
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    try:
        return host, int(port)
    except ValueError:
        return addr, 0


def _uri(text: str) -> SipURI | None:
    try:
        uri = parse_uri(text, where="URI")
    except SipError:
        return None
    return uri if isinstance(uri, SipURI) else None


def uri_port(uri: SipURI | None) -> int:
    """The port of a SIP URI, 5060 (5061 for sips) when it has none (RFC 3261 section 19.1.2)."""
    if uri is None:
        return 0
    return uri.port or (5061 if uri.scheme == "sips" else 5060)


def _name_addr(value: str | None) -> tuple[str, str]:
    """(user, display name) of a From/To/P-Asserted-Identity value; empty where it does not parse."""
    if not value:
        return "", ""
    try:
        na = parse_name_addr(value, where="header")
    except SipError:
        return "", ""
    user = (na.uri.user_unescaped or "") if isinstance(na.uri, SipURI) else ""
    display = (na.display or "").strip()
    if display.startswith('"') and display.endswith('"') and len(display) >= 2:
        display = display[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return user, display.strip()


def parse_invite(whole: str, source: str) -> Invite:
    host, port = split_address(source)
    msg = parse_head(whole.encode("utf-8", "replace"))  # pjsua has read the body already
    if not isinstance(msg, Request):
        return Invite("", 0, "", "", "", source_host=host, source_port=port)
    ruri = _uri(msg.uri)
    pai_user, pai_name = _name_addr(msg.headers.get("p-asserted-identity"))
    from_user, from_name = _name_addr(msg.headers.get("from"))
    to_user, _ = _name_addr(msg.headers.get("to"))
    return Invite(
        ruri_user=(ruri.user_unescaped or "") if ruri is not None else "",
        ruri_port=uri_port(ruri),
        from_user=pai_user or from_user,
        from_name=pai_name or from_name,
        to_user=to_user,
        headers=msg.headers,
        source_host=host,
        source_port=port,
    )


def parse_refer_to(value: str) -> tuple[str, str, int, dict[str, str]]:
    """(user, host, port, headers) of a Refer-To value; header values URL-decoded.

    An unparsable value gives an empty user and host, which no transfer target matches."""
    try:
        uri = parse_name_addr(value, where="Refer-To").uri
    except SipError:
        return "", "", 0, {}
    if not isinstance(uri, SipURI):
        return "", "", 0, {}
    headers = {k.lower(): vals[0] for k, vals in parse_qs(uri.headers, keep_blank_values=True).items()}
    return uri.user_unescaped or "", uri.host.strip("[]"), uri_port(uri), headers
