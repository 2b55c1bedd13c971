"""SIP URIs and name-addr values (RFC 3261 sections 19.1 and 25.1).

A `SipURI` keeps the text it was parsed from, so a relayed message carries
its URIs unchanged; comparison follows RFC 3261 section 19.1.4 (escapes
decoded, host and parameter names case-insensitive).  A URI of another
scheme (tel, urn, a novel one) is an `OtherURI`: legal in From and To, and
it is the registrar's and proxy's business whether to accept it elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from appliance.sip.errors import SipError, is_decimal

Params = tuple[tuple[str, "str | None"], ...]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.?\Z")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z")
_ESCAPED_BAD = re.compile(r"%(?![0-9A-Fa-f]{2})")
_URI_BAD = re.compile(r"[ \t\r\n<>\"]|%(?![0-9A-Fa-f]{2})")
_OTHER_BAD = re.compile(r"[ \t\r\n<>\"]")
# Characters allowed in the user part, escapes aside (RFC 3261 25.1: unreserved / user-unreserved).
_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]*\Z")
_PASSWORD = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,%]*\Z")
_PARAMCHARS = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+\Z")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")


def unescape(text: str) -> str:
    """Decode %XX escapes; bytes that are not UTF-8 stay visible as escapes."""
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "backslashreplace")


def parse_params(text: str, *, where: str) -> Params:
    """`;name[=value]` pairs after a URI or a header value, in order."""
    out: list[tuple[str, str | None]] = []
    if not text:
        return ()
    if not text.startswith(";"):
        raise SipError(400, f"bad parameters in {where}")
    for part in text[1:].split(";"):
        part = part.strip()
        if not part:
            raise SipError(400, f"empty parameter in {where}")
        name, eq, value = part.partition("=")
        name = name.strip()
        if not _TOKEN.match(name):
            raise SipError(400, f"bad parameter name in {where}")
        out.append((name, value.strip() if eq else None))
    return tuple(out)


def format_params(params: Params) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def param(params: Params, name: str, default: str | None = None) -> str | None:
    """The value of the first parameter called `name` (case-insensitive); "" for a flag."""
    name = name.lower()
    for n, v in params:
        if n.lower() == name:
            return "" if v is None else v
    return default


@dataclass(frozen=True, slots=True)
class SipURI:
    scheme: str  # "sip" or "sips", lower case
    user: str | None  # as written, escapes kept
    password: str | None
    host: str  # as written
    port: int | None
    params: Params = ()
    headers: str = ""  # the part after "?", as written
    text: str = field(default="", compare=False)

    @property
    def user_unescaped(self) -> str | None:
        return None if self.user is None else unescape(self.user)

    @property
    def transport(self) -> str:
        return (param(self.params, "transport") or ("tls" if self.scheme == "sips" else "udp")).lower()

    @property
    def host_lower(self) -> str:
        return self.host.lower()

    def key(self) -> tuple:
        """What RFC 3261 19.1.4 compares: escapes decoded, host and param names in lower case.

        Parameters that appear in only one of two URIs are ignored there
        except user, ttl, method and maddr; we keep every parameter, which is
        stricter and fine for finding one binding again.
        """
        params = tuple(sorted((n.lower(), unescape(v).lower() if v is not None else None) for n, v in self.params))
        return (self.scheme, self.user_unescaped, self.password, self.host.lower(), self.port, params)

    def __str__(self) -> str:
        return self.text or self.format()

    def format(self) -> str:
        out = self.scheme + ":"
        if self.user is not None:
            out += self.user
            if self.password is not None:
                out += ":" + self.password
            out += "@"
        out += self.host
        if self.port is not None:
            out += f":{self.port}"
        out += format_params(self.params)
        if self.headers:
            out += "?" + self.headers
        return out

    def with_params(self, params: Params) -> "SipURI":
        uri = SipURI(self.scheme, self.user, self.password, self.host, self.port, params, self.headers)
        return SipURI(uri.scheme, uri.user, uri.password, uri.host, uri.port, uri.params, uri.headers, uri.format())


@dataclass(frozen=True, slots=True)
class OtherURI:
    """A URI of a scheme other than sip/sips (tel:, urn:, ...), kept as text."""

    scheme: str
    rest: str

    def key(self) -> tuple:
        return (self.scheme, self.rest)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


URI = SipURI | OtherURI


def parse_host(text: str, *, where: str) -> tuple[str, int | None]:
    """host[:port] with IPv6 references in brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipError(400, f"bad IPv6 reference in {where}")
        host, rest = text[: end + 1], text[end + 1 :]
        if not _IPV6.match(host):
            raise SipError(400, f"bad IPv6 reference in {where}")
        if rest and not rest.startswith(":"):
            raise SipError(400, f"bad host in {where}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text = text.partition(":")
        if not colon:
            port_text = None
        if not _HOSTNAME.match(host):
            raise SipError(400, f"bad host in {where}")
    port = None
    if port_text is not None:
        if not is_decimal(port_text, 5) or int(port_text) > 65535:
            raise SipError(400, f"bad port in {where}")
        port = int(port_text)
    return host, port


# The same URIs come again and again (a phone's contact, the PBX's own
# address): parsed once, kept while the cache stays small.  URIs are frozen.
_PARSED: dict[str, "URI"] = {}
_PARSED_MAX = 4096


def parse_uri(text: str, *, where: str = "URI") -> URI:
    """Parse a URI; sip and sips in full, any other scheme as `OtherURI`."""
    uri = _PARSED.get(text)
    if uri is None:
        uri = _parse_uri(text, where)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[text] = uri
    return uri


def _parse_uri(text: str, where: str) -> URI:
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.match(scheme) or not rest:
        raise SipError(400, f"bad URI in {where}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        if _OTHER_BAD.search(rest):
            raise SipError(400, f"bad URI in {where}")
        return OtherURI(scheme, rest)
    if _URI_BAD.search(rest):
        raise SipError(400, f"bad URI in {where}")
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if colon:
            password = pw
            if not _PASSWORD.match(pw):
                raise SipError(400, f"bad password in {where}")
        if not user or not _USER.match(user):
            raise SipError(400, f"bad user in {where}")
    rest, q, headers = rest.partition("?")
    semi = rest.find(";")
    hostport, params_text = (rest, "") if semi < 0 else (rest[:semi], rest[semi:])
    host, port = parse_host(hostport, where=where)
    params = parse_params(params_text, where=where)
    for n, v in params:
        if v is not None and not _PARAMCHARS.match(v):
            raise SipError(400, f"bad URI parameter in {where}")
    return SipURI(scheme, user, password, host, port, params, headers, text)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A From/To/Contact/Route value: display name, URI, header parameters."""

    uri: URI
    display: str | None = None  # as written, quotes included
    params: Params = ()
    bracketed: bool = True

    @property
    def tag(self) -> str | None:
        return param(self.params, "tag")

    def param(self, name: str, default: str | None = None) -> str | None:
        return param(self.params, name, default)

    def __str__(self) -> str:
        if not self.bracketed and self.display is None:
            out = str(self.uri)
        else:
            out = f"{self.display} <{self.uri}>" if self.display else f"<{self.uri}>"
        return out + format_params(self.params)

    def with_params(self, params: Params) -> "NameAddr":
        return NameAddr(self.uri, self.display, params, self.bracketed or bool(params))


def read_quoted(text: str, start: int) -> int:
    """The index just after the quoted-string that opens at `start`."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise SipError(400, "unterminated quoted string")


def parse_name_addr(text: str, *, where: str = "header") -> NameAddr:
    """name-addr or addr-spec, followed by header parameters (RFC 3261 20.10).

    Without angle brackets, every ";" parameter belongs to the header, not
    to the URI; a URI that itself has parameters or headers must be bracketed.
    """
    text = text.strip()
    if not text:
        raise SipError(400, f"empty {where}")
    display = None
    if text.startswith('"'):
        end = read_quoted(text, 0)
        display = text[:end]
        rest = text[end:].lstrip()
        if not rest.startswith("<"):
            raise SipError(400, f"bad name-addr in {where}")
    else:
        lt = text.find("<")
        if lt >= 0:
            name = text[:lt].strip()
            if name:
                if not all(_TOKEN.match(word) for word in name.split()):
                    raise SipError(400, f"bad display name in {where}")
                display = name
            rest = text[lt:]
        else:
            rest = None
    if rest is not None:
        gt = rest.find(">")
        if gt < 0:
            raise SipError(400, f"unterminated <URI> in {where}")
        uri = parse_uri(rest[1:gt].strip(), where=where)
        tail = rest[gt + 1 :].strip()
        return NameAddr(uri, display, parse_params(tail, where=where), True)
    semi = text.find(";")
    uri_text, tail = (text, "") if semi < 0 else (text[:semi], text[semi:])
    uri_text = uri_text.strip()
    if "?" in uri_text or "," in uri_text:
        raise SipError(400, f"URI with headers must be in angle brackets in {where}")
    return NameAddr(parse_uri(uri_text, where=where), None, parse_params(tail, where=where), False)
