"""The engine's call objects: pjsua2 accounts and legs that only report, and the Session.

Every call the engine takes part in is a `Session`: the caller's leg (the A
leg), the legs the engine places for it (B legs), the routing step being
carried out and the record of everything that happened.  pjsua2 callbacks on
`Account` and `Leg` only hand their arguments to the B2BUA.
"""

from __future__ import annotations

import enum
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import pjsua2 as pj

from appliance.routing.facts import Facts
from appliance.routing.steps import (
    Forward, Leg as LegSpec, Ring, Step,
)

from .core import guarded

if TYPE_CHECKING:
    from .b2bua import B2BUA

log = logging.getLogger("appliance.engine.b2bua")

COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'
CONFIRM_SECONDS = 15          # a mobile has this long to press 1 once it answered
INTERNAL_RING_SECONDS = 30
BUSY_CODES = {486, 600}
REG_BACKOFF = (30, 60, 120, 300, 600)  # seconds before retrying a failed trunk registration

_uids = itertools.count(1)


class CallOutcome(enum.StrEnum):
    """How a call ended, as its record keeps it (`calls.outcome`)."""

    IN_PROGRESS = "in progress"  # written when the call starts (store.IN_PROGRESS)
    ANSWERED = "answered"
    MISSED = "missed"            # a customer's or colleague's call nobody answered
    VOICEMAIL = "voicemail"      # the caller left a message
    FAILED = "failed"            # an outside call that did not connect, a routing error
    REFUSED = "refused"          # a desk phone dialled what it may not call
    PICKUP = "pickup"            # the call became part of the one it picked up
    FEATURE = "feature"          # a feature code was carried out (*28 night mode)
    INTERRUPTED = "interrupted"  # the engine stopped during it (closed at the next start)
    TRANSFERRED = "transferred"  # a desk phone's second call, handed to a transfer while it rang


class LegState(enum.StrEnum):
    """Where a leg is, as the engine sees it (pjsua's own INVITE states are finer)."""

    NEW = "new"              # created, not yet placed (or an incoming leg not yet decided on)
    CALLING = "calling"      # placed: the INVITE is out
    RINGING = "ringing"      # the far end rings (B legs), or the caller waits for us (A legs)
    ANSWERED = "answered"    # confirmed
    ENDED = "ended"          # pjsua reported DISCONNECTED, or it never started


