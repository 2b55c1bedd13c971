"""Blind and attended transfer (REFER, RFC 3515; Replaces, RFC 3891) carried out by the B2BUA.

A desk phone in a bridged call sends REFER on its leg.  The engine decides
what the transfer may do and carries it out with its own legs:

- blind (Refer-To <sip:EXT-or-number@pbx>): the other party stays on its leg
  and hears ringback while the engine rings the target for it (a Ring or
  Forward leg, dial rules checked against the transferor's extension); the
  first answer is bridged with the other party and the transferor's leg ends.
  Busy or no answer: the other party goes back to the transferor if it is
  still there, else to the call's routing (from its first step), else the
  call ends with the reason in its record.
- attended (Refer-To <...?Replaces=CALLID;to-tag=..;from-tag=..>): the
  Replaces dialog is one of the transferor's own legs in another session; the
  two remote parties are joined in the first session and the transferor's two
  legs end.
- semi-attended: the same REFER while the transferor's second call still
  rings (the person pressed transfer before the colleague answered).  The
  second call gives way (its ringing is cancelled, its record says where the
  call went) and the first call's party rings that number as in a blind
  transfer, hearing ringback.  The probe replaces the transferor's early leg,
  which pjsua allows only with PJSIP_ACCEPT_REPLACE_IN_EARLY_STATE (the build's
  config_site.h; RFC 3891 section 3 would have it refused with 481).

pjsua answers an accepted REFER itself (202 and a first NOTIFY) and then
always places a call of its own to the Refer-To URI; only a refusal (>= 300)
stops it.  That call is a *probe*: the engine notes its Call-ID when pjsua
reports it placed, it comes back to the engine (the Refer-To of a phone of
this PBX names the PBX) and the engine answers it with the transfer's progress (180 while the target
rings, 200 when it answers, the failure code otherwise).  pjsua turns the
probe's states into the NOTIFY sipfrags the transferor receives.  A Refer-To
naming any other host is refused, so a probe never leaves the PBX.

A collaborator of the B2BUA (appliance/engine/b2bua.py), created by it and called by name;
everything here runs on the engine thread.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from appliance.routing.desk import transfer_target
from appliance.routing.steps import Forward, Leg as LegSpec, Outcome, Refuse as RefuseStep, Ring

from . import media
from .session import INTERNAL_RING_SECONDS, CallOutcome, Leg, LegState, Session, Timer, audio_of, clean, hangup
from .sipmsg import parse_refer_to, split_address

log = logging.getLogger("appliance.engine.b2bua")

PROBE_WAIT = 5.0   # seconds the transferor's legs wait for the probe before they end anyway
FAIL_CODES = {Outcome.BUSY: 486, Outcome.NO_ANSWER: 480, Outcome.UNAVAILABLE: 480}


class Refuse(Exception):
    """A REFER the engine will not carry out: the status for the REFER and a sentence."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status, self.text = status, text


@dataclass
class Transfer:
    kind: str               # "blind", "attended" or "semi-attended"
    session: Session
    transferor: Leg         # the leg the REFER came on
    other: Leg              # the party being transferred
    by: str                 # the transferor's extension
    target: str             # extension or number (blind); who the other party joins (attended)
    was_a: bool             # the transferor was the session's A leg
    token: str = ""         # the probe's Call-ID, once pjsua has placed it
    probe_out: Leg | None = None
    probe_in: Leg | None = None
    status: int = 100       # progress to show the transferor
    replaced: Leg | None = None  # attended, semi-attended: the transferor's leg in the second call
    consult: Session | None = None  # semi-attended: the second call, still ringing
    started: bool = False
    finished: bool = False   # the transfer is decided; the transferor's legs only wait for the probe
    step: Ring | Forward | None = None  # blind, semi-attended: where routing said the target rings

    @property
    def rings(self) -> bool:
        """The engine rings the target for the transferred party (blind, semi-attended)."""
        return self.kind != "attended"


def parse_replaces(value: str) -> tuple[str, dict[str, str]]:
    """Call-ID and parameters (to-tag, from-tag) of a Replaces value."""
    call_id, *params = value.split(";")
    return call_id.strip(), {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in params)}


