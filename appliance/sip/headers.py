"""Header fields: an ordered list of (name, value), compact forms, Via and CSeq.

Headers stay a tuple of pairs in the order they arrived.  Two Via lines and
one Via line with two comma-separated values mean the same thing (RFC 3261
7.3.1), so `values()` splits list headers at commas outside quotes and angle
brackets; `get_all()` returns the lines as they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from appliance.sip.errors import SipError, is_decimal
from appliance.sip.uri import Params, format_params, param, parse_host, parse_params

# RFC 3261 7.3.3 and the IANA registry of compact forms.
COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "u": "allow-events",
    "x": "session-expires",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
    "y": "identity",
    "n": "identity-info",
}

# Headers whose value is a comma-separated list (RFC 3261 7.3.1); the
# authentication headers are not, their parameters are separated by commas.
LIST_HEADERS = frozenset(
    {
        "via", "contact", "route", "record-route", "allow", "supported", "require",
        "proxy-require", "unsupported", "accept", "accept-encoding", "accept-language",
        "allow-events", "content-encoding", "path", "in-reply-to",
    }
)

_canonical_cache: dict[str, str] = {}


def canonical(name: str) -> str:
    """The lower-case long form of a header name."""
    key = _canonical_cache.get(name)
    if key is None:
        low = name.lower()
        key = COMPACT.get(low, low)
        if len(_canonical_cache) < 4096:
            _canonical_cache[name] = key
    return key


def split_list(value: str) -> list[str]:
    """Split a list header value at commas outside quotes and <>."""
    if '"' not in value and "<" not in value:
        return [v.strip() for v in value.split(",") if v.strip()]
    out, start, i, n, depth = [], 0, 0, len(value), 0
    while i < n:
        c = value[i]
        if c == '"':
            j = i + 1
            while j < n and value[j] != '"':
                j += 2 if value[j] == "\\" else 1
            i = j
        elif c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            out.append(value[start:i].strip())
            start = i + 1
        i += 1
    out.append(value[start:].strip())
    return [v for v in out if v]


@dataclass(frozen=True, slots=True)
class Headers:
    fields: tuple[tuple[str, str], ...] = ()
    # Values by canonical name, built once: a message is read many more times than it is built.
    _index: dict = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[str]] = {}
        for n, v in self.fields:
            key = _canonical_cache.get(n) or canonical(n)
            lst = index.get(key)
            if lst is None:
                index[key] = [v]
            else:
                lst.append(v)
        object.__setattr__(self, "_index", index)

    def __iter__(self):
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def get(self, name: str, default: str | None = None) -> str | None:
        lst = self._index.get(_canonical_cache.get(name) or canonical(name))
        return lst[0] if lst else default

    def get_all(self, name: str) -> list[str]:
        return list(self._index.get(_canonical_cache.get(name) or canonical(name), ()))

    def values(self, name: str) -> list[str]:
        """All values of a list header, across lines, split at commas."""
        out: list[str] = []
        for v in self._index.get(_canonical_cache.get(name) or canonical(name), ()):
            out.extend(split_list(v))
        return out

    def count(self, name: str) -> int:
        return len(self._index.get(_canonical_cache.get(name) or canonical(name), ()))

    def names(self) -> dict[str, int]:
        """How many fields each canonical name has."""
        return {k: len(v) for k, v in self._index.items()}

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def remove(self, name: str) -> "Headers":
        key = canonical(name)
        return Headers(tuple(f for f in self.fields if canonical(f[0]) != key))

    def remove_if(self, predicate) -> "Headers":
        return Headers(tuple(f for f in self.fields if not predicate(f[0])))

    def prepend(self, name: str, value: str) -> "Headers":
        """Put a field before the first field of the same name (or first of all)."""
        key = canonical(name)
        fields = list(self.fields)
        for i, (n, _) in enumerate(fields):
            if canonical(n) == key:
                fields.insert(i, (name, value))
                return Headers(tuple(fields))
        return Headers(((name, value), *fields))

    def append(self, name: str, value: str) -> "Headers":
        return Headers((*self.fields, (name, value)))

    def set(self, name: str, value: str) -> "Headers":
        """Replace the first field of this name in place and drop the others; append if absent."""
        key = canonical(name)
        out, done = [], False
        for n, v in self.fields:
            if canonical(n) == key:
                if not done:
                    out.append((n, value))
                    done = True
                continue
            out.append((n, v))
        if not done:
            out.append((name, value))
        return Headers(tuple(out))

    def replace_values(self, name: str, values: list[str]) -> "Headers":
        """Replace a list header by `values`, one line each, where its first line was."""
        key = canonical(name)
        out, done = [], False
        for n, v in self.fields:
            if canonical(n) == key:
                if not done:
                    out.extend((n, x) for x in values)
                    done = True
                continue
            out.append((n, v))
        if not done:
            out.extend((name, x) for x in values)
        return Headers(tuple(out))


_VIA = re.compile(
    r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(\[[0-9A-Fa-f:.]+\](?::\d+)?|[^\s;:]+(?:\s*:\s*\d+)?)\s*(;.*)?\Z",
    re.S | re.I,
)


@dataclass(frozen=True, slots=True)
class Via:
    transport: str  # upper case: UDP, TCP, TLS...
    host: str
    port: int | None
    params: Params = ()

    @property
    def branch(self) -> str | None:
        return param(self.params, "branch")

    def param(self, name: str, default: str | None = None) -> str | None:
        return param(self.params, name, default)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    def response_address(self, default_port: int = 5060) -> tuple[str, int]:
        """Where a response goes (RFC 3261 18.2.2 with RFC 3581 rport)."""
        host = self.param("received") or self.host
        rport = self.param("rport")
        port = int(rport) if rport and is_decimal(rport, 5) else (self.port or default_port)
        return host.strip("[]"), port


def parse_via(text: str) -> Via:
    m = _VIA.match(text.strip())
    if not m:
        raise SipError(400, "bad Via")
    transport, sent_by, params = m.groups()
    host, port = parse_host(re.sub(r"\s+", "", sent_by), where="Via")
    p = parse_params((params or "").strip(), where="Via")
    for name in ("rport", "ttl"):
        value = param(p, name)
        if value and not is_decimal(value, 5):
            raise SipError(400, f"bad {name} in Via")
    return Via(transport.upper(), host, port, p)


def parse_cseq(text: str) -> tuple[int, str]:
    parts = text.split()
    if len(parts) != 2 or not is_decimal(parts[0], 10):
        raise SipError(400, "bad CSeq")
    number = int(parts[0])
    if number >= 2**31:
        raise SipError(400, "CSeq number too large")
    return number, parts[1]
