"""The few facts the B2BUA reads from a received INVITE's text.

pjsua2 hands the engine the whole message (`SipRxData.wholeMsg`) and the
source address; this turns them into the request URI's user, the From/To
users and display name, and the headers the edge adds.  Only what routing
needs; full parsing belongs to appliance/sip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_COMPACT = {"f": "from", "t": "to", "m": "contact", "i": "call-id", "v": "via"}
_URI_USER = re.compile(r"sips?:(?:([^@;>]*)@)?([^;>\s]+)", re.I)
_DISPLAY = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"|^\s*([^<"]+?)\s*<')


@dataclass(frozen=True)
class Invite:
    ruri_user: str
    ruri_port: int
    from_user: str
    from_name: str
    to_user: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name -> first value
    source_host: str = ""
    source_port: int = 0

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def uri_user(value: str) -> str:
    m = _URI_USER.search(value)
    return (m.group(1) or "") if m else ""


def uri_port(value: str) -> int:
    """The port of a SIP URI, 5060 when it has none (RFC 3261 section 19.1.2)."""
    m = _URI_USER.search(value)
    if not m:
        return 0
    hostport = m.group(2)
    if hostport.startswith("["):
        _, _, rest = hostport.partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        _, _, port = hostport.partition(":")
    return int(port) if port.isdigit() else (5061 if value.lower().startswith("sips:") else 5060)


def display_name(value: str) -> str:
    m = _DISPLAY.match(value)
    if not m:
        return ""
    return (m.group(1) if m.group(1) is not None else m.group(2) or "").strip()


def split_address(addr: str) -> tuple[str, int]:
    """'127.0.0.1:5060' -> ('127.0.0.1', 5060); IPv6 '[::1]:5060' too."""
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    try:
        return host, int(port)
    except ValueError:
        return addr, 0


def parse_invite(whole: str, source: str) -> Invite:
    head = whole.split("\r\n\r\n", 1)[0].replace("\r\n", "\n")
    lines = head.split("\n")
    request = lines[0].split()
    ruri = request[1] if len(request) > 1 else ""
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line or line[0] in " \t" or ":" not in line:
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        name = _COMPACT.get(name, name)
        headers.setdefault(name, value.strip())
    frm = headers.get("from", "")
    pai = headers.get("p-asserted-identity", "")
    host, port = split_address(source)
    return Invite(
        ruri_user=uri_user(ruri),
        ruri_port=uri_port(ruri),
        from_user=uri_user(pai) or uri_user(frm),
        from_name=display_name(pai) or display_name(frm),
        to_user=uri_user(headers.get("to", "")),
        headers=headers,
        source_host=host,
        source_port=port,
    )
