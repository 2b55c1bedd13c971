"""The B2BUA: the engine's calls, carried out step by step as routing decides.

Every call the engine takes part in is a `Session`: the caller's leg (the
A leg), the legs the engine places for it (B legs: phones through the edge,
numbers over a trunk), the routing step being carried out and the record of
everything that happened.  pjsua2 callbacks only report to the session; the
session decides.  Everything here runs on the engine thread.

Who may call what:
- a phone's call (relayed by the edge with `X-PBX-Extension` and the edge's
  `X-PBX-Link` secret) may call extensions, hunt groups by their number,
  feature codes and, within the extension's dial rules, outside numbers over
  a trunk: routing's desk_call says which;
- a trunk's call (from the trunk's addresses) is routed by `Router`;
- a call from anywhere else is refused (403) unless the owner allows
  unknown callers, and even then it can never reach a trunk.

`B2BUA` is the call-session core: the life cycle, the routing loop, media
and bridging, and the end of a call with its record.  It owns collaborators
kept in their own modules and calls them by name: `trunks` (trunks.py),
`desk` (desk.py: desk phones' calls, pickup), `ringer` (ringing.py: Ring and
Forward legs), `transfers` (transfer.py), `prompts` (ivr.py: webhook,
announcements, menus, voicemail) and `queues` (queuecalls.py).  The pjsua2
objects and the Session are in session.py.
"""

from __future__ import annotations

import heapq
import hmac
import json
import logging
import random
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pjsua2 as pj

from appliance.netaddr import primary_address
from appliance.notify.config import NotifyConfig
from appliance.routing.desk import dialled_number
from appliance.routing.facts import Call as CallFacts
from appliance.routing.facts import Facts, Presence, State
from appliance.routing.numbers import normalise
from appliance.routing.steps import (
    AskWebhook, Connected, Decision, Forward, Hangup, Leg as LegSpec, Menu, Outcome, Play, Queue, Ring,
    Step, Voicemail,
)
from appliance.store import Store

from . import media
from .agents import Agents
from .callback import Callbacks
from .core import EngineThread
from .desk import Desk
from .ivr import Prompts
from .lookups import Lookups
from .queuecalls import QueueCalls
from .records import Recorder
from .recording import CallRecordings
from .ringing import Ringing
from .session import Account, CallOutcome, Leg, LegState, Session, Timer, audio_of, call_op, clean, hangup, now_iso
from .sipmsg import Invite, parse_invite, split_address
from .supervise import Supervisors
from .transfer import Transfers
from .trunks import Trunks

log = logging.getLogger("appliance.engine.b2bua")

MEDIA_ADDRESS_CHECK = 30.0  # seconds between looks at the machine's address
# The edge's mark on a phone's request that reached it over TLS (appliance.edge.proxy.TRANSPORT_HEADER).
_OVER_TLS = re.compile(r"^X-PBX-Transport:[ \t]*tls[ \t]*\r?$", re.I | re.M)
SESSION_EXPIRES = 300  # RFC 4028 interval asked for on every leg (Min-SE is 90)
# Call events the owner's webhooks get (a CRM logs calls from them), through the outbox.
OUTBOX_EVENTS = frozenset({"CallStarted", "CallAnswered", "CallEnded", "VoicemailStarted"})


# ---- the B2BUA ---------------------------------------------------------------------------


