"""Registrar bindings: kept in memory for speed, written behind to the store's SQLite file.

A REGISTER changes the in-memory table at once; `flush()` writes the changes
since the last flush in one transaction (the edge calls it about once a
second and at stop).  After a crash at most that last second of
registrations is lost, and phones re-register anyway; a synchronous write per
REGISTER would cap the registrar at a few hundred per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.store import Store


@dataclass(frozen=True, slots=True)
class Flow:
    """Where a message came from and how: the address a reply must go to (NAT-safe)."""

    transport: str  # "udp" or "tcp"
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"


@dataclass(slots=True)
class Binding:
    extension: str
    contact: str  # the Contact URI as the phone wrote it
    flow: Flow
    expires_at: float
    registered_at: float
    call_id: str = ""
    cseq: int = 0
    q: float = 1.0
    user_agent: str = ""
    instance: str | None = None
    uri_key: tuple = field(default=(), compare=False)

    @property
    def key(self) -> str:
        return self.instance or self.contact

    def row(self) -> dict:
        return {
            "extension": self.extension,
            "contact": self.contact,
            "source_host": self.flow.host,
            "source_port": self.flow.port,
            "transport": self.flow.transport,
            "user_agent": self.user_agent,
            "call_id": self.call_id,
            "cseq": self.cseq,
            "q": self.q,
            "expires_at": self.expires_at,
            "registered_at": self.registered_at,
            "instance": self.instance,
        }


class BindingTable:
    """Bindings by extension, and by contact URI for requests from the engine."""

    def __init__(self) -> None:
        self.by_extension: dict[str, dict[str, Binding]] = {}
        self.by_uri: dict[tuple, list[Binding]] = {}
        self.by_host: dict[str, int] = {}  # source address -> bindings registered from it
        self.by_flow: dict[Flow, int] = {}  # source flow -> bindings registered over it
        self._dirty: dict[tuple[str, str], Binding | None] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_extension.values())

    def of(self, extension: str) -> list[Binding]:
        return list(self.by_extension.get(extension, {}).values())

    def all(self) -> list[Binding]:
        return [b for v in self.by_extension.values() for b in v.values()]

    def get(self, extension: str, key: str) -> Binding | None:
        return self.by_extension.get(extension, {}).get(key)

    def put(self, binding: Binding, *, persist: bool = True) -> Binding | None:
        """Add or refresh a binding; returns the binding it replaced, if any."""
        old = self.get(binding.extension, binding.key)
        if old is not None:
            self._unindex(old)
            if persist and old.contact != binding.contact:
                self._dirty[(old.extension, old.contact)] = None
        self.by_extension.setdefault(binding.extension, {})[binding.key] = binding
        self.by_uri.setdefault(binding.uri_key, []).append(binding)
        self.by_host[binding.flow.host] = self.by_host.get(binding.flow.host, 0) + 1
        self.by_flow[binding.flow] = self.by_flow.get(binding.flow, 0) + 1
        if persist:
            self._dirty[(binding.extension, binding.contact)] = binding
        return old

    def remove(self, binding: Binding) -> None:
        bucket = self.by_extension.get(binding.extension, {})
        if bucket.get(binding.key) is binding:
            del bucket[binding.key]
            if not bucket:
                del self.by_extension[binding.extension]
            self._unindex(binding)
            self._dirty[(binding.extension, binding.contact)] = None

    def phones_at(self, host: str) -> int:
        """How many bindings were registered from this address (an office behind one NAT has many)."""
        return self.by_host.get(host, 0)

    def carries(self, flow: Flow) -> bool:
        """Whether a binding was registered over this flow: requests for that phone go over its TCP connection."""
        return flow in self.by_flow

    def _unindex(self, binding: Binding) -> None:
        for index, key in ((self.by_host, binding.flow.host), (self.by_flow, binding.flow)):
            n = index.get(key, 0) - 1
            if n > 0:
                index[key] = n
            else:
                index.pop(key, None)
        lst = self.by_uri.get(binding.uri_key)
        if lst is not None:
            lst[:] = [b for b in lst if b is not binding]
            if not lst:
                del self.by_uri[binding.uri_key]

    def find_contact(self, uri_key: tuple, extension_hint: str | None = None) -> Binding | None:
        """The binding whose Contact URI is this one; with several, the one of the hinted extension."""
        found = self.by_uri.get(uri_key)
        if not found:
            return None
        if extension_hint is not None:
            for b in found:
                if b.extension == extension_hint:
                    return b
        return max(found, key=lambda b: b.registered_at)

    def expire(self, now: float) -> list[Binding]:
        gone = [b for b in self.all() if b.expires_at <= now]
        for b in gone:
            self.remove(b)
        return gone

    # -- persistence --------------------------------------------------------

    def pending(self) -> int:
        return len(self._dirty)

    def flush(self, store: Store) -> list[Binding]:
        """Write changed bindings; returns bindings the store refused (their extension is gone)."""
        if not self._dirty:
            return []
        dirty, self._dirty = self._dirty, {}
        removed = [key for key, b in dirty.items() if b is None]
        upserts = [b for b in dirty.values() if b is not None]
        refused = [upserts[i] for i in store.save_bindings([b.row() for b in upserts], removed)]
        for b in refused:
            self.remove(b)
            self._dirty.pop((b.extension, b.contact), None)
        return refused

    def load(self, store: Store, now: float, uri_key) -> int:
        """Read the bindings that have not expired; `uri_key(text)` makes the lookup key."""
        n = 0
        for r in store.load_bindings(now):
            b = Binding(
                extension=r["extension"],
                contact=r["contact"],
                flow=Flow(r["transport"] or "udp", r["source_host"], int(r["source_port"])),
                expires_at=r["expires_at"],
                registered_at=r["registered_at"] or now,
                call_id=r["call_id"] or "",
                cseq=r["cseq"] or 0,
                q=r["q"] if r["q"] is not None else 1.0,
                user_agent=r["user_agent"] or "",
                instance=r.get("instance"),
                uri_key=uri_key(r["contact"]),
            )
            self.put(b, persist=False)
            n += 1
        return n
