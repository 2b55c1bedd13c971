"""SIP messages: parsing bytes into frozen Request/Response objects and back.

`parse()` reads one whole message (a UDP datagram, or one message cut from a
TCP stream by `StreamFramer`).  It checks what a server must reject before
looking at a message's meaning (RFC 3261 8.2 and 16.3, RFC 4475's torture
cases): the start line and version, the mandatory headers and that the
single ones are single, CSeq against the method, Content-Length against the
body, the Request-URI scheme.  A failure raises `SipError` with the status to
answer and, when the headers parsed, the message itself so that the answer
can be built from its Via, From, To, Call-ID and CSeq.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from appliance.sip.errors import SipError, is_decimal
from appliance.sip.headers import Headers, Via, canonical, parse_cseq, parse_via
from appliance.sip.uri import NameAddr, OtherURI, SipURI, parse_name_addr, parse_uri

MAX_MESSAGE = 65535  # the largest UDP datagram; the edge may set less

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

_METHOD = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_VERSION = re.compile(r"SIP/(\d+)\.(\d+)\Z", re.I)
_HEADER_NAME = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
# Headers a message may carry at most once (RFC 3261 table 2 and 4475 section 3.1.2.19).
SINGLE = ("from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type", "expires")


@dataclass(frozen=True, slots=True)
class Message:
    headers: Headers
    body: bytes
    # Parsed header values, filled on first use (the message itself never changes).
    _cache: dict = field(default=None, init=False, repr=False, compare=False)

    def _cached(self, key: str, make):
        cache = self._cache
        if cache is None:
            cache = {}
            object.__setattr__(self, "_cache", cache)
        value = cache.get(key)
        if value is None:
            value = cache[key] = make()
        return value

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.headers.get("cseq") or "")

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.values("via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.values("via")
        if not values:
            raise SipError(400, "no Via")
        return parse_via(values[0])

    @property
    def from_(self) -> NameAddr:
        return self._cached("from", lambda: parse_name_addr(self.headers.get("from") or "", where="From"))

    @property
    def to(self) -> NameAddr:
        return self._cached("to", lambda: parse_name_addr(self.headers.get("to") or "", where="To"))

    def _head_bytes(self, start: str) -> bytes:
        lines = [start]
        has_length = False
        length = str(len(self.body))
        for name, value in self.headers.fields:
            if canonical(name) == "content-length":
                if has_length:
                    continue
                has_length = True
                value = length
            lines.append(f"{name}: {value}")
        if not has_length:
            lines.append(f"Content-Length: {length}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Request(Message):
    method: str = ""
    uri: str = ""
    version: str = "SIP/2.0"

    def to_bytes(self) -> bytes:
        return self._head_bytes(f"{self.method} {self.uri} {self.version}") + self.body

    @property
    def request_uri(self) -> SipURI | OtherURI:
        return self._cached("ruri", lambda: parse_uri(self.uri, where="Request-URI"))

    def with_(self, **changes) -> "Request":
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Response(Message):
    status: int = 200
    reason: str = "OK"
    version: str = "SIP/2.0"

    def to_bytes(self) -> bytes:
        return self._head_bytes(f"{self.version} {self.status} {self.reason}") + self.body

    def with_(self, **changes) -> "Response":
        return replace(self, **changes)


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :]
    end = data.find(b"\n\n")  # bare LF line ends, tolerated (RFC 3261 7.5 says CRLF)
    if end >= 0:
        return data[:end], data[end + 2 :]
    return data, b""


def _read_header_lines(head: str) -> list[tuple[str, str]]:
    lines = head.replace("\r\n", "\n").split("\n")
    fields: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            continue
        if line[0] in " \t":
            # Folded continuation line (LWS, RFC 3261 7.3.1).
            if not fields:
                raise SipError(400, "continuation line before any header")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _HEADER_NAME.match(name):
            raise SipError(400, "malformed header line")
        fields.append((name, value.strip()))
    return fields


def parse(data: bytes, *, max_size: int = MAX_MESSAGE, stream: bool = False) -> Request | Response:
    """Parse one SIP message.  `stream` means it came over TCP: Content-Length is required."""
    data = data.lstrip(b"\r\n")  # CRLFs before a message are keep-alives (RFC 3261 7.5)
    head_bytes, body = _split_head(data)
    if not head_bytes:
        raise SipError(400, "empty message")
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise SipError(400, "header not UTF-8") from None
    first, _, rest = head.partition("\n")
    first = first.rstrip("\r")
    fields = _read_header_lines(rest)
    headers = Headers(tuple(fields))
    if first.startswith("SIP/") or first[:4].upper() == "SIP/":
        msg: Request | Response = _start_response(first, headers, body)
    else:
        msg = _start_request(first, headers, body)
    msg = _check_body(msg, stream)
    if len(data) > max_size:
        raise SipError(513, "message too large", msg)
    _check_headers(msg)
    return msg


def parse_head(data: bytes) -> Request | Response | None:
    """The start line and headers of a message whose body cannot be read, to answer it; None if they do not parse."""
    head, _ = _split_head(data.lstrip(b"\r\n"))
    try:
        text = head.decode("utf-8")
        first, _, rest = text.partition("\n")
        headers = Headers(tuple(_read_header_lines(rest)))
        first = first.rstrip("\r")
        if first[:4].upper() == "SIP/":
            return _start_response(first, headers, b"")
        return _start_request(first, headers, b"")
    except (SipError, UnicodeDecodeError):
        return None


def _start_request(first: str, headers: Headers, body: bytes) -> Request:
    parts = first.split(" ")
    if len(parts) != 3:
        raise SipError(400, "bad request line", Request(headers, body, "?", "", "SIP/2.0"))
    method, uri, version = parts
    msg = Request(headers, body, method, uri, version)
    if not _METHOD.match(method):
        raise SipError(400, "bad method", msg)
    m = _VERSION.match(version)
    if not m:
        raise SipError(400, "bad SIP version", msg)
    if (m.group(1), m.group(2)) != ("2", "0"):
        raise SipError(505, "SIP version not supported", msg)
    return msg


def _start_response(first: str, headers: Headers, body: bytes) -> Response:
    version, _, rest = first.partition(" ")
    code, _, reason = rest.partition(" ")
    m = _VERSION.match(version)
    if not m or len(code) != 3 or not is_decimal(code) or not 100 <= int(code) <= 699:
        raise SipError(400, "bad status line")
    if (m.group(1), m.group(2)) != ("2", "0"):
        raise SipError(505, "SIP version not supported")
    return Response(headers, body, int(code), reason, version)


def _check_body(msg: Request | Response, stream: bool) -> Request | Response:
    lengths = msg.headers.get_all("content-length")
    if not lengths:
        if stream:
            raise SipError(400, "no Content-Length on a stream", msg)
        return msg
    if len(lengths) > 1 and len(set(lengths)) > 1:
        raise SipError(400, "conflicting Content-Length", msg)
    text = lengths[0]
    if not is_decimal(text, 9):
        raise SipError(400, "bad Content-Length", msg)
    length = int(text)
    if length > len(msg.body):
        raise SipError(400, "Content-Length larger than the body", msg)
    if length < len(msg.body):
        # RFC 3261 18.3: octets beyond Content-Length are discarded.
        msg = replace(msg, body=msg.body[:length])
    return msg


def _check_headers(msg: Request | Response) -> None:
    h = msg.headers
    for name in ("via", "from", "to", "call-id", "cseq"):
        if h.get(name) is None:
            raise SipError(400, f"missing {name} header", msg)
    counts = h.names()
    for name in SINGLE:
        if counts.get(name, 0) > 1:
            raise SipError(400, f"more than one {name} header", msg)
    if not h.get("call-id"):
        raise SipError(400, "empty Call-ID", msg)
    number, method = parse_cseq_or_fail(msg)
    for v in h.values("via"):
        try:
            parse_via(v)
        except SipError as e:
            raise SipError(400, e.reason, msg) from None
    try:
        msg.from_, msg.to
    except SipError as e:
        raise SipError(400, e.reason, msg) from None
    if isinstance(msg, Request):
        if not _METHOD.match(method):
            raise SipError(400, "bad CSeq method", msg)
        if method != msg.method:
            raise SipError(400, "CSeq method does not match the request", msg)
        mf = h.get("max-forwards")
        if mf is not None and (not is_decimal(mf, 3) or int(mf) > 255):
            raise SipError(400, "bad Max-Forwards", msg)
        expires = h.get("expires")
        if expires is not None and not is_decimal(expires, 10):
            raise SipError(400, "bad Expires", msg)
        try:
            uri = msg.request_uri
        except SipError as e:
            raise SipError(400, e.reason, msg) from None
        if isinstance(uri, OtherURI) and uri.scheme != "tel":
            raise SipError(416, "unsupported URI scheme", msg)


def parse_cseq_or_fail(msg: Request | Response) -> tuple[int, str]:
    try:
        return parse_cseq(msg.headers.get("cseq") or "")
    except SipError as e:
        raise SipError(400, e.reason, msg) from None


class StreamFramer:
    """Cuts SIP messages out of a TCP byte stream (RFC 3261 18.3).

    `feed()` returns whole messages as bytes, and the number of CRLF
    keep-alive pings seen between messages (RFC 5626 3.5.1: answer each
    double CRLF with one CRLF).  A header block larger than `max_size` or a
    missing/bad Content-Length raises SipError: the stream cannot be resynchronised
    and the connection should be closed after answering.
    """

    def __init__(self, max_size: int = MAX_MESSAGE):
        self.max_size = max_size
        self.buffer = bytearray()

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        self.buffer += data
        out: list[bytes] = []
        pings = 0
        buf = self.buffer
        while True:
            skip = 0
            while skip < len(buf) and buf[skip] in (13, 10):
                skip += 1
            if skip:
                pings += buf.count(b"\r\n\r\n", 0, skip)
                del buf[:skip]
            if not buf:
                break
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.max_size:
                    raise SipError(513, "header too large")
                break
            head = bytes(buf[:end])
            length = _stream_content_length(head)
            total = end + 4 + length
            if total > self.max_size:
                raise SipError(513, "message too large")
            if len(buf) < total:
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out, pings


_CL = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\S*)[ \t]*$", re.I | re.M)


def _stream_content_length(head: bytes) -> int:
    m = _CL.search(head)
    if not m:
        raise SipError(400, "no Content-Length on a stream")
    value = m.group(1).rstrip(b"\r")
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise SipError(400, "bad Content-Length")
    return int(value)


def response_to(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    to_tag: str | None = None,
) -> Response:
    """A response built from a request (RFC 3261 8.2.6.2): Via, From, To, Call-ID, CSeq copied."""
    fields: list[tuple[str, str]] = []
    for name, value in request.headers.fields:
        key = canonical(name)
        if key in ("via", "from", "call-id", "cseq"):
            fields.append((name, value))
        elif key == "to":
            if to_tag and status > 100 and ";tag=" not in value.replace(" ", "").lower():
                value = f"{value};tag={to_tag}"
            fields.append((name, value))
    fields.extend(headers)
    return Response(Headers(tuple(fields)), body, status, reason or REASONS.get(status, "Unknown"))
