"""Digest authentication for SIP (RFC 7616 as used by SIP per RFC 8760; RFC 3261 22.4).

The server side: challenges, parsing credentials, checking a response
against a stored HA1.  Nonces are stateless: a timestamp and the client's
address signed with a server secret, so any nonce we issued can be checked
without remembering it, and one older than its lifetime is answered with a
new challenge carrying `stale=true` (the phone retries without asking the
user).  The clock is passed in; nothing here reads the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from appliance.sip.errors import SipError

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
NONCE_LIFETIME = 300.0

_PARAM = re.compile(r'\s*([A-Za-z0-9\-_]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|\Z)', re.S)


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    return ALGORITHMS[algorithm](f"{username}:{realm}:{password}".encode()).hexdigest()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        if "\\" not in value:
            return value[1:-1]
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


@dataclass(frozen=True, slots=True)
class Credentials:
    """An Authorization / Proxy-Authorization header's Digest parameters."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None


def scheme_of(value: str) -> str:
    """The authentication scheme an Authorization or WWW-Authenticate value starts with, in lower case."""
    return value.strip().split(None, 1)[0].lower() if value.strip() else ""


def parse_digest_params(value: str) -> dict[str, str]:
    """The parameters of a Digest challenge or credentials, names in lower case, values unquoted."""
    if scheme_of(value) != "digest":
        raise SipError(400, "unsupported authentication scheme")
    rest = value.strip()[len("digest"):]
    params: dict[str, str] = {}
    pos, rest = 0, rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            raise SipError(400, "bad Digest credentials")
        params[m.group(1).lower()] = _unquote(m.group(2))
        pos = m.end()
    return params


def parse_credentials(value: str) -> Credentials | None:
    """The Digest credentials in an Authorization value; None for another scheme.

    A scheme we do not know is ignored rather than refused: the request is then
    challenged afresh, in a scheme the client may know (RFC 4475 3.3.7).
    Broken Digest parameters still raise SipError(400).
    """
    if scheme_of(value) != "digest":
        return None
    params = parse_digest_params(value)
    for name in ("username", "realm", "nonce", "uri", "response"):
        if name not in params:
            raise SipError(400, f"Digest credentials without {name}")
    algorithm = params.get("algorithm", "MD5").upper()
    qop = params.get("qop")
    if qop is not None and (not params.get("nc") or not params.get("cnonce")):
        raise SipError(400, "Digest qop without nc and cnonce")
    return Credentials(
        params["username"], params["realm"], params["nonce"], params["uri"], params["response"],
        algorithm, qop, params.get("nc"), params.get("cnonce"), params.get("opaque"),
    )


def expected_response(cred: Credentials, method: str, ha1_hex: str) -> str:
    """RFC 7616 3.4.1 with qop=auth, or RFC 2069 (no qop) for old clients."""
    h = ALGORITHMS[cred.algorithm]
    ha2 = h(f"{method}:{cred.uri}".encode()).hexdigest()
    if cred.qop:
        data = f"{ha1_hex}:{cred.nonce}:{cred.nc}:{cred.cnonce}:{cred.qop}:{ha2}"
    else:
        data = f"{ha1_hex}:{cred.nonce}:{ha2}"
    return h(data.encode()).hexdigest()


def challenge(realm: str, nonce: str, algorithm: str = "MD5", *, stale: bool = False, opaque: str | None = None) -> str:
    """A WWW-Authenticate / Proxy-Authenticate value."""
    out = f'Digest realm="{realm}", nonce="{nonce}", algorithm={algorithm}, qop="auth"'
    if opaque:
        out += f', opaque="{opaque}"'
    if stale:
        out += ", stale=true"
    return out


class NonceSigner:
    """Issues and checks stateless nonces: base64url(time, HMAC(secret, time, client))."""

    def __init__(self, secret: bytes, lifetime: float = NONCE_LIFETIME):
        if lifetime > NONCE_LIFETIME:
            raise ValueError("nonce lifetime above 300 s")
        self.secret = secret
        self.lifetime = lifetime

    def _mac(self, stamp: bytes, client: str) -> bytes:
        return hmac.new(self.secret, stamp + client.encode(), hashlib.sha256).digest()[:15]

    def issue(self, now: float, client: str = "") -> str:
        stamp = struct.pack(">d", now)
        return base64.urlsafe_b64encode(stamp + self._mac(stamp, client)).decode().rstrip("=")

    def check(self, nonce: str, now: float, client: str = "") -> str:
        """"ok", "stale" (ours but expired) or "bad" (not ours, or for another client)."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return "bad"
        if len(raw) != 23:
            return "bad"
        stamp, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, self._mac(stamp, client)):
            return "bad"
        (issued,) = struct.unpack(">d", stamp)
        if not issued - 5.0 <= now <= issued + self.lifetime:
            return "stale"
        return "ok"


def uri_matches(digest_uri: str, request_uri: str) -> bool:
    """The credentials' uri must name the Request-URI (RFC 7616 3.4.6)."""
    if digest_uri == request_uri:
        return True
    from appliance.sip.uri import parse_uri

    try:
        return parse_uri(digest_uri).key() == parse_uri(request_uri).key()
    except SipError:
        return False


def verify(cred: Credentials, method: str, request_uri: str, ha1_hex: str) -> bool:
    """True when the credentials answer the challenge for this request and HA1."""
    if cred.algorithm not in ALGORITHMS or cred.qop not in (None, "auth"):
        return False
    if not uri_matches(cred.uri, request_uri):
        return False
    return hmac.compare_digest(expected_response(cred, method, ha1_hex), cred.response.lower())