class B2BUA:
    """Carries out routing on the engine thread.  Create it, then `engine.call(b2bua.start)`.

    The call-session core: it owns the sessions, the routing loop, media and
    bridging, and the end of a call with its record.  The rest is done by
    collaborators it creates and calls by name: `trunks`, `desk`, `ringer`
    (Ring and Forward legs), `transfers`, `prompts` (webhook, announcements,
    menus, voicemail) and `queues`.  Each step type is carried out by the
    method `carry_out` names for it.
    """

    def __init__(self, engine: EngineThread, data_dir: str | Path, *,
                 router_factory: Callable[[Store], Any] | None = None,
                 edge: tuple[str, int] | None = None,
                 trusted_hosts: tuple[str, ...] = ("127.0.0.1",),
                 allow_unknown: bool = False,
                 trunk_port: int | None = None,
                 emit: Callable[[dict], None] | None = None,
                 link_key: str = ""):
        self.engine = engine
        self.data_dir = Path(data_dir)
        self.router_factory = router_factory or default_router
        self.edge = edge
        self.trusted_hosts = set(trusted_hosts)
        self.allow_unknown = allow_unknown
        self.link_key = link_key  # the edge's per-boot secret (edge/proxy.py LINK_HEADER); "" = no phones
        self.trunk_port = engine.config.trunk_port if trunk_port is None else trunk_port
        self._emit = emit or engine.on_event
        self.recorder = Recorder(self.data_dir)
        self.lookups = Lookups(self.data_dir)  # bindings, contacts, timezone in memory
        self.sessions: dict[str, Session] = {}
        self.accounts: dict[str, Account] = {}
        self.timers: list[Timer] = []  # a heap by time (heapq)
        self.inbox: list[Callable[[], None]] = []
        self.feature_codes: dict[str, Callable[[Session, str], Any]] = {}
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engine-webhook")
        self.store: Store | None = None
        self.router: Any = None
        self.extensions: dict[str, dict] = {}
        self.settings: dict[str, Any] = {}
        self.notify_urls: tuple[str, ...] = ()  # the owner's webhooks (appliance/notify), for OUTBOX_EVENTS
        self.outbox_written: Callable[[], None] = lambda: None  # any thread: an outbox row is there
        self.strategy_state: dict[str, Any] = {}
        self.music: media.Music | None = None
        self.stats = {"post_dial_ms": []}
        # Each call's routing gets its own generator, seeded from this one:
        # random.Random() would read the OS's entropy for every call (0.2 ms).
        self.seeds = random.Random()
        # The collaborators, each owning its own state.
        self.trunks = Trunks(self)
        self.desk = Desk(self)
        self.ringer = Ringing(self)
        self.transfers = Transfers(self)
        self.queues = QueueCalls(self)
        self.prompts = Prompts(self)
        self.callbacks = Callbacks(self)  # calls the appliance places: click-to-call, queue call-backs
        self.agents = Agents(self)  # agents' statuses set by people (*45, *46, the panel), after-call work
        self.supervisors = Supervisors(self)  # listening in, whispering, barging in (*31-*33, monitor.supervise)
        self.recording = CallRecordings(self)  # call recording: policy, announcement, recorders, the key (recording.py)
        # One table from step type to what carries it out, as routing has one from step type to what follows it.
        self.carry_out: dict[type, Callable[[Session, Any], None]] = {
            Ring: self._ring_step, Forward: self._forward_step, Connected: lambda s, step: None,
            Hangup: self._hangup_step, AskWebhook: self.prompts.ask_webhook, Play: self.prompts.play,
            Menu: self.prompts.menu, Voicemail: self.prompts.voicemail, Queue: self.queues.queue,
        }

    # -- life --------------------------------------------------------------------

    def start(self) -> None:
        """Engine thread: open the store, create accounts, hook into the loop."""
        self.recorder.start()
        self.store = Store(self.data_dir)
        self.reload()  # also fills the lookups
        self.close_interrupted()
        self.lookups.start()
        self.music = media.Music(self.data_dir)
        self._create_accounts()
        self.callbacks.start()
        self.agents.start()
        self.recording.start()
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
        self.notify_urls = NotifyConfig.from_setting(store.get_setting("notify")).urls
        self.recording.reload(store.get_setting("recording"))
        self.lookups.refresh(store)
        self.trunks.reload(store, accounts_made=bool(self.accounts))

    def _create_accounts(self) -> None:
        cfg = self.engine.config
        local = self.engine.transports["local"]
        acc = Account(self, "phones")
        ac = pj.AccountConfig()
        ac.idUri = f"sip:pbx@{cfg.sip_host}:{cfg.sip_port}"
        ac.sipConfig.transportId = local
        self.media_ports(ac, "phones")
        if self.edge:
            ac.sipConfig.proxies.append(f"sip:{self.edge[0]}:{self.edge[1]};lr")
        acc.create(ac, True)
        acc.config = ac
        self.accounts["phones"] = acc
        self._create_tls_phones_account()
        self.trunks.create_accounts()
        self.add_timer(Timer(time.monotonic() + MEDIA_ADDRESS_CHECK, self._check_media_address))

    def _create_tls_phones_account(self) -> None:
        """The account of legs to and from phones on TLS: SRTP with SDES keys (RFC 4568), nothing else.

        Its keys travel in the SDP, so only phones whose signalling to the edge
        is encrypted get it; the loopback hop to the edge is plain UDP, hence no
        secure-signalling requirement here.  Its domain matches no To header,
        so pjsua never picks it on its own: `account_for_request` does, for
        requests the edge marked with X-PBX-Transport: tls.
        """
        cfg = self.engine.config
        acc = Account(self, "phones-tls")
        ac = pj.AccountConfig()
        ac.idUri = "sip:pbx@srtp.invalid"
        ac.sipConfig.transportId = self.engine.transports["local"]
        self.media_ports(ac, "phones-tls")
        if self.edge:
            ac.sipConfig.proxies.append(f"sip:{self.edge[0]}:{self.edge[1]};lr")
        ac.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
        ac.mediaConfig.srtpSecureSignaling = 0
        keyings = pj.IntVector()
        keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)
        ac.mediaConfig.srtpOpt.keyings = keyings
        acc.create(ac, False)
        acc.config = ac
        self.accounts["phones-tls"] = acc
        self._tls_account_id = acc.getId()
        self.engine.account_chooser = self.account_for_request
        log.debug("SRTP account for TLS phones on %s:%d", cfg.sip_host, cfg.sip_port)

    def account_for_request(self, whole: str) -> int | None:
        """pjsua2's onSelectAccount: a phone's request that reached the edge over TLS takes the SRTP account."""
        return self._tls_account_id if _OVER_TLS.search(whole) else None

    def phone_account(self, binding: dict) -> Account:
        """The account for a leg to a phone's binding: SRTP for phones registered over TLS."""
        return self.accounts["phones-tls" if binding.get("transport") == "tls" else "phones"]

    def close_interrupted(self) -> None:
        """Engine thread, before any call: end the records of calls the last run left up.

        A call record is written when the call starts, so calls that were up
        when the process died (SIGKILL, a power cut, a crash) are still "in
        progress".  They are closed as interrupted with what is known (who,
        when, whether someone answered); a customer's call that nobody had
        answered becomes a missed call, to be called back like any other."""
        rows = self.store.interrupted_calls()
        if not rows:
            return
        at = now_iso()
        contacts = self.lookups.snapshot.contacts
        missed = 0
        for row in rows:
            is_missed = not row.get("answered_by") and row.get("direction") in ("inbound", "unknown")
            manager = (contacts.get(row["caller"]) or {}).get("manager") if is_missed else None
            self.store.close_interrupted(row, at, "interrupted: the engine stopped during the call",
                                         manager, is_missed)
            missed += is_missed
            if not row.get("answered_by"):
                answer_stranded(row.get("invite") or "", row.get("source") or "")
        log.warning("%d call(s) were interrupted by the last stop; %d became missed calls", len(rows), missed)
        self.emit("CallsInterrupted", None, calls=[r["id"] for r in rows], missed=missed)

    def media_address(self, side: str) -> str:
        """The address written in SDP for a side's legs: where its RTP is to be sent.

        The setting `media_address` (phones) or `trunk_public` (trunks) when
        the owner gave one, else the address of the interface the default
        route leaves from.  Left to pjsua, that address is looked up again for
        every leg (network interfaces enumerated, the host name resolved):
        about a sixth of the engine's time for an incoming INVITE."""
        cfg = self.engine.config
        if side == "trunk":
            given = self.settings.get("trunk_public") or cfg.trunk_public
            if not given and cfg.trunk_host not in ("", "0.0.0.0", "127.0.0.1"):
                given = cfg.trunk_host
        else:
            given = self.settings.get("media_address", "")
        return given or primary_address()

    def _check_media_address(self) -> None:
        """Every 30 s: the machine's address may have changed (DHCP, another network)."""
        self.add_timer(Timer(time.monotonic() + MEDIA_ADDRESS_CHECK, self._check_media_address))
        for acc in self.accounts.values():
            ac = getattr(acc, "config", None)
            if ac is None:
                continue
            now = self.media_address("phones" if acc.name.startswith("phones") else "trunk")
            if ac.mediaConfig.transportConfig.publicAddress != now:
                log.info("account %s: media address %s -> %s", acc.name,
                         ac.mediaConfig.transportConfig.publicAddress, now)
                ac.mediaConfig.transportConfig.publicAddress = now
                try:
                    acc.modify(ac)
                except pj.Error as e:
                    log.warning("account %s: %s", acc.name, e.info())

    def media_ports(self, ac: Any, side: str = "trunk") -> None:
        # RTP from `rtp_port` up (an even port per leg, RTCP next to it).  Each
        # pjsua account counts its ports on its own: two accounts on one range
        # collide on every call (a failed bind and an error line per leg), so
        # the phones' legs take the lower half and the trunks' the upper half.
        # The top quarter of the phones' half is the TLS phones' (SRTP) account's.
        base = int(self.settings.get("rtp_port", 10000))
        half = int(self.settings.get("rtp_ports", 4000)) // 4 * 2
        quarter = half // 8 * 2
        start, size = {"phones": (base, half - quarter), "phones-tls": (base + half - quarter, quarter)}.get(
            side, (base + half, half))
        ac.mediaConfig.transportConfig.port = start
        ac.mediaConfig.transportConfig.portRange = size
        ac.mediaConfig.transportConfig.publicAddress = self.media_address("phones" if side.startswith("phones") else side)
        # When the far end answers with several codecs, pjsua would re-INVITE
        # (or UPDATE) on its own to narrow the answer to one.  Nobody asked for
        # that offer: simple phones leave the dialog half-open after it and do
        # not take their next call.  Several codecs in an answer are legal
        # (RFC 3264 6.1); the first one is used.
        ac.mediaConfig.lockCodecEnabled = False
        # Session timers (RFC 4028): a leg whose other side is gone (the
        # engine restarted, a phone lost power) ends within minutes, when its
        # refresh is not answered or not sent, instead of staying up forever.
        ac.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL
        ac.callConfig.timerSessExpiresSec = int(self.settings.get("session_expires", SESSION_EXPIRES))
        ac.callConfig.timerMinSESec = 90

    def _shutdown(self) -> None:
        # Calls were hung up before this hook; drop every path to a leg
        # (sessions, timers' and jobs' closures) so none outlives libDestroy.
        for s in list(self.sessions.values()):
            s.ended = True
            s.cancel_timers()
            s.legs.clear()
            s.peer = None
            s.a = None  # type: ignore[assignment]
        self.sessions.clear()
        self.timers.clear()
        self.inbox.clear()
        self.queues.shutdown()
        self.callbacks.shutdown()
        self.supervisors.shutdown()
        self.agents.shutdown()
        self.recording.shutdown()
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
        self.lookups.stop()
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
        timers = self.timers  # a heap: only the due ones are looked at
        while timers and timers[0].when <= now:
            t = heapq.heappop(timers)
            if not t.cancelled:
                fn = t.fn
                t.cancel()
                fn()

    def add_timer(self, t: Timer) -> None:
        heapq.heappush(self.timers, t)

    def later(self, fn: Callable[[], None]) -> None:
        """Any thread: run fn on the engine thread at its next turn."""
        self.inbox.append(fn)  # list.append is atomic under the GIL

    # -- events ------------------------------------------------------------------

    def emit(self, kind: str, call_id: str | None = None, /, **data: Any) -> None:
        event = {"kind": kind, "at": now_iso(), "call_id": call_id, **data}
        urls = self.notify_urls if kind in OUTBOX_EVENTS else ()
        if urls:
            kick = self.outbox_written

            def write(store: Store) -> None:
                store.append_event_out(kind, data, call_id, event["at"], urls)
                kick()  # the outbox's worker delivers it now, not at its next look
            self.recorder.submit(write)
        else:
            self.recorder.submit(lambda s: s.append_event(kind, data, call_id, event["at"]))
        try:
            self._emit(event)
        except Exception:  # noqa: BLE001 - a subscriber must not break a call
            log.exception("event subscriber failed")

    # -- incoming calls ------------------------------------------------------------

    def incoming(self, acc: Account, prm: Any) -> None:
        """pjsua2's onIncomingCall: take the leg, decide about it on the next turn.

        Nothing that can end the call may run inside this callback.  For an
        INVITE without SDP (a delayed offer, RFC 3261 13.2.1) pjsua calls it
        after the INVITE session has left its NULL state, so a hang-up here is
        carried out at once: the DISCONNECTED state resets the call slot and
        frees the INVITE's cloned rdata, and when the callback returns pjsua2's
        Endpoint::on_incoming_call frees `call->incoming_data` again, now NULL
        (`pjsip_rx_data_free_cloned: Assertion 'rdata' failed`, SIGABRT).  With
        an SDP offer the callback runs while the session is still NULL and the
        hang-up is only queued, which is why only bodyless INVITEs aborted.
        """
        whole = clean(prm.rdata.wholeMsg)
        inv = parse_invite(whole, prm.rdata.srcAddress)
        a = Leg(self, acc, prm.callId, "a")  # kept by the registry until DISCONNECTED
        a.state = LegState.RINGING
        a.reply_to = (answer_head(whole), prm.rdata.srcAddress)
        self.later(lambda: self._admit(a, inv))

    def _admit(self, a: Leg, inv: Invite) -> None:
        """An incoming leg, one turn after pjsua offered it: whose call is it?"""
        if a.state == LegState.ENDED:
            return  # cancelled before we looked at it
        if self.transfers.probe_arrived(a, inv.header("call-id"), inv.source_host):
            return
        ext = inv.header("x-pbx-extension")
        if ext:
            if not self.from_edge(inv):
                log.warning("refused an INVITE naming extension %r from %s:%d: not relayed by the edge",
                            ext, inv.source_host, inv.source_port)
                self.emit("CallRefused", source=f"{inv.source_host}:{inv.source_port}", dialled=inv.ruri_user,
                          reason="extension header not from the edge")
                hangup(a, 403, "Forbidden")
                return
            if ext in self.extensions:
                self.desk.from_phone(a, inv, ext)
                return
        # Providers address the trunk transport; anything sent to the phones'
        # port without the edge's header is a stranger, whatever its address.
        trunk = self.trunks.trunk_for_source(inv.source_host, inv) if inv.ruri_port == self.trunk_port else None
        if trunk is not None:
            self._from_trunk(a, inv, trunk)
            return
        if not self.allow_unknown:
            self.emit("CallRefused", source=f"{inv.source_host}:{inv.source_port}", dialled=inv.ruri_user,
                      reason="unknown source")
            hangup(a, 403, "Forbidden")
            return
        s = Session(self, a, "unknown", normalise(inv.from_user), inv.from_name, inv.ruri_user)
        self.begin(s)
        self.route_first(s)

    def from_edge(self, inv: Invite) -> bool:
        """The INVITE carries the edge's link secret (and came over loopback): its extension header holds."""
        link = inv.header("x-pbx-link")
        return bool(self.link_key and link and inv.source_host in self.trusted_hosts
                    and hmac.compare_digest(link.encode(), self.link_key.encode()))

    def begin(self, s: Session) -> None:
        s.a.session = s
        self.sessions[s.id] = s
        # The record exists from the first moment: after a crash, start-up
        # closes it as interrupted instead of the call vanishing.
        head, source = s.a.reply_to
        row = {"id": s.id, "started_at": s.started_at, "direction": s.direction, "caller": s.caller,
               "dialled": s.dialled, "trunk": s.trunk, "extension": s.extension,
               "invite": head, "source": source}
        self.recorder.submit(lambda st: st.call_started(row))
        self.emit("CallStarted", s.id, direction=s.direction, caller=s.caller, caller_name=s.caller_name,
                  dialled=s.dialled, trunk=s.trunk, extension=s.extension)

    def _from_trunk(self, a: Leg, inv: Invite, trunk: str) -> None:
        t = self.trunks.config[trunk]
        if t["kind"] == "branch":
            return self.trunks.from_branch(a, inv, trunk)  # another shop's appliance (trunks.py)
        dialled = dialled_number(t.get("numbers", []), inv.to_user, inv.ruri_user,
                                 {u for u in (t.get("username"), t.get("auth_username")) if u})
        s = Session(self, a, "inbound", normalise(inv.from_user), inv.from_name, dialled, trunk=trunk)
        self.begin(s)
        self.route_first(s)

    # -- routing -------------------------------------------------------------------

    def facts(self, s: Session) -> Facts:
        tz = self.lookups.snapshot.timezone
        if s.facts is None:
            s.facts = Facts(CallFacts(s.caller, s.dialled, s.trunk), datetime.now(tz), random.Random(self.seeds.getrandbits(64)))
        else:
            s.facts = Facts(s.facts.call, datetime.now(tz), s.facts.rng)
        return s.facts

    def state(self) -> State:
        """What routing knows of the office now, from memory (see lookups.py): no SQLite here."""
        snap = self.lookups.snapshot
        bound = snap.bindings
        busy: dict[str, int] = {}
        for o in self.sessions.values():
            if o.ended:
                continue
            for ext in (o.extension, o.answered_by):
                if ext in self.extensions:
                    busy[ext] = busy.get(ext, 0) + 1
        today = datetime.now(snap.timezone).date().isoformat()  # the office's day, not UTC's
        presence = {}
        for ext, row in self.extensions.items():
            mem = self.strategy_state["presence"].get(ext, {})
            last = mem.get("last_call_end")
            presence[ext] = Presence(
                registered=ext in bound, dnd=bool(row.get("dnd")), calls=busy.get(ext, 0),
                last_call_end=datetime.fromisoformat(last) if last else None,
                calls_today=mem.get("calls_today", 0) if mem.get("day") == today else 0,
                paused=self.agents.paused(ext))
        return State(presence=presence, night=snap.night, overrides=snap.overrides,
                     contacts=snap.routing_contacts, learned=self.strategy_state["learned"],
                     positions=self.strategy_state["positions"], links=self.trunks.links())

    def route_first(self, s: Session) -> None:
        s.routed = True
        try:
            decision = self.router.first_step(self.facts(s), self.state())
        except Exception as e:  # noqa: BLE001 - a routing bug must not leave the caller hanging
            log.exception("routing failed for call %s", s.id)
            s.outcome, s.end_reason = CallOutcome.FAILED, f"routing error: {e}"
            return self.end(s, code=500, reason="Routing error")
        self.decided(s, decision)

    def step_done(self, s: Session, outcome: Outcome, **kw: Any) -> None:
        """The current step ended with `outcome`: ask routing what comes next."""
        if s.ended:
            return
        if s.transfer is not None:
            return self.transfers.transfer_target_failed(s, outcome)
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
            s.outcome = s.outcome or (CallOutcome.MISSED if s.direction == "internal" else CallOutcome.FAILED)
            return self.end(s, code=code, reason=text)
        try:
            decision = self.router.next_step(step, outcome, self.facts(s), self.state(), **kw)
        except Exception as e:  # noqa: BLE001
            log.exception("routing failed for call %s", s.id)
            s.outcome, s.end_reason = CallOutcome.FAILED, f"routing error: {e}"
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
        carry_out = self.carry_out.get(type(step))
        if carry_out is None:  # pragma: no cover - a new kind of step
            raise TypeError(f"the engine cannot carry out {kind}")
        carry_out(s, step)

    def _ring_step(self, s: Session, step: Ring) -> None:
        s.ringback = self.ringback_for(step.dest)
        if step.announce:
            # The group's greeting first ("you are calling Sales, please hold"),
            # then the ringing; the step's timings start once it has been heard.
            self.prompts.greet(s)
            self.prompts.say(s, [step.announce], then=lambda: self._ring_after_announce(s, step))
        else:
            self.ringer.ring(s, step, step.legs)

    def _forward_step(self, s: Session, step: Forward) -> None:
        s.ringback = self.ringback_for(step.dest)
        self.ringer.ring(s, step, (LegSpec(step.number, 0, step.for_seconds, external=True, confirm=step.confirm),))

    def _hangup_step(self, s: Session, step: Hangup) -> None:
        s.end_reason = step.reason
        self.end(s, code=480 if not s.a_answered else 0, reason="Temporarily Unavailable")

    def _ring_after_announce(self, s: Session, step: Ring) -> None:
        if not s.ended and s.step is step:
            self.ringer.ring(s, step, step.legs)

    def ringback_for(self, dest: str) -> str:
        rb = self.settings.get("ringback", {})
        return rb.get(dest, rb.get("default", "180")) if isinstance(rb, dict) else str(rb)

    # -- what legs report -----------------------------------------------------------------

    def leg_state(self, leg: Leg, ci: Any) -> None:
        st = ci.state
        s = leg.session
        if leg.role == "probe":
            return self.transfers.probe_state(leg, ci)
        if leg.role == "agent":
            return self.callbacks.agent_state(leg, ci)  # an originated call's desk phone, not answered yet
        if leg.role == "supervisor":
            return self.supervisors.leg_state(leg, ci)
        if st == pj.PJSIP_INV_STATE_DISCONNECTED:
            if leg.state == LegState.ENDED and leg.session is None:
                return  # reported twice (a re-entrant hang-up): the first one counted
            # State first: hanging up the other legs below can run their
            # DISCONNECTED callbacks before hangup() returns.
            leg.code, leg.reason = ci.lastStatusCode, clean(ci.lastReason)
            leg.finished()
            leg.session = None
            if s is not None:
                self.leg_ended(s, leg)
            return
        if s is None or s.ended:
            return
        if leg.role == "b" and st == pj.PJSIP_INV_STATE_EARLY and leg.state == LegState.CALLING:
            leg.state = LegState.RINGING
            self.emit("LegRinging", s.id, target=leg.target, leg=leg.uid, code=ci.lastStatusCode)
            self.ringer.ringing(s)
        elif st == pj.PJSIP_INV_STATE_CONFIRMED and leg.state != LegState.ANSWERED:
            leg.state = LegState.ANSWERED
            if leg.role == "b":
                self.ringer.b_answered(s, leg)

    def leg_digit(self, leg: Leg, digit: str) -> None:
        if leg.role == "supervisor":
            return self.supervisors.digit(leg, digit)
        s = leg.session
        if s is None or s.ended:
            return
        if s.bridged and self.recording.digit(s, leg, digit):
            return  # the feature code that starts and stops an on-demand recording
        if leg.role == "b" and leg.confirm and not leg.accepted and leg.state == LegState.ANSWERED:
            if digit == self.settings.get("confirm_key", "1"):
                leg.accepted = True
                for snd in leg.sounds:
                    media.stop(snd)
                leg.sounds.clear()
                s.note("confirmed", target=leg.target)
                self.ringer.winner(s, leg, leg.target)
            return
        if leg is s.a:
            self.prompts.caller_digit(s, digit)

    def answer_a(self, s: Session) -> None:
        s.a_answered = True
        try:
            s.a.answer(call_op(200))
        except pj.Error as e:
            log.warning("call %s: could not answer the caller: %s", s.id, e.info())

    def leg_media(self, leg: Leg, ci: Any) -> None:
        if leg.role == "supervisor":
            return self.supervisors.leg_media(leg, ci)
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
        if self.recording.hold_bridge(s):
            return  # both hear that the call is recorded; joined when the announcement is over
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
        self.supervisors.bridged(s)
        self.recording.bridged(s)
        # A phone may put the call on hold before the engine joined the two
        # (its re-INVITE can overtake the other side's answer): honour it now.
        for leg in (s.a, s.peer):
            if leg.held:
                self.hold_changed(s, leg)

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
            self.ringer.check_exhausted(s, run)

    # -- the end -------------------------------------------------------------------------

    def end(self, s: Session, code: int = 0, reason: str = "", warning: str = "") -> None:
        if s.ended:
            return
        s.ended = True
        if s.transfer is not None:
            self.transfers.transfer_abandoned(s)
        self.still(s)
        self.queues.leave_queue(s)
        for leg in list(s.legs.values()):
            hangup(leg)
        if s.peer is not None and s.peer.uid not in s.legs:
            hangup(s.peer)  # a leg that joined by pickup
        if s.a.session is s and s.a.state != LegState.ENDED:  # (a semi-attended transfer's leg has left)
            if s.a_answered:
                hangup(s.a)
            else:
                hdrs = (("Warning", f'399 pbx "{warning}"'),) if warning else ()
                hangup(s.a, code or 480, reason, hdrs)
        self.sessions.pop(s.id, None)
        self.callbacks.ending(s)
        self.supervisors.ending(s)
        self.agents.call_ended(s)
        self.recording.ended(s)
        self.record(s)
        # Let go of the legs now (the registry holds them until pjsua is done);
        # the session's timers were cancelled above and dropped their closures.
        s.legs.clear()
        s.peer = None
        s.a = None  # type: ignore[assignment]

    def still(self, s: Session) -> None:
        """Stop what the call is doing: its timers, its ringing, the sounds attached to it."""
        s.cancel_timers()
        s.ring = None
        for snd in s.sounds:
            media.stop(snd)
        s.sounds.clear()

    def record(self, s: Session) -> None:
        ended_at = now_iso()
        talk = (time.monotonic() - s.t_answer) if s.t_answer else 0.0
        wait = ((s.t_answer or time.monotonic()) - s.t0)
        if not s.outcome:
            if s.answered_by:
                s.outcome = CallOutcome.ANSWERED
            elif isinstance(s.step, Voicemail):
                s.outcome = CallOutcome.VOICEMAIL
            elif s.direction in ("inbound", "internal", "unknown") and s.rung:
                s.outcome = CallOutcome.MISSED
            elif s.direction == "outbound":
                s.outcome = CallOutcome.FAILED
            else:
                s.outcome = CallOutcome.MISSED if s.direction == "inbound" else CallOutcome.FAILED
        row = {
            "id": s.id, "started_at": s.started_at, "answered_at": s.answered_at, "ended_at": ended_at,
            "direction": s.direction, "caller": s.caller, "dialled": s.dialled, "trunk": s.trunk,
            "extension": s.extension, "answered_by": s.answered_by, "outcome": s.outcome,
            "wait_s": round(wait, 3), "talk_s": round(talk, 3),
            "path": [*s.path, {"kind": "end", "reason": s.end_reason, "rung": s.rung}],
            "invite": None, "source": None,  # needed only while the call is up
        }
        missed = (s.outcome in (CallOutcome.MISSED, CallOutcome.VOICEMAIL)
                  and s.direction in ("inbound", "internal", "unknown"))
        manager = None
        if missed and s.facts is not None:
            manager = (self.lookups.snapshot.contacts.get(s.caller) or {}).get("manager")

        # The closure runs on the recorder's thread: it takes plain values, not the session.
        caller, dialled = s.caller, s.dialled

        lost = {"caller": caller, "dialled": dialled, "at": ended_at, "manager": manager} if missed else None
        self.recorder.submit(lambda store: store.finish_call(row, lost))
        if s.answered_by in self.extensions:
            self._count_call(s.answered_by)
        self.emit("CallEnded", s.id, outcome=s.outcome, answered_by=s.answered_by, reason=s.end_reason,
                  wait_s=row["wait_s"], talk_s=row["talk_s"])
        if missed:
            self.emit("CallMissed", s.id, caller=s.caller, dialled=s.dialled)

    def _count_call(self, ext: str) -> None:
        today = datetime.now(self.lookups.snapshot.timezone).date().isoformat()
        p = self.strategy_state["presence"].setdefault(ext, {})
        p["calls_today"] = (p.get("calls_today", 0) if p.get("day") == today else 0) + 1
        p["day"] = today
        p["last_call_end"] = datetime.now(timezone.utc).isoformat()
        presence = json.loads(json.dumps(self.strategy_state["presence"]))
        self.recorder.submit(lambda st: st.set_routing_state("presence", presence))

    # -- pickup --------------------------------------------------------------------------------


