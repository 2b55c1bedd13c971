"""Busy lamps: the edge as notifier of the dialog event package (RFC 6665 with RFC 4235) and of presence.

A desk phone SUBSCRIBEs (`Event: dialog`) to a colleague's extension or to a
night key (`*28`, `*28N`); the edge authenticates it like any request from a
phone, answers 200 and sends a NOTIFY with the lamp's current state at once,
then one each time the lamp's dialogs change (`DialogStates`, fed with the
appliance's events).  The edge terminates these subscriptions itself: they
never reach the engine.

- Expires: default and at most 3600 s, at least 60 s (`423` with
  `Min-Expires`); `Expires: 0` ends a subscription (or, on a new one, fetches
  the state once) with a NOTIFY `terminated;reason=timeout`, as does expiry.
- `Event: presence` (RFC 3856) watches the same lamp as a PIDF document
  (`presence.pidf`): open while the extension has a registered phone, with
  the note and RPID activity of a call (softphones and some desk phones
  use presence for their lamp keys).  Its NOTIFYs go when what the
  document says changes: a call's stage, or the extension's first phone
  registering or its last one leaving (`BindingAdded`, `BindingRemoved`).
- `489` with `Allow-Events: dialog, presence` for any other package, `404`
  for a lamp that is no extension or night key, `406` when Accept leaves
  out the package's document type, `481` for a refresh of an unknown dialog.
- A refresh from the address that subscribed, in the dialog (our To tag,
  which only we can make), needs no new challenge.
- NOTIFYs go to the subscription's Contact, with its route set, over the
  address and transport the phone subscribed from (NAT safe, as for
  bindings).  Over UDP they are retransmitted (RFC 3261 timer E) until
  answered; no answer within 32 s (timer F), a failure response that ends a
  subscription (481 and the like), or a TCP connection that is gone, ends it.
- Each subscription's `version` increases with every document; subscriptions
  are written to the store with their counters (`Subscriptions`), so a
  restart keeps them and sends each the current state.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from appliance.edge.bindings import Flow
from appliance.edge.presence import CONTENT_TYPE, NIGHT_CODE, PIDF_TYPE, DialogStates, dialog_info, is_night_code, pidf
from appliance.sip import Headers, Request, Response, SipError, SipURI, parse_name_addr

log = logging.getLogger("appliance.edge.blf")

EVENT = "dialog"
PACKAGES = {"dialog": CONTENT_TYPE, "presence": PIDF_TYPE}  # event package -> its document's type
ALLOW_EVENTS = ", ".join(PACKAGES)
BINDING_EVENTS = frozenset({"BindingAdded", "BindingRemoved"})
MIN_EXPIRES = 60
DEFAULT_EXPIRES = 3600
MAX_EXPIRES = 3600
MAX_PER_SUBSCRIBER = 300  # a phone with expansion modules has about a hundred lamp keys
BRANCH = "z9hG4bKblf"  # our NOTIFYs' Via branches start so: their responses stop here
T1, T2, TIMER_F = 0.5, 4.0, 32.0  # RFC 3261 17.1.2.2
# Answers to a NOTIFY that end the subscription (RFC 6665 4.2.2: the subscriber no longer has it).
ENDING = frozenset({404, 405, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604})
ANY_TYPE = frozenset({"application/*", "*/*"})


@dataclass
class Subscription:
    call_id: str
    remote_tag: str  # the phone's (From) tag
    local_tag: str  # ours (To)
    subscriber: str  # the extension that subscribed
    resource: str  # the lamp: an extension or a night key
    entity: str  # sip:101@host, the document's entity
    event: str  # the Event header as the phone sent it (an id parameter included)
    remote_uri: str  # the SUBSCRIBE's From, tag included: the NOTIFY's To
    local_uri: str  # the SUBSCRIBE's To, without a tag: the NOTIFY's From
    contact: str  # the phone's Contact URI: the NOTIFY's Request-URI
    route: list[str]
    flow: Flow
    expires_at: float
    cseq: int = 0  # the last CSeq we sent in the dialog
    version: int = 0  # the next document's version
    created_at: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return self.call_id, self.remote_tag

    @property
    def package(self) -> str:
        return self.event.split(";", 1)[0].strip().lower()

    def row(self) -> dict:
        return {
            "call_id": self.call_id, "remote_tag": self.remote_tag, "local_tag": self.local_tag,
            "subscriber": self.subscriber, "resource": self.resource, "entity": self.entity, "event": self.event,
            "remote_uri": self.remote_uri, "local_uri": self.local_uri, "contact": self.contact, "route": self.route,
            "transport": self.flow.transport, "source_host": self.flow.host, "source_port": self.flow.port,
            "expires_at": self.expires_at, "cseq": self.cseq, "version": self.version, "created_at": self.created_at,
        }

    @classmethod
    def from_row(cls, r: dict) -> "Subscription":
        return cls(r["call_id"], r["remote_tag"], r["local_tag"], r["subscriber"], r["resource"], r["entity"],
                   r["event"], r["remote_uri"], r["local_uri"], r["contact"], list(r["route"] or []),
                   Flow(r["transport"], r["source_host"], int(r["source_port"])), float(r["expires_at"]),
                   int(r["cseq"] or 0), int(r["version"] or 0), float(r["created_at"] or 0.0))


@dataclass(frozen=True, slots=True)
class Answer:
    """What to answer a SUBSCRIBE, and the subscription to tell its state once the answer is sent."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    notify: Subscription | None = None
    final: bool = False  # the NOTIFY after the answer ends the subscription


