"""A supervisor on an agent's call: listening in, whispering to the agent, barging in.

A supervisor is an extension with the permission `supervise` (configuration
key on extensions).  Their phone becomes one more leg in the conference
bridge, wired to the call's two parties by mode:

| mode      | the supervisor hears | the agent hears the supervisor | the customer does |
| --------- | -------------------- | ------------------------------ | ----------------- |
| `listen`  | both parties         | no                             | no                |
| `whisper` | both parties         | yes                            | no                |
| `barge`   | both parties         | yes                            | yes               |

The two parties keep hearing each other as before; the mode changes any time
during the call (`KEYS` on the supervisor's phone, or `monitor.supervise`
again), and the supervisor's leg ends with the call.

Two ways in:
- a feature code dialled on the supervisor's desk phone, followed by the
  agent's extension (`CODES`: `*31101` listens to 101's call): that call
  itself becomes the supervisor's leg (its own record ends as a feature call);
- the control command `monitor.supervise {call_id, ext, mode}` (the live
  monitor's buttons): the engine rings every phone of `ext` as it rings an
  extension, the first to answer is wired in, the others are cancelled.

With the setting `engine.supervise_beep` both parties hear a short beep when
a supervisor joins.  Events: SupervisorJoined (the leg is wired: media
flows), SupervisorModeChanged, SupervisorLeft (`reason`).

A collaborator of the B2BUA (appliance/engine/b2bua.py) as `supervisors`;
everything here runs on the engine thread.  Supervisors' legs have the role
"supervisor" and no session: they are kept here, by leg, until pjsua reports
them DISCONNECTED.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pjsua2 as pj

from appliance.routing.steps import Refuse

from . import media
from .session import COMPLETED_ELSEWHERE, CallOutcome, Leg, LegState, Session, Timer, audio_of, call_op, clean, hangup

log = logging.getLogger("appliance.engine.b2bua")

MODES = ("listen", "whisper", "barge")
CODES = {"*31": "listen", "*32": "whisper", "*33": "barge"}   # followed by the agent's extension
KEYS = {"1": "listen", "2": "whisper", "3": "barge"}          # pressed by the supervisor during the call
RING_SECONDS = 30
BEEP = [(1400, 150, 100), (1400, 150, 0)]


class SuperviseRefused(ValueError):
    """The supervisor cannot join: the message says why."""


@dataclass
class Supervision:
    call_id: str                     # the supervised call (a Session's id)
    agent: str                       # the agent's extension in it
    ext: str                         # the supervisor's extension
    mode: str
    leg: Leg | None = None           # the supervisor's answered leg
    ringing: list[Leg] = field(default_factory=list)
    joined: bool = False             # wired into the bridge (SupervisorJoined sent)
    timer: Timer | None = None       # the end of ringing the supervisor's phones
    beep: Any = None
    reason: str = ""                 # why the engine ended the supervisor's leg


class Supervisors:
    """The B2BUA's supervisors' legs, wired into calls by mode."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua
        self.by_leg: dict[int, Supervision] = {}   # every supervisor leg (ringing or answered) -> its supervision
        for code in CODES:
            b2bua.desk.extension_codes[code] = self.dialled

    def shutdown(self) -> None:
        for sup in self.by_leg.values():
            sup.leg, sup.ringing, sup.beep = None, [], None
        self.by_leg.clear()

    def of_call(self, call_id: str) -> list[Supervision]:
        return list({id(s): s for s in self.by_leg.values() if s.call_id == call_id}.values())

    # -- finding the call and checking the supervisor ----------------------------------

    def _may_supervise(self, ext: str) -> None:
        row = self.b2bua.extensions.get(ext)
        if row is None:
            raise SuperviseRefused(f"there is no extension {ext}")
        if not row.get("supervise"):
            raise SuperviseRefused(f"extension {ext} may not listen to calls")

    def agent_of(self, s: Session) -> str:
        """The office's extension in a call: who answered it, else the desk phone that placed it."""
        exts = self.b2bua.extensions
        if s.answered_by in exts:
            return s.answered_by
        return s.extension if s.extension in exts else ""

    def _legs(self, s: Session, agent: str) -> tuple[Leg, Leg] | None:
        """(the agent's leg, the other party's) in a bridged call, or None when the agent is not in it."""
        if s.ended or not s.bridged or s.peer is None:
            return None
        if s.answered_by == agent:
            return s.peer, s.a
        if s.extension == agent:
            return s.a, s.peer
        return None

    def _call_of(self, agent: str, but: Session) -> Session | None:
        for s in sorted(self.b2bua.sessions.values(), key=lambda o: o.t0):
            if s is not but and self._legs(s, agent) is not None:
                return s
        return None

    # -- the two ways in -------------------------------------------------------------

    def dialled(self, s: Session, code: str, agent: str) -> None:
        """*31EXT, *32EXT, *33EXT from a supervisor's desk phone: this call becomes the supervisor's leg."""
        b = self.b2bua
        mode = CODES[code]
        try:
            self._may_supervise(s.extension)
        except SuperviseRefused as e:
            return b.desk.refuse(s, Refuse(403, _sentence(str(e))))
        if agent == s.extension:
            return b.desk.refuse(s, Refuse(486, "You cannot listen to your own calls"))
        target = self._call_of(agent, s)
        if target is None:
            return b.desk.refuse(s, Refuse(404, f"Extension {agent} is not in a call"))
        leg = s.a
        # The desk phone's call ends as a feature call (its record, CallEnded for
        # the monitor); its leg lives on as the supervisor's, kept here.
        b.answer_a(s)
        s.outcome = CallOutcome.FEATURE
        s.end_reason = f"{mode} on call {target.id} of extension {agent}"
        s.note("supervise", call=target.id, agent=agent, mode=mode)
        s.ended = True
        b.sessions.pop(s.id, None)
        b.still(s)
        b.record(s)
        s.legs.clear()
        s.a = None  # type: ignore[assignment]
        leg.session = None
        leg.role = "supervisor"
        leg.target = s.extension
        sup = Supervision(target.id, agent, s.extension, mode, leg=leg)
        self.by_leg[leg.uid] = sup
        target.note("supervisor", ext=sup.ext, mode=mode)
        if leg.state == LegState.ANSWERED or leg.media_ok:
            self.wire(sup)

    def start(self, call_id: str, ext: str, mode: str) -> dict:
        """Control command `monitor.supervise`: ring `ext` into call `call_id` in `mode` (or change its mode)."""
        b = self.b2bua
        if mode not in MODES:
            raise SuperviseRefused(f"mode is one of {', '.join(MODES)}, not {mode!r}")
        s = b.sessions.get(call_id)
        if s is None or s.ended:
            raise SuperviseRefused(f"call {call_id} has ended")
        self._may_supervise(ext)
        for sup in self.of_call(call_id):
            if sup.ext == ext:
                self.set_mode(sup, mode)
                return {"call_id": call_id, "ext": ext, "mode": mode}
        agent = self.agent_of(s)
        if not agent or self._legs(s, agent) is None:
            raise SuperviseRefused(f"call {call_id} is not a conversation with an extension of the office")
        if ext in (s.answered_by, s.extension):
            raise SuperviseRefused(f"extension {ext} is in this call")
        bindings = b.lookups.bindings_for(b.store, ext)
        if not bindings:
            raise SuperviseRefused(f"extension {ext} is not registered")
        cfg = b.engine.config
        local = f'"{mode} {agent}" <sip:{agent}@{cfg.sip_host}:{cfg.sip_port}>'
        sup = Supervision(call_id, agent, ext, mode)
        for binding in bindings:
            leg = Leg(b, b.phone_account(binding), pj.PJSUA_INVALID_ID, "supervisor", ext)
            prm = call_op()
            prm.txOption.localUri = local
            if leg.dial(binding["contact"], prm):
                self.by_leg[leg.uid] = sup
                sup.ringing.append(leg)
            else:
                log.warning("supervise: could not call %s: %s %s", binding["contact"], leg.code, leg.reason)
        if not sup.ringing:
            raise SuperviseRefused(f"extension {ext}'s phone could not be called")
        sup.timer = Timer(time.monotonic() + RING_SECONDS, lambda: self._ring_over(sup))
        b.add_timer(sup.timer)
        s.note("supervisor", ext=ext, mode=mode)
        return {"call_id": call_id, "ext": ext, "mode": mode}

    def _ring_over(self, sup: Supervision) -> None:
        sup.timer = None
        for leg in list(sup.ringing):
            hangup(leg)

    # -- what the supervisor's legs report --------------------------------------------

    def leg_state(self, leg: Leg, ci: Any) -> None:
        """The B2BUA's leg_state for a supervisor's leg."""
        sup = self.by_leg.get(leg.uid)
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if leg.state == LegState.ENDED and sup is None:
                return
            leg.code, leg.reason = ci.lastStatusCode, clean(ci.lastReason)
            leg.finished()
            self.by_leg.pop(leg.uid, None)
            if sup is None:
                return
            if leg is sup.leg:
                return self._left(sup, sup.reason or "the supervisor hung up")
            if leg in sup.ringing:
                sup.ringing.remove(leg)
            if sup.leg is None and not sup.ringing:
                self._left(sup, sup.reason or "the supervisor did not answer")
            return
        if sup is None:
            return
        if ci.state == pj.PJSIP_INV_STATE_EARLY and leg.state == LegState.CALLING:
            leg.state = LegState.RINGING
        elif ci.state == pj.PJSIP_INV_STATE_CONFIRMED and leg.state != LegState.ANSWERED:
            leg.state = LegState.ANSWERED
            if sup.leg is None:
                self._answered(sup, leg)
            elif sup.leg is not leg:
                hangup(leg, headers=(("Reason", COMPLETED_ELSEWHERE),))
                return
            self.wire(sup)

    def _answered(self, sup: Supervision, leg: Leg) -> None:
        sup.leg = leg
        if sup.timer is not None:
            sup.timer.cancel()
            sup.timer = None
        others, sup.ringing = [o for o in sup.ringing if o is not leg], []
        for other in others:
            self.by_leg.pop(other.uid, None)
            hangup(other, headers=(("Reason", COMPLETED_ELSEWHERE),))

    def leg_media(self, leg: Leg, ci: Any) -> None:
        """The B2BUA's leg_media for a supervisor's leg: wire it once its media is up."""
        if ci is not None:
            leg.media_ok = any(m.type == pj.PJMEDIA_TYPE_AUDIO and m.status in (
                pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD) for m in ci.media)
        sup = self.by_leg.get(leg.uid)
        if sup is not None and sup.leg is leg:
            self.wire(sup)

    def digit(self, leg: Leg, digit: str) -> None:
        """A key on the supervisor's phone: 1 listen, 2 whisper, 3 barge."""
        sup = self.by_leg.get(leg.uid)
        if sup is not None and sup.leg is leg and digit in KEYS:
            self.set_mode(sup, KEYS[digit])

    # -- the bridge ----------------------------------------------------------------------

    def set_mode(self, sup: Supervision, mode: str) -> None:
        if mode == sup.mode:
            return
        sup.mode = mode
        s = self.b2bua.sessions.get(sup.call_id)
        if s is not None:
            s.note("supervisor", ext=sup.ext, mode=mode)
        if sup.joined:
            self.wire(sup)
            self.b2bua.emit("SupervisorModeChanged", sup.call_id, ext=sup.ext, agent=sup.agent, mode=mode)

    def wire(self, sup: Supervision) -> None:
        """Connect the supervisor's leg to the call's parties as its mode says (again after any change)."""
        leg = sup.leg
        if leg is None or leg.state != LegState.ANSWERED or not leg.media_ok:
            return
        s = self.b2bua.sessions.get(sup.call_id)
        if s is None or s.ended:
            sup.reason = "the call ended"
            return hangup(leg)
        parties = self._legs(s, sup.agent)
        if parties is None:
            if s.bridged or s.transfer is None:
                sup.reason = f"extension {sup.agent} left the call"
                hangup(leg)  # a transfer took the call elsewhere
            return
        sv, ag, cu = audio_of(leg), audio_of(parties[0]), audio_of(parties[1])
        if sv is None or ag is None or cu is None:
            return
        ag.startTransmit(sv)
        cu.startTransmit(sv)
        for party, talks in ((ag, sup.mode in ("whisper", "barge")), (cu, sup.mode == "barge")):
            if talks:
                sv.startTransmit(party)
            else:
                try:
                    sv.stopTransmit(party)
                except pj.Error:
                    pass  # was not connected
        if not sup.joined:
            sup.joined = True
            if self.b2bua.settings.get("supervise_beep"):
                sup.beep = media.tones(BEEP, loop=False)
                sup.beep.startTransmit(ag)
                sup.beep.startTransmit(cu)
            s.note("supervisor_joined", ext=sup.ext, mode=sup.mode)
            self.b2bua.emit("SupervisorJoined", s.id, ext=sup.ext, agent=sup.agent, mode=sup.mode)

    def bridged(self, s: Session) -> None:
        """The B2BUA joined a call's parties (again, after a transfer): supervisors follow."""
        for sup in self.of_call(s.id):
            self.wire(sup)

    def ending(self, s: Session) -> None:
        """The B2BUA's end of a call: its supervisors' legs end too."""
        for sup in self.of_call(s.id):
            sup.reason = "the call ended"
            for leg in [*sup.ringing, *([sup.leg] if sup.leg is not None else [])]:
                hangup(leg)

    def _left(self, sup: Supervision, reason: str) -> None:
        if sup.beep is not None:
            media.stop(sup.beep)
            sup.beep = None
        if sup.timer is not None:
            sup.timer.cancel()
            sup.timer = None
        sup.leg = None
        s = self.b2bua.sessions.get(sup.call_id)
        if s is not None:
            s.note("supervisor_left", ext=sup.ext, reason=reason)
        self.b2bua.emit("SupervisorLeft", sup.call_id, ext=sup.ext, agent=sup.agent, reason=reason)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