class Transfers:
    """The B2BUA's transfers: REFER (blind and attended) and the INVITE with Replaces that completes one."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua
        self.probes: dict[str, Transfer] = {}  # probe Call-ID -> Transfer

    # -- REFER ------------------------------------------------------------------------------

    def transfer_request(self, leg: Leg, prm: Any) -> None:
        """Leg.onCallTransferRequest: accept (202 and a probe) or refuse with a status."""
        prm.statusCode = 500  # if anything below fails, the REFER is refused and pjsua places no call
        s = leg.session
        try:
            t = self._check_refer(leg, s, clean(prm.dstUri))
        except Refuse as r:
            prm.statusCode = r.status
            if s is not None and not s.ended:
                s.note("transfer_refused", status=r.status, reason=r.text)
                self.b2bua.emit("TransferFailed", s.id, by=self._extension_of(s, leg), reason=r.text, status=r.status)
            log.info("REFER on leg %s refused: %s", leg.uid, r.text)
            return
        probe = Leg(self.b2bua, leg.account, pj.PJSUA_INVALID_ID, "probe")
        probe.transfer = t
        t.probe_out = probe
        prm.newCall = probe
        # (CallSetting.customCallId would be the neat way to know the probe, but
        # pjsua2 hands pjsua a pointer into a string freed when this returns.)
        prm.opt.audioCount, prm.opt.videoCount, prm.opt.textCount = 1, 0, 0
        prm.statusCode = 202
        s.transfer = t
        self.b2bua.emit("TransferStarted", s.id, how=t.kind, by=t.by, to=t.target)
        # Carry it out on the next turn, outside pjsua's REFER handling.
        self.b2bua.later(lambda: self._start_transfer(t))

    def _extension_of(self, s: Session, leg: Leg) -> str:
        if leg is s.a:
            return s.extension if s.direction in ("internal", "outbound") else ""
        return leg.target if leg.target in self.b2bua.extensions else ""

    def _check_refer(self, leg: Leg, s: Session | None, refer_to: str) -> Transfer:
        if s is None or s.ended or leg.role == "probe":
            raise Refuse(481, "No call to transfer")
        if s.transfer is not None:
            raise Refuse(491, "A transfer of this call is already under way")
        if not s.bridged or s.peer is None or leg not in (s.a, s.peer):
            raise Refuse(403, "Only a connected call can be transferred")
        by = self._extension_of(s, leg)
        if not by:
            raise Refuse(403, "Only desk phones can transfer calls")
        user, host, port, headers = parse_refer_to(refer_to)
        if not self._is_pbx(host, port):
            raise Refuse(403, f"Transfers go to numbers on this PBX, not to {host}")
        other = s.peer if leg is s.a else s.a
        if "replaces" in headers:
            replaced = self._replaced_leg(headers["replaces"], by, s)
            o = replaced.session
            if o.bridged:
                return Transfer("attended", s, leg, other, by, "", leg is s.a, replaced=replaced)
            if o.routed or not isinstance(o.step, (Ring, Forward)):
                raise Refuse(403, "A second call to a group or a menu can be transferred once it is answered")
            step = self._transfer_target(s, by, o.dialled)
            target = step.legs[0].target if isinstance(step, Ring) else step.number
            return Transfer("semi-attended", s, leg, other, by, target, leg is s.a, replaced=replaced,
                            step=step, consult=o)
        step = self._transfer_target(s, by, user)
        target = step.legs[0].target if isinstance(step, Ring) else step.number
        return Transfer("blind", s, leg, other, by, target, leg is s.a, step=step)

    def _is_pbx(self, host: str, port: int) -> bool:
        cfg = self.b2bua.engine.config
        ours = {(cfg.sip_host, cfg.sip_port)}
        if self.b2bua.edge:
            ours.add((self.b2bua.edge[0], self.b2bua.edge[1]))
        return (host, port) in ours

    def _transfer_target(self, s: Session, by: str, user: str) -> Ring | Forward:
        """Routing says where the transfer rings (an extension, or a number within `by`'s dial rules)."""
        row = self.b2bua.extensions[by]
        step = transfer_target(
            by, user, extensions=self.b2bua.extensions,
            rules=json.loads(row["dial_rules"]) if row.get("dial_rules") else None,
            limit=row.get("max_outbound"), may_use_trunk=s.may_use_trunk,
            seconds=int(self.b2bua.settings.get("transfer_ring_seconds", INTERNAL_RING_SECONDS)))
        if isinstance(step, RefuseStep):
            raise Refuse(step.status, step.reason)
        return step

    def _replaced_leg(self, replaces: str, by: str, s: Session) -> Leg:
        """The leg a Replaces names: the transferor's in a bridged call, or the one it placed and still rings."""
        call_id, _params = parse_replaces(replaces)
        for o in self.b2bua.sessions.values():
            if o is s or o.ended:
                continue
            if o.bridged and o.peer is not None:
                legs = (o.a, o.peer)
            elif o.direction in ("internal", "outbound") and o.extension == by and not o.answered_by:
                legs = (o.a,)
            else:
                continue
            for leg in legs:
                try:
                    if leg.getInfo().callIdString != call_id:
                        continue
                except pj.Error:
                    continue
                if self._extension_of(o, leg) != by:
                    raise Refuse(403, "The call to replace is not the transferor's")
                if o.transfer is not None:
                    raise Refuse(491, "That call is being transferred already")
                return leg
        raise Refuse(481, "No such call to replace")

    # -- carrying it out ----------------------------------------------------------------------

    def _start_transfer(self, t: Transfer) -> None:
        if t.started:
            return
        t.started = True
        s = t.session
        if s.ended or s.transfer is not t:
            return self._probe_progress(t, 487)
        self._unbridge(s)
        if t.was_a:  # the other party becomes the call's A leg
            s.a = t.other
            t.other.role = "a"
            s.legs.pop(t.other.uid, None)
        s.peer = None
        if t.kind == "semi-attended" and t.consult.bridged:
            t.kind = "attended"  # the colleague answered since the REFER came: the two are joined
        if t.kind == "attended":
            return self._join(t)
        if t.kind == "semi-attended":
            self._give_way(t)
        # Out of the call's legs, so the answer does not cancel it as "completed
        # elsewhere" before the transferor has heard how the transfer went.
        s.legs.pop(t.transferor.uid, None)
        s.note("transfer", how=t.kind, by=t.by, to=t.target)
        if t.was_a and t.other.target:  # the target is told who it will talk with, not who placed the call
            s.shown = self._identity(t.other)
        snd = media.ringback(self.b2bua.music) if s.ringback != "music" else self.b2bua.music.player()
        if snd is not None:
            s.sounds.append(snd)
            self.b2bua.connect_sound(snd, s.a)
        step = t.step
        legs = step.legs if isinstance(step, Ring) else (LegSpec(step.number, 0, step.for_seconds, external=True),)
        self.b2bua.ringer.ring(s, step, legs)

    def _give_way(self, t: Transfer) -> None:
        """Semi-attended: the second call stops ringing and ends; the first call's party rings its target."""
        o, r = t.consult, t.replaced
        # The transferor's leg stays up for the probe to replace it (pjsua then ends it);
        # without a probe, _hang_up_transferor ends it.
        r.session = None
        if o.ended:
            return
        o.outcome = CallOutcome.TRANSFERRED
        o.note("transferred", how="semi-attended", by=t.by, to_call=t.session.id)
        o.end_reason = f"{t.by} transferred call {t.session.id} to {t.target} before this call was answered"
        self.b2bua.end(o)

    def _identity(self, leg: Leg) -> tuple[str, str]:
        """The number and name of a party the call rang: an extension's name, else a contact's."""
        ext = self.b2bua.extensions.get(leg.target)
        if ext is not None:
            return leg.target, ext.get("name") or ""
        return leg.target, (self.b2bua.lookups.snapshot.contacts.get(leg.target) or {}).get("name") or ""

    def _unbridge(self, s: Session) -> None:
        a, b = audio_of(s.a), audio_of(s.peer) if s.peer is not None else None
        if a is not None and b is not None:
            a.stopTransmit(b)
            b.stopTransmit(a)
        for snd in s.sounds:  # music on hold of the call being transferred
            media.stop(snd)
        s.sounds.clear()
        s.bridged = False

    def target_ringing(self, s: Session) -> None:
        """The target of a blind transfer rings: the transferor hears of it (NOTIFY 180)."""
        self._probe_progress(s.transfer, 180)

    def target_answered(self, s: Session, leg: Leg, by: str) -> None:
        """The target of a blind transfer answered: it takes the call, the transferor leaves."""
        t = s.transfer
        answered = s.answered_at, s.t_answer
        s.transfer = None
        self.b2bua.ringer.winner(s, leg, by)  # now an ordinary answer
        s.answered_at, s.t_answer = answered  # talk time runs from the first answer
        s.note("transferred", how=t.kind, by=t.by, to=by)
        self.b2bua.emit("CallTransferred", s.id, how=t.kind, by=t.by, to=by)
        self._drop_transferor(t, t.transferor)
        self._probe_progress(t, 200)

    def transfer_target_failed(self, s: Session, outcome: Outcome) -> None:
        """step_done while a blind transfer rings its target: it did not answer."""
        t = s.transfer
        s.transfer, s.shown = None, None
        self.b2bua.still(s)
        code = FAIL_CODES.get(outcome, 503)
        s.note("transfer_failed", to=t.target, outcome=outcome.value)
        self.b2bua.emit("TransferFailed", s.id, by=t.by, to=t.target, outcome=outcome.value, status=code)
        self._probe_progress(t, code)
        back = t.transferor
        if back.state != LegState.ENDED and back.session is s:
            if t.was_a:
                s.a, back.role = back, "a"
                t.other.role = "b"
                s.legs[t.other.uid] = t.other
            else:
                s.legs[back.uid] = back
            s.peer = t.other if t.was_a else back
            s.note("returned", to=t.by)
            self.b2bua.bridge(s)
            return
        if s.routed:
            s.note("fallback", why=f"transfer to {t.target} failed and {t.by} had hung up")
            s.peer = None
            return self.b2bua.route_first(s)
        s.end_reason = f"transfer to {t.target} failed ({outcome.value}) and {t.by} had hung up"
        self.b2bua.end(s)

    def _join(self, t: Transfer) -> None:
        """Attended: the other party of the transferor's second call joins this one."""
        s, r = t.session, t.replaced
        o = r.session
        if o is None or o.ended or r.state == LegState.ENDED:
            s.note("transfer_failed", how="attended", by=t.by, why="the second call ended")
            self.b2bua.emit("TransferFailed", s.id, how="attended", by=t.by, reason="the second call ended")
            self._probe_progress(t, 487)
            if t.was_a:
                s.a, t.transferor.role, t.other.role = t.transferor, "a", "b"
                s.legs[t.other.uid] = t.other
            s.peer = t.other if t.was_a else t.transferor
            s.transfer = None
            return self.b2bua.bridge(s)
        target = o.peer if r is o.a else o.a
        who = target.target if target is o.peer else o.caller
        self._unbridge(o)
        # The second call ends here: its record says where its party went.
        o.note("transferred", how="attended", by=t.by, to_call=s.id)
        o.end_reason = f"joined with call {s.id} by {t.by}"
        if target is o.a:
            o.a = r  # the record keeps a leg; the remote party moves on
        o.peer = None
        o.legs.pop(target.uid, None)
        o.legs.pop(r.uid, None)
        r.session = None
        self._end_quietly(o)
        target.session, target.role, target.spec = s, "b", -1
        s.legs[target.uid] = target
        s.peer = target
        s.transfer = None
        s.answered_by = who
        s.note("transferred", how="attended", by=t.by, to=who, from_call=o.id)
        self.b2bua.emit("CallTransferred", s.id, how="attended", by=t.by, to=who, from_call=o.id)
        self.b2bua.bridge(s)
        t.replaced = r
        self._drop_transferor(t, t.transferor)

    def _end_quietly(self, o: Session) -> None:
        """End a session whose legs have all moved elsewhere: its record, no hang-ups."""
        o.ended = True
        self.b2bua.still(o)
        self.b2bua.sessions.pop(o.id, None)
        self.b2bua.record(o)
        o.legs.clear()
        o.peer = None

    def _drop_transferor(self, t: Transfer, leg: Leg) -> None:
        """The transferor's legs leave the call; they hang up once the probe has told them."""
        s = leg.session
        if s is not None:
            s.legs.pop(leg.uid, None)
        leg.session = None
        t.finished = True
        if t.probe_out is None or t.probe_out.state == LegState.ENDED:
            return self._hang_up_transferor(t)
        self.b2bua.add_timer(Timer(time.monotonic() + PROBE_WAIT, lambda: self._hang_up_transferor(t)))

    def _hang_up_transferor(self, t: Transfer) -> None:
        for leg in (t.transferor, t.replaced):
            if leg is not None and leg.session is None:
                hangup(leg)
        if t.probe_out is not None:
            hangup(t.probe_out)
        self.probes.pop(t.token, None)

    # -- the probe: NOTIFY progress ------------------------------------------------------------

    def probe_arrived(self, leg: Leg, call_id: str, source_host: str) -> bool:
        """incoming(): a call with a probe's Call-ID is the engine's own, looped back."""
        t = self.probes.get(call_id)
        if t is None:
            return False
        leg.role = "probe"
        if source_host not in self.b2bua.trusted_hosts or t.probe_in is not None:
            hangup(leg, 403, "Forbidden")
            return True
        leg.transfer = t
        t.probe_in = leg
        if t.status > 100:
            self._answer_probe(leg, t.status)
        return True

    def _probe_progress(self, t: Transfer, code: int) -> None:
        if t.status >= 200:
            return
        t.status = code
        y = t.probe_in
        if y is not None and y.state != LegState.ENDED:
            self._answer_probe(y, code)

    def _answer_probe(self, y: Leg, code: int) -> None:
        if code >= 300:
            hangup(y, code)
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        prm.opt.audioCount, prm.opt.videoCount, prm.opt.textCount = 1, 0, 0
        try:
            y.answer(prm)
        except pj.Error as e:
            log.debug("probe answer %d: %s", code, e.info())

    def probe_state(self, leg: Leg, ci: Any) -> None:
        """leg_state for probe legs: they belong to no session."""
        t: Transfer | None = getattr(leg, "transfer", None)
        self.b2bua.engine.registry.holds(leg.key)  # pjsua gave the probe its call id after the callback
        if t is not None and leg is t.probe_out and not t.token:
            # Placed: its INVITE comes back to the engine on a later poll, never before this.
            t.token = ci.callIdString
            self.probes[t.token] = t
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            leg.finished()
            if t is not None and leg is t.probe_out:
                self.b2bua.later(lambda: self._probe_over(t))
            return
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and t is not None and leg is t.probe_out:
            # pjsua has sent the final NOTIFY: the transferor may go now.
            leg.state = LegState.ANSWERED
            if t.finished:
                self.b2bua.later(lambda: self._hang_up_transferor(t))

    def _probe_over(self, t: Transfer) -> None:
        self.probes.pop(t.token, None)
        if t.finished:
            self._hang_up_transferor(t)

    def transfer_abandoned(self, s: Session) -> None:
        """end(): the call ended while its transfer was under way."""
        t, s.transfer = s.transfer, None
        self._probe_progress(t, 487)
        hangup(t.transferor)

    # -- INVITE with Replaces ---------------------------------------------------------------------

    def replace_request(self, leg: Leg, prm: Any) -> None:
        """Leg.onCallReplaceRequest: only the engine's own (semi-)attended transfer probe may replace a leg."""
        msg = clean(prm.rdata.wholeMsg)
        call_id = ""
        for line in msg.splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() in ("call-id", "i"):
                call_id = value.strip()
                break
        t = self.probes.get(call_id)
        host = split_address(prm.rdata.srcAddress)[0] if prm.rdata.srcAddress else ""
        if (t is None or t.kind not in ("attended", "semi-attended") or leg is not t.replaced
                or host not in self.b2bua.trusted_hosts):
            prm.statusCode = 403
            prm.reason = "Replaces is not supported here"
            return
        # The join may not have run yet (the probe can loop back within one poll):
        # the replaced leg must have left its call before pjsua hangs it up.
        self._start_transfer(t)
        joined = t.session.transfer is None if t.kind == "attended" else not t.session.ended
        if not joined or leg.session is not None:
            prm.statusCode = 487
            return
        y = Leg(self.b2bua, leg.account, pj.PJSUA_INVALID_ID, "probe")
        y.transfer = t
        t.probe_in = y
        prm.newCall = y
        # pjsua answers the probe and ends the replaced leg (410). Attended: with 200, the join is
        # done. Semi-attended: with the early leg's last 1xx; the target's answer brings the 200.
        prm.statusCode = 200
        if t.kind == "attended":
            t.status = 200
