"""The B2BUA: the engine's calls, carried out step by step as routing decides.

Every call the engine takes part in is a `Session`: the caller's leg (the
A leg), the legs the engine places for it (B legs: phones through the edge,
numbers over a trunk), the routing step being carried out and the record of
everything that happened.  pjsua2 callbacks only report to the session; the
session decides.  Everything here runs on the engine thread.

Who may call what:
- a phone's call (relayed by the edge with `X-PBX-Extension`) may call
  extensions, hunt groups by their number, feature codes and, within the
  extension's dial rules, outside numbers over a trunk;
- a trunk's call (from the trunk's addresses) is routed by `Router`;
- a call from anywhere else is refused (403) unless the owner allows
  unknown callers, and even then it can never reach a trunk.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pjsua2 as pj

from appliance.routing.facts import Call as CallFacts
from appliance.routing.facts import Contact, Facts, Presence, State, contacts_by_number
from appliance.routing.numbers import normalise
from appliance.routing.steps import (
    AskWebhook, Connected, Decision, Forward, Hangup, Leg as LegSpec, Menu, Outcome, Play, Queue, Ring,
    Step, Voicemail,
)
from appliance.store import Store

from . import dialplan, media
from .core import EngineThread, guarded
from .records import Recorder
from .sipmsg import Invite, parse_invite, split_address

log = logging.getLogger("appliance.engine.b2bua")

COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'
CONFIRM_SECONDS = 15          # a mobile has this long to press 1 once it answered
INTERNAL_RING_SECONDS = 30
BUSY_CODES = {486, 600}
REG_BACKOFF = (30, 60, 120, 300, 600)  # seconds before retrying a failed trunk registration

_uids = itertools.count(1)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# ---- pjsua2 objects: they only report ------------------------------------------------


class Account(pj.Account):
    """One pjsua2 account: "phones" (towards the edge), "local", or one per trunk."""

    def __init__(self, b2bua: "B2BUA", name: str, trunk: dict | None = None):
        super().__init__()
        self.b2bua, self.name, self.trunk = b2bua, name, trunk
        self.registered = False
        self.failures = 0

    @guarded
    def onIncomingCall(self, prm: Any) -> None:
        self.b2bua.incoming(self, prm)

    @guarded
    def onRegState(self, prm: Any) -> None:
        self.b2bua.reg_state(self, prm)


class Leg(pj.Call):
    """One call leg.  `role` is "a" (the caller's) or "b" (placed by the engine)."""

    def __init__(self, b2bua: "B2BUA", acc: Account, call_id: int, role: str, target: str = "",
                 spec: int = -1, confirm: bool = False):
        super().__init__(acc, call_id)
        self.uid = next(_uids)
        self.b2bua = b2bua
        self.session: Session | None = None
        self.role, self.target, self.spec, self.confirm = role, target, spec, confirm
        self.state = "new"       # calling, ringing, answered, ended
        self.media_ok = False
        self.held = False        # the far end put this leg on hold
        self.code = 0
        self.reason = ""
        self.accepted = False    # a confirming external leg pressed the key
        self.trunk = ""
        self.sounds: list[Any] = []  # prompts played to this leg alone (the press-1 prompt)

    @guarded
    def onCallState(self, prm: Any) -> None:
        self.b2bua.leg_state(self, self.getInfo())

    @guarded
    def onCallMediaState(self, prm: Any) -> None:
        self.b2bua.leg_media(self, self.getInfo())

    @guarded
    def onDtmfDigit(self, prm: Any) -> None:
        self.b2bua.leg_digit(self, prm.digit)


def header(name: str, value: str) -> Any:
    h = pj.SipHeader()
    h.hName, h.hValue = name, value
    return h


def hangup(leg: Leg, code: int = 0, reason: str = "", headers: tuple[tuple[str, str], ...] = ()) -> None:
    if leg.state == "ended":
        return
    prm = pj.CallOpParam()
    if code:
        prm.statusCode = code
    if reason:
        prm.reason = reason
    for name, value in headers:
        prm.txOption.headers.append(header(name, value))
    try:
        leg.hangup(prm)
    except pj.Error as e:
        log.debug("hangup of leg %s: %s", leg.uid, e.info())


def audio_of(leg: Leg) -> Any:
    """The leg's audio in the bridge, fetched fresh (a cached one can belong to a reused slot)."""
    try:
        return leg.getAudioMedia(-1)
    except pj.Error:
        return None


# ---- a call ----------------------------------------------------------------------------


@dataclass
class Timer:
    when: float
    fn: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class RingRun:
    """The Ring (or Forward) step being carried out."""

    step: Ring | Forward
    specs: tuple[LegSpec, ...]
    t0: float
    started: set[int] = field(default_factory=set)
    stopped: set[int] = field(default_factory=set)
    codes: list[int] = field(default_factory=list)
    placed: int = 0


class Session:
    def __init__(self, b2bua: "B2BUA", a: Leg, direction: str, caller: str, caller_name: str,
                 dialled: str, trunk: str = "", extension: str = ""):
        self.b2bua = b2bua
        self.id = uuid.uuid4().hex[:16]
        self.a = a
        self.direction, self.caller, self.caller_name = direction, caller, caller_name
        self.dialled, self.trunk, self.extension = dialled, trunk, extension
        self.started_at, self.t0 = now_iso(), time.monotonic()
        self.answered_at: str | None = None
        self.t_answer: float | None = None
        self.answered_by = ""
        self.peer: Leg | None = None
        self.legs: dict[int, Leg] = {}
        self.step: Step | None = None
        self.routed = False            # steps come from the Router (else: a direct internal call)
        self.ring: RingRun | None = None
        self.timers: list[Timer] = []
        self.a_early = False
        self.a_answered = False
        self.ringback = "180"
        self.sounds: list[Any] = []    # tone generators, players, recorders attached to this call
        self.digits = ""
        self.ended = False
        self.outcome = ""
        self.end_reason = ""
        self.path: list[dict] = []
        self.rung: list[str] = []
        self.facts: Facts | None = None
        self.may_use_trunk = direction != "unknown"
        self.bridged = False

    # -- timers ------------------------------------------------------------------

    def after(self, seconds: float, fn: Callable[[], None]) -> Timer:
        t = Timer(time.monotonic() + seconds, fn)
        self.timers.append(t)
        self.b2bua.add_timer(t)
        return t

    def cancel_timers(self) -> None:
        for t in self.timers:
            t.cancel()
        self.timers.clear()

    def note(self, kind: str, /, **data: Any) -> None:
        self.path.append({"t": round(time.monotonic() - self.t0, 3), "kind": kind, **data})


# ---- the B2BUA ---------------------------------------------------------------------------


class B2BUA:
    """Carries out routing on the engine thread.  Create it, then `engine.call(b2bua.start)`."""

    def __init__(self, engine: EngineThread, data_dir: str | Path, *,
                 router_factory: Callable[[Store], Any] | None = None,
                 edge: tuple[str, int] | None = None,
                 trusted_hosts: tuple[str, ...] = ("127.0.0.1",),
                 allow_unknown: bool = False,
                 trunk_port: int | None = None,
                 emit: Callable[[dict], None] | None = None):
        self.engine = engine
        self.data_dir = Path(data_dir)
        self.router_factory = router_factory or default_router
        self.edge = edge
        self.trusted_hosts = set(trusted_hosts)
        self.allow_unknown = allow_unknown
        self.trunk_port = engine.config.trunk_port if trunk_port is None else trunk_port
        self._emit = emit or engine.on_event
        self.recorder = Recorder(self.data_dir)
        self.sessions: dict[str, Session] = {}
        self.accounts: dict[str, Account] = {}
        self.timers: list[Timer] = []
        self.inbox: list[Callable[[], None]] = []
        self.feature_codes: dict[str, Callable[[Session, str], Any]] = {}
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engine-webhook")
        self.store: Store | None = None
        self.router: Any = None
        self.trunks: dict[str, dict] = {}
        self.trunk_ips: dict[str, set[str]] = {}
        self.extensions: dict[str, dict] = {}
        self.strategy_state: dict[str, Any] = {}
        self.music: media.Music | None = None
        self.stats = {"post_dial_ms": []}

    # -- life --------------------------------------------------------------------

    def start(self) -> None:
        """Engine thread: open the store, create accounts, hook into the loop."""
        self.recorder.start()
        self.store = Store(self.data_dir)
        self.reload()
        self.music = media.Music(self.data_dir)
        self._create_accounts()
        self.engine.on_turn(self._turn)
        self.engine.on_shutdown(self._shutdown)

    def reload(self) -> None:
        """Engine thread: read configuration again (extensions, trunks, routing)."""
        store = self.store
        self.extensions = {e["number"]: e for e in store.extensions()}
        self.router = self.router_factory(store)
        presence = store.routing_state("presence", {}) or {}
        self.strategy_state = {
            "presence": presence,
            "positions": store.routing_state("positions", {}) or {},
            "learned": store.routing_state("learned", {}) or {},
        }
        self.settings = store.get_setting("engine", {}) or {}
        trunks = {t["name"]: t for t in store.trunks() if t.get("enabled", 1)}
        self.trunk_ips = {}
        for name, t in trunks.items():
            ips = set()
            for addr in [t["host"], *t.get("addresses", [])]:
                ips.add(resolve(split_address(addr)[0] if addr.count(":") == 1 else addr))
            self.trunk_ips[name] = ips
        if self.accounts and trunks != self.trunks:
            self.trunks = trunks
            self._create_trunk_accounts()
        self.trunks = trunks

    def _create_accounts(self) -> None:
        cfg = self.engine.config
        local = self.engine.transports["local"]
        acc = Account(self, "phones")
        ac = pj.AccountConfig()
        ac.idUri = f"sip:pbx@{cfg.sip_host}:{cfg.sip_port}"
        ac.sipConfig.transportId = local
        self._media_ports(ac)
        if self.edge:
            ac.sipConfig.proxies.append(f"sip:{self.edge[0]}:{self.edge[1]};lr")
        acc.create(ac, True)
        self.accounts["phones"] = acc
        self._create_trunk_accounts()

    def _media_ports(self, ac: Any) -> None:
        # RTP from `rtp_port` up (an even port per leg, RTCP next to it).
        ac.mediaConfig.transportConfig.port = int(self.settings.get("rtp_port", 10000))
        ac.mediaConfig.transportConfig.portRange = int(self.settings.get("rtp_ports", 4000))

    def _create_trunk_accounts(self) -> None:
        tid = self.engine.transports.get("trunk")
        for name in [n for n in self.accounts if n.startswith("trunk:")]:
            acc = self.accounts.pop(name)
            try:
                acc.shutdown()
            except pj.Error:
                pass
        if tid is None:
            return
        cfg = self.engine.config
        public = self.settings.get("trunk_public") or cfg.trunk_public or cfg.trunk_host
        for name, t in self.trunks.items():
            acc = Account(self, f"trunk:{name}", t)
            ac = pj.AccountConfig()
            host = f"{t['host']}:{t.get('port') or 5060}"
            domain = t.get("from_domain") or t["host"]
            ac.sipConfig.transportId = tid
            self._media_ports(ac)
            if t["kind"] == "register":
                ac.idUri = f"sip:{t['username']}@{domain}"
                ac.regConfig.registrarUri = f"sip:{host}"
                ac.regConfig.timeoutSec = int(t.get("register_expires") or 300)
                ac.regConfig.retryIntervalSec = 0   # our own back-off, see reg_state
                ac.regConfig.registerOnAdd = True
                ac.sipConfig.authCreds.append(pj.AuthCredInfo(
                    "digest", "*", t.get("auth_username") or t["username"], 0, t.get("password") or ""))
            else:
                number = t.get("caller_id") or (t.get("numbers") or ["pbx"])[0]
                ac.idUri = f"sip:{number}@{public if public not in ('0.0.0.0', '') else '127.0.0.1'}"
                ac.regConfig.registerOnAdd = False
            acc.create(ac, False)
            self.accounts[f"trunk:{name}"] = acc
            self.emit("TrunkConfigured", trunk=name, type=t["kind"])

    def _shutdown(self) -> None:
        for s in list(self.sessions.values()):
            s.ended = True
        self.sessions.clear()
        for acc in self.accounts.values():
            try:
                acc.shutdown()
            except pj.Error:
                pass
        self.accounts.clear()
        if self.music:
            self.music.close()
        self.music = None
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.store:
            self.store.close()
        self.recorder.stop()

    def _turn(self) -> None:
        media.release_retired()
        now = time.monotonic()
        if self.inbox:
            jobs, self.inbox = self.inbox, []
            for job in jobs:
                job()
        if self.timers:
            due = [t for t in self.timers if t.when <= now]
            if due:
                self.timers = [t for t in self.timers if t.when > now and not t.cancelled]
                for t in sorted(due, key=lambda t: t.when):
                    if not t.cancelled:
                        t.cancelled = True
                        t.fn()

    def add_timer(self, t: Timer) -> None:
        self.timers.append(t)

    def later(self, fn: Callable[[], None]) -> None:
        """Any thread: run fn on the engine thread at its next turn."""
        self.inbox.append(fn)  # list.append is atomic under the GIL

    # -- events ------------------------------------------------------------------

    def emit(self, kind: str, call_id: str | None = None, /, **data: Any) -> None:
        event = {"kind": kind, "at": now_iso(), "call_id": call_id, **data}
        self.recorder.submit(lambda s: s.append_event(kind, data, call_id, event["at"]))
        try:
            self._emit(event)
        except Exception:  # noqa: BLE001 - a subscriber must not break a call
            log.exception("event subscriber failed")

    # -- trunks --------------------------------------------------------------------

    def reg_state(self, acc: Account, prm: Any) -> None:
        name = acc.name.split(":", 1)[1]
        code = prm.code
        if 200 <= code < 300 and prm.expiration > 0:
            acc.registered, acc.failures = True, 0
            self.emit("TrunkRegistered", trunk=name, expires=prm.expiration)
            return
        was = acc.registered
        acc.registered = False
        if prm.expiration == 0 and 200 <= code < 300:
            self.emit("TrunkUnregistered", trunk=name)
            return
        delay = REG_BACKOFF[min(acc.failures, len(REG_BACKOFF) - 1)]
        acc.failures += 1
        self.emit("TrunkRegistrationFailed", trunk=name, code=code, reason=prm.reason,
                  retry_in=delay, was_registered=was)
        t = Timer(time.monotonic() + delay, lambda: self._reregister(acc))
        self.add_timer(t)

    def _reregister(self, acc: Account) -> None:
        if self.accounts.get(acc.name) is acc:
            try:
                acc.setRegistration(True)
            except pj.Error as e:
                log.warning("trunk %s: %s", acc.name, e.info())

    def trunk_for_source(self, host: str, inv: Invite, acc: Account | None = None) -> str | None:
        names = [n for n, ips in self.trunk_ips.items() if host in ips]
        if not names:
            return None
        for n in names:
            t = self.trunks[n]
            if t["kind"] == "register" and inv.ruri_user in (t.get("username"), t.get("auth_username")):
                return n
        for n in names:
            numbers = {normalise(x) for x in self.trunks[n].get("numbers", [])}
            if normalise(inv.to_user) in numbers or normalise(inv.ruri_user) in numbers:
                return n
        return names[0]

    def trunk_out(self, prefer: str = "") -> tuple[Account, dict] | None:
        order = ([prefer] if prefer else []) + [n for n in self.trunks if n != prefer]
        for name in order:
            acc = self.accounts.get(f"trunk:{name}")
            if acc is None:
                continue
            if acc.trunk["kind"] == "ip" or acc.registered:
                return acc, acc.trunk
        return None

    # -- incoming calls ------------------------------------------------------------

    def incoming(self, acc: Account, prm: Any) -> None:
        inv = parse_invite(prm.rdata.wholeMsg, prm.rdata.srcAddress)
        a = Leg(self, acc, prm.callId, "a")
        self.engine.registry.keep(("leg", a.uid), a)
        a.state = "ringing"
        ext = inv.header("x-pbx-extension")
        if ext and inv.source_host in self.trusted_hosts and ext in self.extensions:
            self._from_phone(a, inv, ext)
            return
        # Providers address the trunk transport; anything sent to the phones'
        # port without the edge's header is a stranger, whatever its address.
        trunk = self.trunk_for_source(inv.source_host, inv) if inv.ruri_port == self.trunk_port else None
        if trunk is not None:
            self._from_trunk(a, inv, trunk)
            return
        if not self.allow_unknown:
            self.emit("CallRefused", source=f"{inv.source_host}:{inv.source_port}", dialled=inv.ruri_user,
                      reason="unknown source")
            hangup(a, 403, "Forbidden")
            return
        s = Session(self, a, "unknown", normalise(inv.from_user), inv.from_name, inv.ruri_user)
        self._begin(s)
        self._route_first(s)

    def _begin(self, s: Session) -> None:
        s.a.session = s
        self.sessions[s.id] = s
        self.emit("CallStarted", s.id, direction=s.direction, caller=s.caller, caller_name=s.caller_name,
                  dialled=s.dialled, trunk=s.trunk, extension=s.extension)

    def _from_trunk(self, a: Leg, inv: Invite, trunk: str) -> None:
        t = self.trunks[trunk]
        numbers = [normalise(x) for x in t.get("numbers", [])]
        if normalise(inv.to_user) in numbers:
            dialled = inv.to_user
        elif normalise(inv.ruri_user) in numbers or not numbers:
            dialled = inv.ruri_user
        elif inv.ruri_user in (t.get("username"), t.get("auth_username")):
            dialled = numbers[0]  # a registered trunk calls its account: the trunk's own number
        else:
            dialled = inv.ruri_user
        s = Session(self, a, "inbound", normalise(inv.from_user), inv.from_name, normalise(dialled), trunk=trunk)
        self._begin(s)
        self._route_first(s)

    def _from_phone(self, a: Leg, inv: Invite, ext: str) -> None:
        number = inv.ruri_user
        name = self.extensions[ext].get("name") or ""
        s = Session(self, a, "internal", ext, name, number, extension=ext)
        self._begin(s)
        if not dialplan.valid(number):
            return self.refuse(s, dialplan.Refused(484, f"'{number}' is not a number: only digits, *, # and +"))
        if number.startswith("**") and number[2:] in self.extensions:
            return self.pickup(s, number[2:])
        if number == "*8":
            return self.group_pickup(s)
        if number[0] in "*#":
            handler = self.feature_codes.get(number)
            if handler is None:
                return self.refuse(s, dialplan.Refused(404, f"No feature code {number}"))
            s.note("feature", code=number)
            handler(s, number)
            return
        if number in self.extensions:
            if number == ext:
                return self.refuse(s, dialplan.Refused(486, "You called your own extension"))
            s.step = Ring(f"ext:{number}", f"extension {number}",
                          (LegSpec(number, 0, INTERNAL_RING_SECONDS),), INTERNAL_RING_SECONDS)
            return self.execute(s, s.step)
        route = self.router.match(CallFacts(ext, number)) if self.router else None
        if route is not None and route.numbers and normalise(number) in route.numbers:
            s.direction = "internal"
            return self._route_first(s)
        self._outbound(s, number)

    def _outbound(self, s: Session, number: str) -> None:
        ext = s.extension
        row = self.extensions[ext]
        try:
            d = dialplan.classify(number)
            rules = json.loads(row["dial_rules"]) if row.get("dial_rules") else None
            active = sum(1 for o in self.sessions.values()
                         if o is not s and o.direction == "outbound" and o.extension == ext and not o.ended)
            dialplan.check_outbound(d, ext, rules, active, row.get("max_outbound"))
        except dialplan.Refused as r:
            return self.refuse(s, r)
        s.direction = "outbound"
        s.dialled = d.number
        s.step = Forward(f"number:{d.number}", d.number, d.number, 120, confirm=False)
        self.execute(s, s.step)

    def refuse(self, s: Session, r: dialplan.Refused) -> None:
        s.outcome, s.end_reason = "refused", r.text
        s.note("refused", status=r.status, reason=r.text)
        self.emit("CallRefused", s.id, reason=r.text, status=r.status)
        self.end(s, code=r.status, reason=r.text, warning=r.text)

    # -- routing -------------------------------------------------------------------

    def facts(self, s: Session) -> Facts:
        import random

        tz = ZoneInfo(self.store.timezone)
        if s.facts is None:
            s.facts = Facts(CallFacts(s.caller, s.dialled, s.trunk), datetime.now(tz), random.Random())
        else:
            s.facts = Facts(s.facts.call, datetime.now(tz), s.facts.rng)
        return s.facts

    def state(self) -> State:
        bound = {b["extension"] for b in self.store.bindings()}
        busy: dict[str, int] = {}
        for o in self.sessions.values():
            if o.ended:
                continue
            for ext in (o.extension, o.answered_by):
                if ext in self.extensions:
                    busy[ext] = busy.get(ext, 0) + 1
        today = datetime.now(timezone.utc).date().isoformat()
        presence = {}
        for ext, row in self.extensions.items():
            mem = self.strategy_state["presence"].get(ext, {})
            last = mem.get("last_call_end")
            presence[ext] = Presence(
                registered=ext in bound, dnd=bool(row.get("dnd")), calls=busy.get(ext, 0),
                last_call_end=datetime.fromisoformat(last) if last else None,
                calls_today=mem.get("calls_today", 0) if mem.get("day") == today else 0)
        contacts = contacts_by_number(
            (c["number"], Contact(c.get("name") or "", c.get("manager"), bool(c.get("vip"))))
            for c in self.store.contacts())
        return State(presence=presence, contacts=contacts, learned=self.strategy_state["learned"],
                     positions=self.strategy_state["positions"])

    def _route_first(self, s: Session) -> None:
        s.routed = True
        try:
            decision = self.router.first_step(self.facts(s), self.state())
        except Exception as e:  # noqa: BLE001 - a routing bug must not leave the caller hanging
            log.exception("routing failed for call %s", s.id)
            s.outcome, s.end_reason = "failed", f"routing error: {e}"
            return self.end(s, code=500, reason="Routing error")
        self.decided(s, decision)

    def step_done(self, s: Session, outcome: Outcome, **kw: Any) -> None:
        """The current step ended with `outcome`: ask routing what comes next."""
        if s.ended:
            return
        step = s.step
        s.cancel_timers()
        s.ring = None
        s.note("outcome", step=type(step).__name__.lower(), outcome=outcome.value,
               **{k: v for k, v in kw.items() if k != "answer"})
        if not s.routed:
            code = {Outcome.BUSY: 486, Outcome.UNAVAILABLE: 480, Outcome.NO_ANSWER: 480}.get(outcome, 503)
            text = {486: "Busy Here", 480: "No Answer"}.get(code, "Service Unavailable")
            if outcome is Outcome.FAILED and kw.get("code"):
                code = kw["code"]
            s.outcome = s.outcome or ("missed" if s.direction == "internal" else "failed")
            return self.end(s, code=code, reason=text)
        try:
            decision = self.router.next_step(step, outcome, self.facts(s), self.state(), **kw)
        except Exception as e:  # noqa: BLE001
            log.exception("routing failed for call %s", s.id)
            s.outcome, s.end_reason = "failed", f"routing error: {e}"
            return self.end(s, code=500, reason="Routing error")
        self.decided(s, decision)

    def decided(self, s: Session, d: Decision) -> None:
        for t in d.trace:
            s.note("trace", what=t.kind, text=t.text)
        if d.updates.positions:
            self.strategy_state["positions"].update(d.updates.positions)
            positions = dict(self.strategy_state["positions"])
            self.recorder.submit(lambda st: st.set_routing_state("positions", positions))
        if d.updates.answered:
            caller, ext = d.updates.answered
            self.strategy_state["learned"][caller] = ext
            learned = dict(self.strategy_state["learned"])
            self.recorder.submit(lambda st: st.set_routing_state("learned", learned))
        s.step = d.step
        self.execute(s, d.step)

    def execute(self, s: Session, step: Step) -> None:
        if s.ended:
            return
        kind = type(step).__name__
        self.emit("StepStarted", s.id, step=kind.lower(), dest=getattr(step, "dest", ""),
                  name=getattr(step, "name", ""))
        s.note("step", step=kind.lower(), dest=getattr(step, "dest", ""), name=getattr(step, "name", ""))
        if isinstance(step, Ring):
            s.ringback = self.ringback_for(step.dest)
            self.ring(s, step, step.legs)
        elif isinstance(step, Forward):
            s.ringback = self.ringback_for(step.dest)
            self.ring(s, step, (LegSpec(step.number, 0, step.for_seconds, external=True, confirm=step.confirm),))
        elif isinstance(step, Connected):
            pass
        elif isinstance(step, Hangup):
            s.end_reason = step.reason
            self.end(s, code=480 if not s.a_answered else 0, reason="Temporarily Unavailable")
        elif isinstance(step, AskWebhook):
            self.ask_webhook(s, step)
        elif isinstance(step, Play):
            self.play(s, step)
        elif isinstance(step, Menu):
            self.menu(s, step)
        elif isinstance(step, Voicemail):
            self.voicemail(s, step)
        elif isinstance(step, Queue):
            self.queue(s, step)
        else:  # pragma: no cover - a new kind of step
            raise TypeError(f"the engine cannot carry out {kind}")

    def ringback_for(self, dest: str) -> str:
        rb = self.settings.get("ringback", {})
        return rb.get(dest, rb.get("default", "180")) if isinstance(rb, dict) else str(rb)

    # -- ringing legs ------------------------------------------------------------------

    def ring(self, s: Session, step: Ring | Forward, specs: tuple[LegSpec, ...]) -> None:
        run = s.ring = RingRun(step, specs, time.monotonic())
        # Stops before starts at the same moment: one-by-one hunting never rings two at once.
        for i, spec in enumerate(specs):
            s.after(spec.stop, lambda i=i: self.leg_stop(s, run, i))
        s.after(step.for_seconds, lambda: self.ring_over(s, run))
        for i, spec in enumerate(specs):
            if spec.start <= 0:
                self.leg_start(s, run, i)
            else:
                s.after(spec.start, lambda i=i: self.leg_start(s, run, i))
        self.check_exhausted(s, run)

    def leg_start(self, s: Session, run: RingRun, i: int) -> None:
        if s.ended or s.ring is not run or s.peer is not None:
            return
        spec = run.specs[i]
        run.started.add(i)
        from_name = s.caller_name or s.caller
        if spec.external or spec.target.startswith("+"):
            if not s.may_use_trunk:
                run.codes.append(403)
                s.note("skip", target=spec.target, why="an unknown caller cannot reach a trunk")
                return
            out = self.trunk_out(s.trunk)
            if out is None:
                run.codes.append(503)
                s.note("skip", target=spec.target, why="no trunk available")
                return
            acc, trunk = out
            d = dialplan.Dialled(normalise(spec.target), "")
            uri = f"sip:{d.national}@{trunk['host']}:{trunk.get('port') or 5060}"
            domain = trunk.get("from_domain") or trunk["host"]
            if s.direction == "inbound" and trunk.get("pass_caller_id") and s.caller:
                from_user = s.caller
            else:
                from_user = trunk.get("caller_id") or (trunk.get("numbers") or [""])[0] or trunk.get("username")
            local = f"<sip:{from_user}@{domain}>"
            self.place(s, run, i, acc, uri, local, confirm=spec.confirm, trunk=trunk["name"])
        else:
            bindings = self.store.bindings(spec.target)
            if not bindings:
                run.codes.append(480)
                s.note("skip", target=spec.target, why="not registered")
            cfg = self.engine.config
            local = f'"{from_name}" <sip:{s.caller or "anonymous"}@{cfg.sip_host}:{cfg.sip_port}>'
            for b in bindings:
                self.place(s, run, i, self.accounts["phones"], b["contact"], local)
        if spec.target not in s.rung:
            s.rung.append(spec.target)

    def place(self, s: Session, run: RingRun, i: int, acc: Account, uri: str, local: str,
              confirm: bool = False, trunk: str = "") -> Leg | None:
        spec = run.specs[i]
        leg = Leg(self, acc, pj.PJSUA_INVALID_ID, "b", spec.target, i, confirm)
        leg.session, leg.trunk = s, trunk
        prm = pj.CallOpParam(True)
        prm.txOption.localUri = local
        try:
            leg.makeCall(uri, prm)
        except pj.Error as e:
            log.warning("call %s: could not call %s: %s", s.id, uri, e.info())
            run.codes.append(500)
            leg.session = None
            return None
        leg.state = "calling"
        self.engine.registry.keep(("leg", leg.uid), leg)
        s.legs[leg.uid] = leg
        run.placed += 1
        self.emit("LegStarted", s.id, target=spec.target, uri=uri, leg=leg.uid)
        return leg

    def leg_stop(self, s: Session, run: RingRun, i: int) -> None:
        if s.ended or s.ring is not run or s.peer is not None:
            return
        run.stopped.add(i)
        for leg in [l for l in s.legs.values() if l.spec == i]:
            hangup(leg)
        self.check_exhausted(s, run)

    def ring_over(self, s: Session, run: RingRun) -> None:
        if s.ended or s.ring is not run or s.peer is not None:
            return
        for leg in list(s.legs.values()):
            hangup(leg)
        self.step_done(s, Outcome.NO_ANSWER)

    def check_exhausted(self, s: Session, run: RingRun) -> None:
        """Nobody left ringing and nobody still to start: the step is over early."""
        if s.ended or s.ring is not run or s.peer is not None:
            return
        if any(l.spec >= 0 for l in s.legs.values()) or len(run.started) < len(run.specs):
            return
        if not run.codes or run.placed == 0 and all(c in (480, 403, 503) for c in run.codes):
            outcome = Outcome.UNAVAILABLE
        elif all(c in BUSY_CODES for c in run.codes):
            outcome = Outcome.BUSY
        elif run.stopped or any(c in (408, 480, 487, 0) for c in run.codes):
            outcome = Outcome.NO_ANSWER
        else:
            outcome = Outcome.FAILED
        if not s.routed and outcome is Outcome.FAILED:
            return self.step_done(s, outcome, code=run.codes[-1])
        self.step_done(s, outcome)

    # -- what legs report -----------------------------------------------------------------

    def leg_state(self, leg: Leg, ci: Any) -> None:
        st = ci.state
        s = leg.session
        if st == pj.PJSIP_INV_STATE_DISCONNECTED:
            leg.state, leg.code, leg.reason = "ended", ci.lastStatusCode, ci.lastReason
            self.engine.registry.done(("leg", leg.uid))
            leg.session = None
            if s is not None:
                self.leg_ended(s, leg)
            return
        if s is None or s.ended:
            return
        if leg.role == "b" and st == pj.PJSIP_INV_STATE_EARLY and leg.state == "calling":
            leg.state = "ringing"
            self.emit("LegRinging", s.id, target=leg.target, leg=leg.uid, code=ci.lastStatusCode)
            self.ringing(s)
        elif st == pj.PJSIP_INV_STATE_CONFIRMED and leg.state != "answered":
            leg.state = "answered"
            if leg.role == "b":
                self.b_answered(s, leg)

    def ringing(self, s: Session) -> None:
        if s.a_early or s.a_answered:
            return
        s.a_early = True
        prm = pj.CallOpParam()
        prm.statusCode = 180 if s.ringback == "180" else 183
        try:
            s.a.answer(prm)
        except pj.Error as e:
            log.warning("call %s: could not send ringing: %s", s.id, e.info())
            return
        self.stats["post_dial_ms"].append((time.monotonic() - s.t0) * 1000)
        if s.ringback != "180":
            self.leg_media(s.a, None)

    def b_answered(self, s: Session, leg: Leg) -> None:
        if s.peer is not None or s.ring is None:
            hangup(leg, headers=(("Reason", COMPLETED_ELSEWHERE),))
            return
        if leg.confirm and not leg.accepted:
            # A mobile answered: it is bridged only after the key press, so its
            # voicemail can never take the call.
            self.emit("LegConfirming", s.id, target=leg.target, leg=leg.uid)
            s.note("confirming", target=leg.target)
            snd = media.confirm_prompt(self.data_dir)
            leg.sounds.append(snd)
            self.connect_sound(snd, leg)
            s.after(float(self.settings.get("confirm_seconds", CONFIRM_SECONDS)),
                    lambda: self.confirm_timeout(s, leg))
            return
        self.winner(s, leg, leg.target)

    def confirm_timeout(self, s: Session, leg: Leg) -> None:
        if leg.accepted or leg.state == "ended" or s.ended:
            return
        s.note("not_confirmed", target=leg.target)
        self.emit("LegNotConfirmed", s.id, target=leg.target, leg=leg.uid)
        hangup(leg)

    def leg_digit(self, leg: Leg, digit: str) -> None:
        s = leg.session
        if s is None or s.ended:
            return
        if leg.role == "b" and leg.confirm and not leg.accepted and leg.state == "answered":
            if digit == self.settings.get("confirm_key", "1"):
                leg.accepted = True
                for snd in leg.sounds:
                    media.stop(snd)
                leg.sounds.clear()
                s.note("confirmed", target=leg.target)
                self.winner(s, leg, leg.target)
            return
        if leg is s.a and isinstance(s.step, Menu):
            self.menu_digit(s, digit)

    def winner(self, s: Session, leg: Leg, by: str) -> None:
        """leg takes the call: bridge it, cancel everyone else."""
        s.peer = leg
        s.answered_by = by
        s.answered_at, s.t_answer = now_iso(), time.monotonic()
        step = s.step
        s.cancel_timers()
        s.ring = None
        for other in list(s.legs.values()):
            if other is not leg:
                hangup(other, headers=(("Reason", COMPLETED_ELSEWHERE),))
        leg.spec = -1
        if not s.a_answered:
            self.answer_a(s)
        self.bridge(s)
        s.note("answered", by=by)
        self.emit("CallAnswered", s.id, by=by, wait_s=round(s.t_answer - s.t0, 3))
        if s.routed and isinstance(step, (Ring, Forward, Queue)):
            try:
                d = self.router.next_step(step, Outcome.ANSWERED, self.facts(s), self.state(), by=by)
            except Exception:  # noqa: BLE001
                log.exception("routing failed after an answer on call %s", s.id)
                return
            for t in d.trace:
                s.note("trace", what=t.kind, text=t.text)
            self.decided(s, d) if not isinstance(d.step, Connected) else self._connected(s, d)

    def _connected(self, s: Session, d: Decision) -> None:
        s.step = d.step
        if d.updates.positions or d.updates.answered:
            self.decided(s, Decision(d.step, (), d.updates))

    def answer_a(self, s: Session) -> None:
        s.a_answered = True
        prm = pj.CallOpParam()
        prm.statusCode = 200
        try:
            s.a.answer(prm)
        except pj.Error as e:
            log.warning("call %s: could not answer the caller: %s", s.id, e.info())

    def leg_media(self, leg: Leg, ci: Any) -> None:
        s = leg.session
        if ci is not None:
            active = [m for m in ci.media if m.type == pj.PJMEDIA_TYPE_AUDIO]
            leg.media_ok = any(m.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD)
                               for m in active)
            held = any(m.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD for m in active)
            if held != leg.held and s is not None and s.bridged and not s.ended:
                leg.held = held
                self.hold_changed(s, leg)
                return
            leg.held = held
        if s is None or s.ended:
            return
        if s.peer is not None:
            self.bridge(s)
        elif leg is s.a and s.a_early and not s.a_answered and s.ringback != "180" and not s.sounds:
            snd = media.ringback(self.music) if s.ringback == "tone" else self.music.player()
            if snd is not None:
                s.sounds.append(snd)
                self.connect_sound(snd, s.a)
        for snd in leg.sounds:
            self.connect_sound(snd, leg)

    def connect_sound(self, snd: Any, leg: Leg) -> None:
        am = audio_of(leg)
        if am is not None and snd is not None:
            snd.startTransmit(am)

    def bridge(self, s: Session) -> None:
        if s.bridged or s.peer is None or not (s.a.media_ok and s.peer.media_ok):
            return
        a, b = audio_of(s.a), audio_of(s.peer)
        if a is None or b is None:
            return
        for snd in s.sounds:
            media.stop(snd)
        s.sounds.clear()
        for snd in s.peer.sounds:
            media.stop(snd)
        s.peer.sounds.clear()
        a.startTransmit(b)
        b.startTransmit(a)
        s.bridged = True
        self.emit("CallBridged", s.id, by=s.answered_by)

    def hold_changed(self, s: Session, leg: Leg) -> None:
        """One side put the other on hold (or took it off): music instead of silence."""
        other = s.peer if leg is s.a else s.a
        a, b = audio_of(leg), audio_of(other)
        if a is None or b is None:
            return
        if leg.held:
            a.stopTransmit(b)
            player = self.music.player()
            if player is not None:
                s.sounds.append(player)
                player.startTransmit(b)
            self.emit("CallHeld", s.id, by=leg.target or s.caller)
        else:
            for snd in s.sounds:
                media.stop(snd)
            s.sounds.clear()
            a.startTransmit(b)
            b.startTransmit(a)
            self.emit("CallResumed", s.id, by=leg.target or s.caller)

    def leg_ended(self, s: Session, leg: Leg) -> None:
        s.legs.pop(leg.uid, None)
        for snd in leg.sounds:
            media.stop(snd)
        leg.sounds.clear()
        if s.ended:
            return
        if leg is s.a:
            s.end_reason = s.end_reason or ("caller hung up" if s.peer else "caller gave up")
            self.emit("CallerHungUp", s.id)
            return self.end(s)
        if leg is s.peer:
            s.end_reason = s.end_reason or f"{leg.target} hung up"
            return self.end(s)
        run = s.ring
        if run is not None and leg.spec >= 0:
            run.codes.append(leg.code)
            self.emit("LegEnded", s.id, target=leg.target, code=leg.code, reason=leg.reason)
            s.note("leg", target=leg.target, code=leg.code)
            self.check_exhausted(s, run)

    # -- the end -------------------------------------------------------------------------

    def end(self, s: Session, code: int = 0, reason: str = "", warning: str = "") -> None:
        if s.ended:
            return
        s.ended = True
        s.cancel_timers()
        s.ring = None
        for snd in s.sounds:
            media.stop(snd)
        s.sounds.clear()
        for leg in list(s.legs.values()):
            hangup(leg)
        if s.peer is not None and s.peer.uid not in s.legs:
            hangup(s.peer)  # a leg that joined by pickup
        if s.a.state != "ended":
            if s.a_answered:
                hangup(s.a)
            else:
                hdrs = (("Warning", f'399 pbx "{warning}"'),) if warning else ()
                hangup(s.a, code or 480, reason, hdrs)
        self.sessions.pop(s.id, None)
        self.record(s)
        # Let go of the legs now: a Call object freed late (a timer's closure
        # kept this session) can hang up a new call that reuses its call id.
        self.timers = [t for t in self.timers if not t.cancelled]
        s.legs.clear()
        s.peer = None
        s.a = None  # type: ignore[assignment]

    def record(self, s: Session) -> None:
        ended_at = now_iso()
        talk = (time.monotonic() - s.t_answer) if s.t_answer else 0.0
        wait = ((s.t_answer or time.monotonic()) - s.t0)
        if not s.outcome:
            if s.answered_by:
                s.outcome = "answered"
            elif isinstance(s.step, Voicemail):
                s.outcome = "voicemail"
            elif s.direction in ("inbound", "internal", "unknown") and s.rung:
                s.outcome = "missed"
            elif s.direction == "outbound":
                s.outcome = "failed"
            else:
                s.outcome = "missed" if s.direction == "inbound" else "failed"
        row = {
            "id": s.id, "started_at": s.started_at, "answered_at": s.answered_at, "ended_at": ended_at,
            "direction": s.direction, "caller": s.caller, "dialled": s.dialled, "trunk": s.trunk,
            "extension": s.extension, "answered_by": s.answered_by, "outcome": s.outcome,
            "wait_s": round(wait, 3), "talk_s": round(talk, 3),
            "path": [*s.path, {"kind": "end", "reason": s.end_reason, "rung": s.rung}],
        }
        missed = s.outcome in ("missed", "voicemail") and s.direction in ("inbound", "internal", "unknown")
        manager = None
        if missed and s.facts is not None:
            st_contacts = {c["number"]: c for c in self.store.contacts()}
            manager = (st_contacts.get(s.caller) or {}).get("manager")

        def write(store: Store) -> None:
            with store.db.atomic():
                store.record_call(row)
                if missed:
                    store.add_missed(s.id, s.caller, s.dialled, ended_at, manager)

        self.recorder.submit(write)
        if s.answered_by in self.extensions:
            self._count_call(s.answered_by)
        self.emit("CallEnded", s.id, outcome=s.outcome, answered_by=s.answered_by, reason=s.end_reason,
                  wait_s=row["wait_s"], talk_s=row["talk_s"])
        if missed:
            self.emit("CallMissed", s.id, caller=s.caller, dialled=s.dialled)

    def _count_call(self, ext: str) -> None:
        today = datetime.now(timezone.utc).date().isoformat()
        p = self.strategy_state["presence"].setdefault(ext, {})
        p["calls_today"] = (p.get("calls_today", 0) if p.get("day") == today else 0) + 1
        p["day"] = today
        p["last_call_end"] = datetime.now(timezone.utc).isoformat()
        presence = json.loads(json.dumps(self.strategy_state["presence"]))
        self.recorder.submit(lambda st: st.set_routing_state("presence", presence))

    # -- other steps ------------------------------------------------------------------------

    def ask_webhook(self, s: Session, step: AskWebhook) -> None:
        def post() -> tuple[Outcome, Any]:
            body = json.dumps(dict(step.request)).encode()
            req = urllib.request.Request(step.url, body, {"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=step.timeout) as r:
                    return Outcome.WEBHOOK_ANSWER, json.loads(r.read().decode() or "null")
            except (socket.timeout, TimeoutError):
                return Outcome.TIMEOUT, None
            except OSError as e:
                if isinstance(getattr(e, "reason", None), (socket.timeout, TimeoutError)):
                    return Outcome.TIMEOUT, None
                return Outcome.FAILED, None
            except ValueError:
                return Outcome.FAILED, None

        fut = self.pool.submit(post)

        def done(f: Any) -> None:
            outcome, answer = f.result()

            def back() -> None:
                if not s.ended and s.step is step:
                    self.step_done(s, outcome, answer=answer)
            self.later(back)

        fut.add_done_callback(done)

    def play(self, s: Session, step: Play) -> None:
        if not s.a_answered:
            self.answer_a(s)
        snd, seconds = media.prompt(self.data_dir, step.prompt)
        s.sounds.append(snd)
        self.connect_sound(snd, s.a)
        s.after(seconds, lambda: (media.stop(snd), self.step_done(s, Outcome.PLAYED)))

    def menu(self, s: Session, step: Menu) -> None:
        if not s.a_answered:
            self.answer_a(s)
        s.digits = ""
        total = 0.0
        for name in step.prompts:
            snd, seconds = media.prompt(self.data_dir, name)
            s.sounds.append(snd)
            s.after(total, lambda snd=snd: self.connect_sound(snd, s.a))
            s.after(total + seconds, lambda snd=snd: media.stop(snd))
            total += seconds
        s.after(total + step.timeout, lambda: self.menu_over(s, step))

    def menu_digit(self, s: Session, digit: str) -> None:
        step = s.step
        for snd in s.sounds:
            media.stop(snd)
        s.cancel_timers()
        s.digits += digit
        entry = step.entry(s.digits)
        if entry.value == "more":
            s.after(step.inter_digit, lambda: self.menu_over(s, step))
        else:
            self.step_done(s, Outcome.DIGITS, digits=s.digits)

    def menu_over(self, s: Session, step: Menu) -> None:
        if s.step is not step:
            return
        if s.digits:
            self.step_done(s, Outcome.DIGITS, digits=s.digits)
        else:
            self.step_done(s, Outcome.TIMEOUT)

    def voicemail(self, s: Session, step: Voicemail) -> None:
        if not s.a_answered:
            self.answer_a(s)
        box = self.data_dir / "voicemail" / (step.box or "general")
        box.mkdir(parents=True, exist_ok=True)
        path = box / f"{s.started_at[:19].replace(':', '-')}-{s.id}.wav"
        beep, seconds = media.prompt(self.data_dir, f"vm-{step.greeting}")
        s.sounds.append(beep)
        self.connect_sound(beep, s.a)

        def record() -> None:
            media.stop(beep)
            rec = pj.AudioMediaRecorder()
            rec.createRecorder(str(path))
            s.sounds.append(rec)
            am = audio_of(s.a)
            if am is not None:
                am.startTransmit(rec)
            s.note("voicemail", box=step.box, file=str(path))
        s.after(seconds, record)
        s.after(seconds + 180, lambda: self.end(s))

    def queue(self, s: Session, step: Queue) -> None:
        """Hold the caller with music and ring agents as routing plans, until max wait."""
        if not s.a_answered:
            self.answer_a(s)
        player = self.music.player()
        if player is not None:
            s.sounds.append(player)
            self.connect_sound(player, s.a)
        self.queue_try(s, step)
        s.after(step.max_wait, lambda: self.queue_over(s, step))

    def queue_try(self, s: Session, step: Queue) -> None:
        if s.ended or s.step is not step:
            return
        d = self.router.queue_ring(step, self.facts(s), self.state())
        for t in d.trace:
            s.note("trace", what=t.kind, text=t.text)
        if isinstance(d.step, Ring):
            run = s.ring = RingRun(step, d.step.legs, time.monotonic())  # type: ignore[arg-type]
            for i, spec in enumerate(run.specs):
                s.after(spec.stop, lambda i=i: self.leg_stop(s, run, i))
                if spec.start <= 0:
                    self.leg_start(s, run, i)
                else:
                    s.after(spec.start, lambda i=i: self.leg_start(s, run, i))
        s.after(step.ring_time + step.retry, lambda: self.queue_try(s, step))

    def queue_over(self, s: Session, step: Queue) -> None:
        if s.ended or s.step is not step or s.peer is not None:
            return
        for leg in list(s.legs.values()):
            hangup(leg)
        self.step_done(s, Outcome.NO_ANSWER)

    # -- pickup --------------------------------------------------------------------------------

    def pickup(self, s: Session, ext: str) -> None:
        """**EXT: take a call ringing at extension EXT."""
        for other in list(self.sessions.values()):
            if other is s or other.ended or other.peer is not None or other.ring is None:
                continue
            if any(l.target == ext for l in other.legs.values()):
                return self._take(other, s)
        self.refuse(s, dialplan.Refused(404, f"Nothing is ringing at extension {ext}"))

    def group_pickup(self, s: Session) -> None:
        """*8: take a call ringing any member of a group the caller belongs to."""
        mates: set[str] = set()
        config = getattr(self.router, "config", None)
        for g in (config.groups.values() if config else ()):
            targets = {m.target for m in g.members}
            if s.extension in targets:
                mates |= targets
        mates.discard(s.extension)
        for other in sorted(self.sessions.values(), key=lambda o: o.t0):
            if other is s or other.ended or other.peer is not None or other.ring is None:
                continue
            if any(l.target in mates for l in other.legs.values()):
                return self._take(other, s)
        self.refuse(s, dialplan.Refused(404, "No call is ringing in your groups"))

    def _take(self, ringing: Session, picker: Session) -> None:
        leg = picker.a
        # The picker's own call becomes the ringing call's answering leg.
        picker.ended = True
        picker.outcome = "pickup"
        self.sessions.pop(picker.id, None)
        leg.session = ringing
        leg.role = "b"
        ringing.note("pickup", by=picker.extension)
        self.emit("CallPickedUp", ringing.id, by=picker.extension)
        picker.a_answered = True
        self.answer_a(picker)
        leg.state = "answered"
        self.winner(ringing, leg, picker.extension)


def resolve(host: str) -> str:
    try:
        socket.inet_aton(host)
        return host
    except OSError:
        pass
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def default_router(store: Store) -> Any:
    """The Router for the store's routing document.

    The document was validated when it was saved; if it no longer parses (an
    extension it names was removed by hand), calls are refused rather than
    routed half-way, and the reason is logged.
    """
    from appliance.errors import ConfigError
    from appliance.routing.config import parse
    from appliance.routing.model import RoutingConfig
    from appliance.routing.router import Router

    known = {e["number"]: e.get("name") or "" for e in store.extensions()}
    doc = store.routing_document()
    cfg = RoutingConfig(routes=())
    if doc:
        try:
            cfg = parse(doc, known, timezone=store.timezone)
        except ConfigError as e:
            log.error("the saved routing is not valid any more, inbound calls are refused: %s", e)
    return Router(cfg)