def clean(text: str) -> str:
    """Text from pjsua as valid Unicode.

    pjsua2 hands over a message's bytes as a str in which bytes that are not
    UTF-8 are kept as lone surrogates.  Such a str cannot be encoded: pjsua2
    refuses it back (a display name copied into a leg's From), SQLite cannot
    store it.  Anything the engine reads from the network passes here first;
    a byte that is not UTF-8 becomes U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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
        self.config: Any = None  # the pj.AccountConfig it was created with (media address updates)

    @guarded
    def onIncomingCall(self, prm: Any) -> None:
        self.b2bua.incoming(self, prm)

    @guarded
    def onRegState(self, prm: Any) -> None:
        self.b2bua.trunks.reg_state(self, prm)


class Leg(pj.Call):
    """One call leg.  `role` is "a" (the caller's) or "b" (placed by the engine).

    Its life cycle is kept here and in the engine's `Registry`, nowhere else:
    a leg is in the registry from the moment it exists (an incoming call's leg
    is created with pjsua's call id; a placed leg gets one from `dial`), and it
    leaves through `finished()`, called once, when pjsua reports DISCONNECTED or
    when `dial` fails.  Nothing else may hold a leg after that (sessions drop
    theirs when they end); the registry frees it when no newer call has its id
    and pjsua no longer has it active.

    A hang-up deferred until the INVITE's first provisional response
    (`hangup`) reports DISCONNECTED to the engine at once, as pjsua does;
    pjsua's later reports on that leg stay here and only send the hang-up.
    """

    def __init__(self, b2bua: "B2BUA", acc: Account, call_id: int, role: str, target: str = "",
                 spec: int = -1, confirm: bool = False):
        super().__init__(acc, call_id)
        self.uid = next(_uids)
        self.key = ("leg", self.uid)
        self.b2bua = b2bua
        self.session: Session | None = None
        self.role, self.target, self.spec, self.confirm = role, target, spec, confirm
        self.state = LegState.NEW
        self.media_ok = False
        self.held = False        # the far end put this leg on hold
        self.code = 0
        self.reason = ""
        self.accepted = False    # a confirming external leg pressed the key
        self.trunk = ""
        self.sounds: list[Any] = []  # prompts played to this leg alone (the press-1 prompt)
        self.account = acc           # a call that replaces this one must use the same Account
        self.transfer: Any = None    # a probe leg's transfer (transfer.py)
        self.reply_to = ("", "")     # an incoming leg's INVITE head and source (b2bua.answer_head)
        # The INVITE this leg sends (`dial`), until it has a final response.  A
        # CANCEL may follow it only once it has had a provisional response
        # (RFC 3261 9.1); a hang-up with headers asked for before then waits
        # here (`hangup`) and is sent when one comes.
        self.inviting = False
        self.provisional = False
        self.deferred: DeferredHangup | None = None
        self.gone = False            # reported ended to the engine while pjsua still had the call
        b2bua.engine.registry.keep(self.key, self)

    def dial(self, uri: str, prm: Any) -> bool:
        """Place this leg (makeCall).  False if it could not be placed or ended at once.

        The leg has no session while pjsua works on it: a DISCONNECTED reported
        from inside makeCall only marks the leg ended, it does not reach routing
        in the middle of placing legs.
        """
        self.state = LegState.CALLING
        self.inviting = True
        try:
            self.makeCall(uri, prm)
        except pj.Error as e:
            self.code, self.reason = 500, e.info()
            self.finished()
            return False
        if self.state == LegState.ENDED:
            return False
        self.b2bua.engine.registry.holds(self.key)
        return True

    def finished(self) -> None:
        """pjsua is done with this leg (or never started it): hand it back to the registry, once."""
        if self.state != LegState.ENDED:
            self.state = LegState.ENDED
        self.b2bua.engine.registry.done(self.key)

    def defer_hangup(self, deferred: DeferredHangup) -> None:
        """Keep a hang-up until the INVITE has had a provisional response; the leg ends for the engine now.

        pjsua reports DISCONNECTED as soon as it is asked to hang up and
        finishes the SIP side afterwards, and the engine relies on that (the
        other legs of a ring-all have left the call when its winner is
        bridged).  The same report is made here, with the code pjsua gives.
        """
        self.deferred = deferred
        self.gone = True
        ci = self.getInfo()
        ci.state = pj.PJSIP_INV_STATE_DISCONNECTED
        ci.lastStatusCode = deferred.code or 487
        ci.lastReason = deferred.reason or "Request Terminated"
        self.b2bua.leg_state(self, ci)

    def send_deferred(self) -> None:
        deferred, self.deferred = self.deferred, None
        if deferred is not None:
            _send_hangup(self, deferred.code, deferred.reason, deferred.headers)

    def _state_after_gone(self, ci: Any) -> None:
        """What pjsua reports on a leg the engine already counts as ended: the deferred hang-up goes out."""
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.deferred = None  # the INVITE failed or timed out: there is nothing to cancel
        elif ci.state in (pj.PJSIP_INV_STATE_EARLY, pj.PJSIP_INV_STATE_CONFIRMED):
            # A CANCEL after the 1xx; or, when the phone answered first, a BYE
            # (once the ACK is out: not in CONNECTING).
            self.send_deferred()

    @guarded
    def onCallState(self, prm: Any) -> None:
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_EARLY:
            self.provisional = True  # reported before onCallTsxState hears of the same 1xx
        elif ci.state >= pj.PJSIP_INV_STATE_CONNECTING:
            self.inviting = False
        if self.gone:
            return self._state_after_gone(ci)
        self.b2bua.leg_state(self, ci)

    @guarded
    def onCallTsxState(self, prm: Any) -> None:
        if not self.inviting:
            return
        e = prm.e
        if e.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = e.body.tsxState.tsx
        if tsx.role != pj.PJSIP_ROLE_UAC or tsx.method != "INVITE":
            return
        # A 100 Trying changes no call state, so it is seen here only.  An
        # INVITE sent again (with credentials, after a 401 or 407) is a new
        # transaction and starts without a provisional response.
        self.provisional = 100 <= tsx.statusCode < 200
        if self.provisional:
            self.send_deferred()

    @guarded
    def onCallMediaState(self, prm: Any) -> None:
        if self.gone:
            return
        self.b2bua.leg_media(self, self.getInfo())

    @guarded
    def onDtmfDigit(self, prm: Any) -> None:
        self.b2bua.leg_digit(self, prm.digit)

    @guarded
    def onCallTransferRequest(self, prm: Any) -> None:
        self.b2bua.transfers.transfer_request(self, prm)

    @guarded
    def onCallReplaceRequest(self, prm: Any) -> None:
        self.b2bua.transfers.replace_request(self, prm)


def header(name: str, value: str) -> Any:
    h = pj.SipHeader()
    h.hName, h.hValue = name, value
    return h


def call_op(code: int = 0) -> Any:
    """Parameters for placing or answering a leg: one audio stream and nothing else.

    pjsua 2.17 offers and accepts a real-time text stream (RFC 4103, m=text) on
    every call by default.  Each text stream runs a clock thread of its own that
    hanging up joins, which held the engine thread up to 300 ms per leg (a
    round of hang-ups stalled the loop for seconds).  The PBX carries voice.
    """
    prm = pj.CallOpParam(True)
    prm.opt.audioCount = 1
    prm.opt.videoCount = 0
    prm.opt.textCount = 0
    if code:
        prm.statusCode = code
    return prm


@dataclass(frozen=True)
class DeferredHangup:
    """A hang-up with headers asked for before the leg's INVITE had a provisional response."""

    code: int
    reason: str
    headers: tuple[tuple[str, str], ...]


def hangup(leg: Leg, code: int = 0, reason: str = "", headers: tuple[tuple[str, str], ...] = ()) -> None:
    """End a leg: a CANCEL while its INVITE is unanswered, else a BYE or a final response.

    A CANCEL may only follow a provisional response (RFC 3261 9.1).  Before
    one, pjsip sets its CANCEL aside and sends it when the first 1xx comes,
    but without the headers given here: a phone rung by a ring-all that was
    slow to send 100 Trying got no `Reason: ... "Call completed elsewhere"`
    and showed a missed call.  So the leg defers such a hang-up until its
    INVITE has a provisional response (or fails, and nothing is sent).
    """
    if leg.state == LegState.ENDED:
        return
    if headers and leg.inviting and not leg.provisional:
        return leg.defer_hangup(DeferredHangup(code, reason, tuple(headers)))
    _send_hangup(leg, code, reason, headers)


def _send_hangup(leg: Leg, code: int, reason: str, headers: tuple[tuple[str, str], ...]) -> None:
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
    fn: Callable[[], None] | None
    cancelled: bool = False

    def cancel(self) -> None:
        # The closure goes at once: a cancelled timer waits in the B2BUA's heap
        # until its time, and must not keep a session or a leg alive meanwhile.
        self.cancelled = True
        self.fn = None

    def __lt__(self, other: "Timer") -> bool:
        return self.when < other.when


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
        self.outcome: CallOutcome | str = ""
        self.end_reason = ""
        self.path: list[dict] = []
        self.rung: list[str] = []
        self.facts: Facts | None = None
        self.may_use_trunk = direction != "unknown"
        self.bridged = False
        self.transfer: Any = None      # a blind or attended transfer under way (transfer.py)
        self.shown: tuple[str, str] | None = None  # (number, name) rung phones see, when not the caller's
        self.whisper = ""              # the prompt a mobile hears before it takes the call (ringing.py)

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
