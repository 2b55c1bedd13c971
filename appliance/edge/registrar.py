"""The registrar (RFC 3261 section 10.3) over an in-memory BindingTable.

`Registrar.register()` takes an authenticated REGISTER and returns the
response and what changed; it does no I/O and takes the time as an argument.
The source flow is kept with each binding: requests for the phone go back to
the address it registered from, not to the (often private) Contact address.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.edge.bindings import Binding, BindingTable, Flow
from appliance.sip import Request, Response, SipError, SipURI, parse_name_addr, response_to
from appliance.sip.errors import is_decimal

MIN_EXPIRES = 60
DEFAULT_EXPIRES = 3600
MAX_EXPIRES = 7200
MAX_CONTACTS = 10  # per extension; the soonest to expire gives way to a new one


@dataclass
class RegisterResult:
    response: Response
    added: list[Binding]
    removed: list[tuple[Binding, str]]


def uri_key(text: str) -> tuple:
    from appliance.sip import parse_uri

    try:
        return parse_uri(text).key()
    except SipError:
        return ("raw", text)


@dataclass
class Registrar:
    table: BindingTable
    min_expires: int = MIN_EXPIRES
    default_expires: int = DEFAULT_EXPIRES
    max_expires: int = MAX_EXPIRES
    max_contacts: int = MAX_CONTACTS

    def register(self, req: Request, extension: str, flow: Flow, now: float, to_tag: str) -> RegisterResult:
        h = req.headers
        contacts = h.values("contact")
        header_expires = h.get("expires")
        default = int(header_expires) if header_expires is not None else self.default_expires
        call_id = req.call_id
        cseq = req.cseq[0]
        removed: list[tuple[Binding, str]] = []
        added: list[Binding] = []

        if "*" in contacts:
            # RFC 3261 10.2.2: "*" only alone and only with Expires: 0.
            if len(contacts) != 1 or header_expires is None or int(header_expires) != 0:
                raise SipError(400, "Contact * needs Expires: 0 and no other contact", req)
            for b in self.table.of(extension):
                if b.call_id == call_id and cseq < b.cseq:
                    raise SipError(500, "REGISTER out of order", req)
            for b in self.table.of(extension):
                self.table.remove(b)
                removed.append((b, "unregistered"))
            return RegisterResult(self._ok(req, extension, now, to_tag), added, removed)

        wanted: list[tuple[SipURI, str, int, float, str | None]] = []
        for value in contacts:
            na = parse_name_addr(value, where="Contact")
            if not isinstance(na.uri, SipURI):
                raise SipError(400, "Contact must be a sip or sips URI", req)
            text = na.param("expires")
            if text is not None and is_decimal(text, 10):
                expires = int(text)
            else:
                expires = default
            if 0 < expires < self.min_expires:
                raise SipError(423, "Interval Too Brief", req, headers=(("Min-Expires", str(self.min_expires)),))
            expires = min(expires, self.max_expires)
            q_text = na.param("q")
            try:
                q = float(q_text) if q_text else 1.0
            except ValueError:
                raise SipError(400, "bad q value", req) from None
            instance = na.param("+sip.instance")
            if instance:
                instance = instance.strip('"')
            wanted.append((na.uri, str(na.uri), expires, q, instance))

        user_agent = h.get("user-agent") or ""
        for uri, contact, expires, q, instance in wanted:
            key = instance or contact
            old = self.table.get(extension, key)
            if old is not None and old.call_id == call_id and cseq < old.cseq:
                raise SipError(500, "REGISTER out of order", req)
            if expires == 0:
                if old is not None:
                    self.table.remove(old)
                    removed.append((old, "unregistered"))
                else:
                    # Removal by URI for a phone that unregisters without its instance id.
                    for b in self.table.of(extension):
                        if b.contact == contact:
                            self.table.remove(b)
                            removed.append((b, "unregistered"))
                continue
            binding = Binding(
                extension=extension, contact=contact, flow=flow, expires_at=now + expires,
                registered_at=now, call_id=call_id, cseq=cseq, q=q, user_agent=user_agent,
                instance=instance, uri_key=uri.key(),
            )
            replaced = self.table.put(binding)
            if replaced is None or replaced.contact != contact or replaced.flow != flow:
                added.append(binding)
                if replaced is not None:
                    removed.append((replaced, "replaced"))
        current = self.table.of(extension)
        while len(current) > self.max_contacts:
            oldest = min(current, key=lambda b: b.expires_at)
            self.table.remove(oldest)
            removed.append((oldest, "replaced"))
            current.remove(oldest)
        return RegisterResult(self._ok(req, extension, now, to_tag), added, removed)

    def _ok(self, req: Request, extension: str, now: float, to_tag: str) -> Response:
        fields = [("Contact", f"<{b.contact}>;expires={max(0, int(b.expires_at - now))}") for b in self.table.of(extension)]
        return response_to(req, 200, headers=tuple(fields), to_tag=to_tag)