@dataclass
class _Pending:
    key: tuple[str, str]
    flow: Flow
    data: bytes
    interval: float
    started: float
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class Notifier:
    """The edge's busy-lamp subscriptions.  Created by the Edge, called by it by name."""

    def __init__(self, *, send: Callable[[Flow, bytes], bool], known: Callable[[str], bool],
                 clock: Callable[[], float] = time.time, saved=None,
                 night_modes: Callable[[], list[str]] = lambda: [],
                 registered: Callable[[str], bool] = lambda number: True):
        self.send = send
        self.known = known  # is this an extension?
        self.registered = registered  # has it a phone registered now? (presence's open or closed)
        self.told: dict[tuple[str, str], bytes] = {}  # presence: the last document each subscription got
        self.clock = clock
        self.saved = saved  # appliance.store.subscriptions.Subscriptions, or None: memory only
        self.night_modes = night_modes
        self.states = DialogStates()
        self.subs: dict[tuple[str, str], Subscription] = {}
        self.by_lamp: dict[str, set[tuple[str, str]]] = {}
        self.pending: dict[str, _Pending] = {}  # Via branch -> a NOTIFY not yet answered
        self.outer: tuple[str, int] = ("127.0.0.1", 5060)
        self._dirty: dict[tuple[str, str], Subscription | None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self, outer: tuple[str, int]) -> None:
        """Read the stored subscriptions that have not expired and tell each the current state."""
        self._loop = asyncio.get_running_loop()
        self.outer = outer
        self.states.set_night(self._night())
        if self.saved is None:
            return
        for row in self.saved.load(self.clock()):
            sub = Subscription.from_row(row)
            self._add(sub)
        for sub in list(self.subs.values()):
            self._notify(sub, force=True)
        self.flush()
        if self.subs:
            log.info("busy lamps: %d subscriptions kept from before, each told the current state", len(self.subs))

    def stop(self) -> None:
        for p in self.pending.values():
            if p.timer is not None:
                p.timer.cancel()
        self.pending.clear()
        self.flush()
        self._loop = None

    def flush(self) -> None:
        """Write the subscriptions changed since the last flush (one transaction)."""
        if not self._dirty or self.saved is None:
            self._dirty.clear()
            return
        dirty, self._dirty = self._dirty, {}
        try:
            self.saved.save([s.row() for s in dirty.values() if s is not None],
                            [k for k, s in dirty.items() if s is None])
        except Exception:
            log.exception("busy lamps: could not write %d subscriptions", len(dirty))

    def _registered(self, number: str) -> bool:
        try:
            return bool(self.registered(number))
        except Exception:  # shown as offline; the next binding change tells it again
            log.exception("busy lamps: could not tell whether %s is registered", number)
            return False

    def _night(self) -> list[str]:
        try:
            return list(self.night_modes())
        except Exception:  # the lamps stay as they were; the next change tries again
            log.exception("busy lamps: could not read the night switches")
            return self.states.night

    # -- SUBSCRIBE ---------------------------------------------------------------------

    def owner(self, req: Request, flow: Flow) -> str | None:
        """The subscriber whose subscription this in-dialog SUBSCRIBE refreshes, from the address that made it."""
        tag = req.to.tag
        if tag is None:
            return None
        sub = self.subs.get((req.call_id, req.from_.tag or ""))
        if sub is None or sub.local_tag != tag or sub.flow.host != flow.host:
            return None
        return sub.subscriber

    def subscribe(self, req: Request, flow: Flow, now: float, extension: str, to_tag: str) -> Answer:
        """An authenticated SUBSCRIBE: a new subscription, a refresh, an unsubscription or a refusal."""
        event = (req.headers.get("event") or "").strip()
        package = event.split(";", 1)[0].strip().lower()
        if package not in PACKAGES:
            return Answer(489, "Bad Event", (("Allow-Events", ALLOW_EVENTS),))
        accept = [a.split(";", 1)[0].strip().lower() for a in req.headers.values("accept")]
        if accept and not {PACKAGES[package], *ANY_TYPE}.intersection(accept):
            return Answer(406, "Not Acceptable", (("Accept", PACKAGES[package]),))
        text = req.headers.get("expires")
        expires = DEFAULT_EXPIRES if text is None else int(text)
        if 0 < expires < MIN_EXPIRES:
            return Answer(423, "Interval Too Brief", (("Min-Expires", str(MIN_EXPIRES)),))
        expires = min(expires, MAX_EXPIRES)
        key = (req.call_id, req.from_.tag or "")
        sub = self.subs.get(key)
        if req.to.tag is not None and (sub is None or sub.local_tag != req.to.tag):
            return Answer(481, "Subscription Does Not Exist")
        if sub is not None and sub.subscriber != extension:
            return Answer(403, "Not your subscription")
        if sub is not None and sub.package != package:
            return Answer(489, "Bad Event", (("Allow-Events", sub.package),))  # a dialog has one package
        if sub is None:
            sub = self._new(req, flow, now, extension, to_tag)
            if isinstance(sub, Answer):
                return sub
        else:
            sub.flow = flow  # a phone behind NAT may come from a new port
            contact = self._contact_of(req)
            if contact:
                sub.contact = contact
        sub.expires_at = now + expires
        headers = (("Expires", str(expires)), ("Contact", self._our_contact(flow)), ("Allow-Events", ALLOW_EVENTS))
        if expires == 0:
            self._remove(sub)
            return Answer(200, None, headers, sub, final=True)
        if sub.key not in self.subs:
            self._add(sub)
        self._dirty[sub.key] = sub
        return Answer(200, None, headers, sub)

    def answered(self, answer: Answer) -> None:
        """After the SUBSCRIBE's answer went out: the NOTIFY with the state (RFC 6665 4.2.1.2)."""
        if answer.notify is not None:
            self._notify(answer.notify, final=answer.final, force=True)
        self.flush()

    def _new(self, req: Request, flow: Flow, now: float, extension: str, to_tag: str) -> Subscription | Answer:
        if sum(1 for s in self.subs.values() if s.subscriber == extension) >= MAX_PER_SUBSCRIBER:
            return Answer(403, "Too many subscriptions")
        contact = self._contact_of(req)
        if not contact:
            raise SipError(400, "SUBSCRIBE needs a Contact", req)
        uri = req.request_uri
        to_uri = req.to.uri
        resource = uri.user_unescaped if isinstance(uri, SipURI) and uri.user else None
        if resource is None and isinstance(to_uri, SipURI):
            resource = to_uri.user_unescaped
        if not resource or not self._watchable(resource):
            return Answer(404, "No such extension")
        host = uri.host if isinstance(uri, SipURI) else self.outer[0]
        routes = req.headers.values("record-route")
        local_uri = req.headers.get("to") or f"<sip:{resource}@{host}>"
        return Subscription(req.call_id, req.from_.tag or "", to_tag, extension, resource, f"sip:{resource}@{host}",
                            req.headers.get("event") or EVENT, req.headers.get("from") or "", local_uri, contact,
                            routes, flow, now, created_at=now)

    def _watchable(self, resource: str) -> bool:
        if is_night_code(resource):
            return resource == NIGHT_CODE or int(resource[len(NIGHT_CODE):]) <= len(self.states.night)
        return resource.isdigit() and self.known(resource)

    @staticmethod
    def _contact_of(req: Request) -> str | None:
        values = req.headers.values("contact")
        if not values:
            return None
        try:
            return str(parse_name_addr(values[0], where="Contact").uri)
        except SipError:
            raise SipError(400, "bad Contact", req) from None

    def _our_contact(self, flow: Flow) -> str:
        host, port = self.outer
        return f"<sip:{host}:{port};transport=tcp>" if flow.transport == "tcp" else f"<sip:{host}:{port}>"

    def _add(self, sub: Subscription) -> None:
        self.subs[sub.key] = sub
        self.by_lamp.setdefault(sub.resource, set()).add(sub.key)

    def _remove(self, sub: Subscription) -> None:
        self.told.pop(sub.key, None)
        if self.subs.pop(sub.key, None) is None:
            return
        keys = self.by_lamp.get(sub.resource)
        if keys is not None:
            keys.discard(sub.key)
            if not keys:
                del self.by_lamp[sub.resource]
        self._dirty[sub.key] = None

    # -- state changes ------------------------------------------------------------------

    def on_event(self, event: dict) -> None:
        """An event of the appliance (loop thread): NOTIFY the subscribers of every lamp it changed."""
        kind = event.get("kind")
        if kind in BINDING_EVENTS:  # presence says whether a phone is registered; dialogs do not
            lamp = str(event.get("extension") or "")
            for key in sorted(self.by_lamp.get(lamp, ())):
                if self.subs[key].package == "presence":
                    self._notify(self.subs[key])
            self.flush()
            return
        if kind == "NightModeChanged":
            changed = self.states.set_night(self._night())
        else:
            changed = self.states.on_event(event)
        for lamp in changed:
            for key in sorted(self.by_lamp.get(lamp, ())):
                self._notify(self.subs[key])
            self.states.settle(lamp)
        if changed:
            self.flush()

    def expire(self, now: float) -> None:
        """End the subscriptions not refreshed in time, each with a last NOTIFY (RFC 6665 4.2.2)."""
        for sub in [s for s in self.subs.values() if s.expires_at <= now]:
            self._remove(sub)
            self._notify(sub, final=True)
        self.flush()

    def lamps(self) -> dict[str, int]:
        """How many subscriptions watch each lamp."""
        return {lamp: len(keys) for lamp, keys in sorted(self.by_lamp.items())}

    # -- NOTIFY -----------------------------------------------------------------------------

    def _notify(self, sub: Subscription, *, final: bool = False, force: bool = False) -> None:
        """Send the lamp's state; `force`: even a presence document the subscriber has (a SUBSCRIBE's answer)."""
        now = self.clock()
        if final:
            state = "terminated;reason=timeout"
        else:
            state = f"active;expires={max(0, round(sub.expires_at - now))}"
        host = sub.entity.split("@", 1)[-1]
        dialogs = self.states.dialogs(sub.resource)
        if sub.package == "presence":
            night_key = is_night_code(sub.resource)
            body = pidf(sub.entity, dialogs, night_key or self._registered(sub.resource), night_key)
            if not (final or force) and self.told.get(sub.key) == body:
                return  # a change presence does not show (a second phone ringing, a step)
            if not final:
                self.told[sub.key] = body
        else:
            body = dialog_info(sub.entity, sub.version, dialogs, host)
        sub.version += 1
        sub.cseq += 1
        if not final:
            self._dirty[sub.key] = sub
        branch = f"{BRANCH}{secrets.token_hex(8)}"
        transport = sub.flow.transport.upper()
        via_host, via_port = self.outer
        fields = [("Via", f"SIP/2.0/{transport} {via_host}:{via_port};branch={branch};rport"),
                  ("Max-Forwards", "70"), *(("Route", r) for r in sub.route),
                  ("From", f"{sub.local_uri};tag={sub.local_tag}"), ("To", sub.remote_uri),
                  ("Call-ID", sub.call_id), ("CSeq", f"{sub.cseq} NOTIFY"),
                  ("Contact", self._our_contact(sub.flow)), ("Event", sub.event),
                  ("Subscription-State", state), ("Content-Type", PACKAGES.get(sub.package, CONTENT_TYPE))]
        data = Request(Headers(tuple(fields)), body, "NOTIFY", sub.contact).to_bytes()
        if not self.send(sub.flow, data):
            log.info("busy lamps: %s's subscription to %s ended: its connection is gone", sub.subscriber, sub.resource)
            self._remove(sub)
            return
        if self._loop is not None:
            # Over TCP the transport is reliable: only timer F runs (RFC 3261 17.1.2.2).
            first = T1 if sub.flow.transport == "udp" else TIMER_F
            p = self.pending[branch] = _Pending(sub.key, sub.flow, data, first, self._loop.time())
            p.timer = self._loop.call_later(first, self._retransmit, branch)

    def _retransmit(self, branch: str) -> None:
        p = self.pending.get(branch)
        if p is None or self._loop is None:
            return
        left = p.started + TIMER_F - self._loop.time()
        if left <= 0.001:
            del self.pending[branch]
            sub = self.subs.get(p.key)
            if sub is not None:
                log.info("busy lamps: %s did not answer a NOTIFY for %s: subscription ended", sub.subscriber, sub.resource)
                self._remove(sub)
                self.flush()
            return
        if p.flow.transport == "udp":
            self.send(p.flow, p.data)
            p.interval = min(p.interval * 2, T2)
        p.timer = self._loop.call_later(min(p.interval, left), self._retransmit, branch)

    def response(self, resp: Response, flow: Flow) -> bool:
        """A phone's answer to one of our NOTIFYs (True), or not ours (False)."""
        vias = resp.headers.values("via")
        if len(vias) != 1 or BRANCH not in vias[0]:
            return False
        branch = next((p.split("=", 1)[1].strip() for p in vias[0].split(";") if p.strip().lower().startswith("branch=")), "")
        p = self.pending.get(branch)
        if p is None or p.flow.host != flow.host:
            return branch.startswith(BRANCH)  # a late answer or a retransmitted one: ours all the same
        if resp.status < 200:
            return True
        del self.pending[branch]
        if p.timer is not None:
            p.timer.cancel()
        sub = self.subs.get(p.key)
        if sub is not None and resp.status in ENDING:
            log.info("busy lamps: %s answered %d to a NOTIFY for %s: subscription ended",
                     sub.subscriber, resp.status, sub.resource)
            self._remove(sub)
            self.flush()
        return True