# What an INVITE's final response is built from (RFC 3261 8.2.6.2), compact forms included.
_ANSWER_HEADERS = ("via:", "v:", "from:", "f:", "to:", "t:", "call-id:", "i:", "cseq:")


def answer_head(whole: str) -> str:
    """The start line and the headers a response to this INVITE needs, kept with its record."""
    head = whole.split("\r\n\r\n", 1)[0].split("\r\n")
    kept = [head[0], *(line for line in head[1:] if line.lower().startswith(_ANSWER_HEADERS))]
    return "\r\n".join(kept)[:4096]


def answer_stranded(head: str, source: str) -> None:
    """A caller still ringing when the engine died: send the final response it waits for.

    pjsua's transaction died with the process, so the caller's INVITE would
    ring on with no answer ever.  A 503 built from the INVITE's saved headers,
    sent where the INVITE came from (RFC 3581), ends it; through the edge it
    reaches a desk phone, from a provider the customer hears the call end.
    """
    from appliance.sip import SipError, parse, response_to

    host, port = split_address(source)
    if not head or not port:
        return
    try:
        req = parse((head + "\r\nContent-Length: 0\r\n\r\n").encode())
        resp = response_to(req, 503, "Service Unavailable", to_tag=f"rst{random.getrandbits(32):08x}",
                           headers=(("Reason", 'SIP;cause=503;text="The phone system restarted"'),))
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(resp.to_bytes(), (host, port))
    except (SipError, OSError, ValueError) as e:
        log.info("could not tell a stranded caller at %s: %s", source, e)


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

    from appliance.routing.branch import parse_ranges

    known = {e["number"]: e.get("name") or "" for e in store.extensions()}
    doc = store.routing_document()
    cfg = RoutingConfig(routes=())
    if doc:
        try:
            branches = {t["name"]: parse_ranges(t.get("numbers") or [])
                        for t in store.trunks() if t.get("kind") == "branch" and t.get("enabled", 1)}
            cfg = parse(doc, known, timezone=store.timezone, branches=branches)
        except ConfigError as e:
            log.error("the saved routing is not valid any more, inbound calls are refused: %s", e)
    return Router(cfg)
