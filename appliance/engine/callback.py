"""Calls the appliance places itself: click-to-call, and call-backs that keep a queue caller's place.

A collaborator of the B2BUA (appliance/engine/b2bua.py), created by it and
called by name as `callbacks`; everything here runs on the engine thread.

An origination is a `Session` like any other call, recorded as an outbound
call from the extension (so the missed-call rule "an extension called the
number back and talked long enough" applies to it):

1. the extension's desk phone rings (every binding, through the edge; the
   display shows the customer's number).  Its legs have the role "agent"
   until one answers, and this part follows them (`agent_state`);
2. the answering phone becomes the session's A leg.  It may first hear a
   whisper ("call back: Hardware store, waited 3 minutes"), spoken with
   espeak-ng in a worker thread while the phone rang (a tone stands in
   without it);
3. the customer's number is then carried out as a `Forward` step, exactly
   as a desk phone's outside call: over `trunks.trunk_out`, with the trunk's
   caller id; the agent hears the engine's ringing tone meanwhile, and the
   first answer is bridged (ringing.py).

The number is checked against the extension's dial rules and outside-call
limit before anything rings; a refusal raises `Refused` with a sentence.  A
failure later (the agent did not answer, the customer was busy or did not
answer, no trunk carried it) is the record's end reason and the event
OriginationFailed.

A queue caller who pressed the call-back key keeps a *virtual place* in the
queue (`Place`): the `queues.Waiting` entry stays where it was, under the key
`cb-<call id>`, moves forward as callers ahead leave, and callers who came
later wait behind it.  When it is at the front and an agent is free, the
queue's strategy picks the agent (`Router.queue_ring`) and the place is
called back as above, with the whisper.  It leaves the queue when the
customer answered, or after `callback_attempts` (3) attempts the customer
did not take, `callback_retry_seconds` (120) apart; an agent who did not
answer costs no attempt (the place waits the queue's `retry`, like a caller
whose round went unanswered).  Places are rows of `callbacks`
(appliance/store/callbacks.py), read back when the engine starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import subprocess
import time
import wave
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pjsua2 as pj

from appliance.routing import dialplan
from appliance.routing.desk import ring_outside
from appliance.routing.facts import Call as CallFacts
from appliance.routing.facts import Facts
from appliance.routing.steps import Queue, Ring
from appliance.store.callbacks import CallbackPlaces

from . import media
from .session import BUSY_CODES, COMPLETED_ELSEWHERE, Leg, LegState, Session, Timer, call_op, clean, hangup, now_iso

log = logging.getLogger("appliance.engine.b2bua")

AGENT_RING_SECONDS = 30       # a click-to-call rings the desk phone this long
CUSTOMER_RING_SECONDS = 45    # and the customer this long
WHISPER_WAIT = 3.0            # seconds an answered agent waits for the whisper to be spoken, then a tone
CALLBACK_ATTEMPTS = 3         # setting engine.callback_attempts
CALLBACK_RETRY_SECONDS = 120  # setting engine.callback_retry_seconds
PLACE_TICK = 2.0              # seconds between looks for a free agent while places wait
PLACE_PREFIX = "cb-"


class Refused(Exception):
    """An origination the engine will not place; the message says why, for the owner."""


@dataclass
class Place:
    """A queue caller's virtual place: they hung up, the queue calls them back in their turn."""

    call_id: str          # the caller's call, whose `callbacks` row this is
    queue: str
    caller: str
    caller_name: str
    dialled: str
    priority: int
    joined_at: datetime   # when the caller joined the queue (UTC)
    step: Queue
    attempts: int = 0
    calling: str = ""     # the session calling back now, "" while waiting

    @property
    def key(self) -> str:
        """Its id in the queue's line (queues.Waiting.call_id)."""
        return PLACE_PREFIX + self.call_id


@dataclass
class Origin:
    """What the engine is doing for one originated session."""

    ext: str
    number: str
    kind: str                       # "click" or "queue"
    whisper: str = ""               # the prompt's name, "" for none
    text: str = ""                  # what the whisper says
    spoken: Future | None = None    # espeak-ng's work on it
    place: Place | None = None
    deadline: float = 0.0


class Callbacks:
    """The B2BUA's own calls: an extension first, then the customer."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua
        self.calls: dict[str, Origin] = {}   # session id -> what it is for
        self.places: dict[str, Place] = {}   # Place.key -> place
        self._tick: Timer | None = None

    # -- life ------------------------------------------------------------------

    def start(self) -> None:
        """Engine thread, at the B2BUA's start: the places the last run left are back in their queues."""
        for row in CallbackPlaces(self.b2bua.store).open_places():
            step = self.queue_step(row["queue"], int(row["priority"] or 0))
            if step is None:
                log.warning("call-back for %s: queue %r is gone; it stays open for a person", row["caller"], row["queue"])
                continue
            joined = datetime.fromisoformat(row["joined_at"])
            place = Place(row["call_id"], row["queue"], row["caller"], row["caller_name"] or "", row["dialled"] or "",
                          int(row["priority"] or 0), joined, step, int(row["attempts"] or 0))
            self._hold(place, back=True)

    def shutdown(self) -> None:
        self.calls.clear()
        self.places.clear()
        self._tick = None

    # -- originating -------------------------------------------------------------

    def originate(self, ext: str, number: str, whisper: bool | str = False, *, place: Place | None = None,
                  ring_seconds: float = AGENT_RING_SECONDS) -> str:
        """Ring extension `ext`, then call `number` and bridge them; the session's id, or Refused.

        `whisper`: True for the standard words, a text to say those, False for none."""
        b = self.b2bua
        row = b.extensions.get(str(ext))
        if row is None:
            raise Refused(f"There is no extension {ext}")
        try:
            d = dialplan.classify(str(number))
            active = sum(1 for o in b.sessions.values()
                         if o.direction == "outbound" and o.extension == ext and not o.ended)
            rules = _rules(row)
            dialplan.check_outbound(d, ext, rules, active, row.get("max_outbound"))
        except dialplan.Refused as r:
            raise Refused(r.text) from None
        if b.trunks.trunk_out() is None:
            raise Refused("No trunk is available to call out")
        bindings = b.lookups.bindings_for(b.store, ext)
        if not bindings:
            raise Refused(f"Extension {ext} has no phone registered")
        who = self.who(d.number)
        cfg = b.engine.config
        local = f'"{who}" <sip:{d.number}@{cfg.sip_host}:{cfg.sip_port}>'
        legs = []
        for binding in bindings:
            leg = Leg(b, b.phone_account(binding), pj.PJSUA_INVALID_ID, "agent", ext)
            prm = call_op()
            prm.txOption.localUri = local
            if leg.dial(binding["contact"], prm):
                legs.append(leg)
            else:
                log.warning("origination: could not call %s: %s %s", binding["contact"], leg.code, leg.reason)
        if not legs:
            raise Refused(f"Extension {ext}'s phone could not be called")
        s = Session(b, legs[0], "outbound", ext, row.get("name") or "", d.number, extension=ext)
        for leg in legs:
            leg.session = s
            s.legs[leg.uid] = leg
        origin = Origin(ext, d.number, "queue" if place else "click", place=place)
        if whisper:
            origin.text = whisper if isinstance(whisper, str) else self.whisper_text(d.number, place)
            origin.whisper, origin.spoken = self._speak(origin.text)
        self.calls[s.id] = origin
        b.begin(s)
        s.note("originate", extension=ext, number=d.number, kind=origin.kind, whisper=origin.text)
        b.emit("CallOriginated", s.id, extension=ext, number=d.number, origin=origin.kind,
               place=place.call_id if place else None)
        for leg in legs:
            b.emit("LegStarted", s.id, target=ext, uri="", leg=leg.uid)
        s.rung.append(ext)
        s.after(ring_seconds, lambda: self._agent_timeout(s))
        return s.id

    def agent_state(self, leg: Leg, ci: Any) -> None:
        """The B2BUA's leg_state for an agent's phone that has not answered yet."""
        s = leg.session
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if leg.state == LegState.ENDED and leg.session is None:
                return
            leg.code, leg.reason = ci.lastStatusCode, clean(ci.lastReason)
            leg.finished()
            leg.session = None
            if s is None:
                return
            s.legs.pop(leg.uid, None)
            if s.ended or any(l.role == "agent" for l in s.legs.values()):
                return  # another phone of the extension still rings
            s.end_reason = s.end_reason or (
                "the agent's phone was busy" if leg.code in BUSY_CODES else "the agent did not answer")
            self.b2bua.end(s)
            return
        if s is None or s.ended:
            return
        if ci.state == pj.PJSIP_INV_STATE_EARLY and leg.state == LegState.CALLING:
            leg.state = LegState.RINGING
            self.b2bua.emit("LegRinging", s.id, target=leg.target, leg=leg.uid, code=ci.lastStatusCode)
        elif ci.state == pj.PJSIP_INV_STATE_CONFIRMED and leg.state != LegState.ANSWERED:
            leg.state = LegState.ANSWERED
            self._agent_answered(s, leg)

    def _agent_timeout(self, s: Session) -> None:
        if s.ended or s.a_answered:
            return
        s.end_reason = "the agent did not answer"
        self.b2bua.end(s)

    def _agent_answered(self, s: Session, leg: Leg) -> None:
        """The agent's phone is the call's A leg from now on; the others stop ringing."""
        s.cancel_timers()
        for other in list(s.legs.values()):
            if other is not leg and other.role == "agent":
                hangup(other, headers=(("Reason", COMPLETED_ELSEWHERE),))
        s.legs.pop(leg.uid, None)
        leg.role = "a"
        s.a = leg
        s.a_answered = True
        origin = self.calls[s.id]
        s.note("agent_answered", extension=origin.ext)
        self.b2bua.emit("AgentAnswered", s.id, extension=origin.ext)
        if origin.whisper:
            origin.deadline = time.monotonic() + WHISPER_WAIT
            self._whisper_when_spoken(s)
        else:
            self._dial_customer(s)

    def _whisper_when_spoken(self, s: Session) -> None:
        origin = self.calls.get(s.id)
        if s.ended or origin is None:
            return
        if origin.spoken is not None and not origin.spoken.done() and time.monotonic() < origin.deadline:
            s.after(0.05, lambda: self._whisper_when_spoken(s))
            return
        s.note("whisper", text=origin.text)
        self.b2bua.emit("CallbackWhispered", s.id, text=origin.text)
        self.b2bua.prompts.say(s, [origin.whisper], then=lambda: self._dial_customer(s))

    def _dial_customer(self, s: Session) -> None:
        """The customer's number, as a desk phone's outside call: a Forward over a trunk."""
        if s.ended:
            return
        origin = self.calls[s.id]
        step = ring_outside(origin.number, CUSTOMER_RING_SECONDS)
        s.step = step
        self.b2bua.execute(s, step)

    def ending(self, s: Session) -> None:
        """The B2BUA's end of a call: for an origination, say how it went and move its place on."""
        origin = self.calls.pop(s.id, None)
        if origin is None:
            return
        side, reason = self._result(s)
        if side:
            s.end_reason = reason
            s.note("origination_failed", side=side, reason=reason)
            self.b2bua.emit("OriginationFailed", s.id, extension=origin.ext, number=origin.number,
                            side=side, reason=reason)
        if origin.place is not None:
            self._attempt_over(origin.place, s, side, reason)

    def _result(self, s: Session) -> tuple[str, str]:
        """("", "") when the customer answered, else (who failed: agent, customer or trunk, why)."""
        if s.answered_by:
            return "", ""
        if not s.a_answered:
            return "agent", s.end_reason or "the agent did not answer"
        outcome = next((p.get("outcome") for p in reversed(s.path) if p.get("kind") == "outcome"), None)
        if outcome is None:
            return "agent", "the agent hung up before the customer answered"
        if outcome == "busy":
            return "customer", "the customer was busy"
        if outcome == "no_answer":
            return "customer", "the customer did not answer"
        if outcome == "unavailable":
            return "trunk", "no trunk carried the call to the customer"
        return "customer", "the call to the customer failed"

    # -- the whisper -------------------------------------------------------------

    def who(self, number: str) -> str:
        contact = self.b2bua.lookups.snapshot.contacts.get(number) or {}
        return str(contact.get("name") or number)

    def whisper_text(self, number: str, place: Place | None) -> str:
        """What the agent hears before the customer is called, in `calls.language`."""
        english = self.b2bua.prompts.language() == "en"
        contact = self.b2bua.lookups.snapshot.contacts.get(number) or {}
        who = str(contact.get("name") or "") or " ".join(dialplan.Dialled(number, "").national)
        if place is None:
            return f"Calling {who}." if english else f"Дзвінок: {who}."
        minutes = max(1, round((datetime.now(timezone.utc) - place.joined_at).total_seconds() / 60))
        if english:
            return f"Call back: {who}, waited {minutes} minute{'s' if minutes != 1 else ''}."
        return f"Зворотний дзвінок: {who}, чекали {minutes} {_minutes_uk(minutes)}."

    def _speak(self, text: str) -> tuple[str, Future | None]:
        """The whisper's prompt name, spoken into `DATA/prompts/said/` in a worker thread (once per text)."""
        name = f"said/callback-{hashlib.sha1(text.encode()).hexdigest()[:12]}"
        path = self.b2bua.data_dir / "prompts" / f"{name}.wav"
        if path.exists():
            return name, None
        voice = "en" if self.b2bua.prompts.language() == "en" else "uk"

        def speak() -> None:
            try:
                if not media.speak(path, text, voice):
                    log.info("espeak-ng is not installed: the call-back whisper is a tone")
            except (OSError, subprocess.SubprocessError, wave.Error, ValueError) as e:
                log.warning("could not speak the whisper %r: %s", text, e)
        return name, self.b2bua.pool.submit(speak)

    # -- virtual places in queues --------------------------------------------------

    def keep_place(self, s: Session, step: Queue) -> Place | None:
        """A queue caller pressed the call-back key: their place stays in the line, called back in turn."""
        w = self.b2bua.queues.hand_over(s, PLACE_PREFIX + s.id)
        if w is None:
            return None
        joined = datetime.now(timezone.utc) - timedelta(seconds=time.monotonic() - w.joined)
        place = Place(s.id, w.queue, s.caller, s.caller_name, s.dialled, w.priority, joined, step)
        self._hold(place, back=False)
        self.b2bua.emit("CallbackPlaceKept", s.id, queue=w.queue, caller=s.caller,
                        position=self.b2bua.queues.waiting.position(place.key))
        return place

    def _hold(self, place: Place, back: bool) -> None:
        self.places[place.key] = place
        if back:
            self.b2bua.queues.waiting.join(place.queue, place.key, place.caller, place.priority)
        if self._tick is None:
            self._tick = Timer(time.monotonic() + PLACE_TICK, self._look)
            self.b2bua.add_timer(self._tick)

    def _look(self) -> None:
        """While places wait: agents come free without telling the queue; look again every few seconds."""
        self._tick = None
        if not self.places:
            return
        for qid in {p.queue for p in self.places.values()}:
            self.b2bua.queues.queue_dispatch(qid)
        self._tick = Timer(time.monotonic() + PLACE_TICK, self._look)
        self.b2bua.add_timer(self._tick)

    def queue_step(self, qid: str, priority: int) -> Queue | None:
        """The Queue step a place waits in, from the routing (after a restart, the caller's own is gone)."""
        q = getattr(self.b2bua.router, "config", None)
        q = q.queues.get(qid) if q is not None else None
        if q is None:
            return None
        return Queue(f"queue:{qid}", f"queue '{q.name}'", q.max_wait, q.music, priority,
                     ring_time=q.ring_time, retry=q.retry)

    def facts(self, place: Place) -> Facts:
        tz = self.b2bua.lookups.snapshot.timezone
        return Facts(CallFacts(place.caller, place.dialled, ""), datetime.now(tz),
                     random.Random(self.b2bua.seeds.getrandbits(64)))

    def serve(self, place: Place, ring: Ring) -> set[str]:
        """The place's turn with a free agent: ring the first agent routing chose; the agents rung."""
        agent = next((leg.target for leg in ring.legs if not leg.external and leg.target in self.b2bua.extensions),
                     None)
        if agent is None:
            return set()
        try:
            sid = self.originate(agent, place.caller, True, place=place, ring_seconds=max(5, place.step.ring_time))
        except Refused as e:
            self._refused(place, str(e))
            return set()
        place.calling = sid
        return {agent}

    def _refused(self, place: Place, reason: str) -> None:
        """The place could not be called back now: no trunk waits, anything else ends it for a person."""
        w = self.b2bua.queues.waiting.find(place.key)
        if reason.startswith("No trunk") or reason.endswith("has no phone registered"):
            if w is not None:
                w.next_try = time.monotonic() + place.step.retry
            return
        self._leave(place, "failed", None, reason)

    def _attempt_over(self, place: Place, s: Session, side: str, reason: str) -> None:
        place.calling = ""
        if not side:
            return self._leave(place, "handled", s.extension, "called back", s.id)
        w = self.b2bua.queues.waiting.find(place.key)
        if side == "customer":
            place.attempts += 1
        at, attempts, cid, sid = now_iso(), place.attempts, place.call_id, s.id
        self.b2bua.recorder.submit(lambda st: CallbackPlaces(st).attempted(cid, attempts, at, reason, sid))
        most = int(self.b2bua.settings.get("callback_attempts", CALLBACK_ATTEMPTS))
        if side == "customer" and place.attempts >= most:
            return self._leave(place, "failed", None, f"{reason} ({place.attempts} attempts)", s.id)
        if w is not None:
            pause = (float(self.b2bua.settings.get("callback_retry_seconds", CALLBACK_RETRY_SECONDS))
                     if side == "customer" else place.step.retry)
            w.next_try = time.monotonic() + pause
        self.b2bua.later(lambda: self.b2bua.queues.queue_dispatch(place.queue))

    def _leave(self, place: Place, status: str, by: str | None, result: str, call: str = "") -> None:
        self.places.pop(place.key, None)
        self.b2bua.queues.leave_place(place.key, "called back" if status == "handled" else "callback failed")
        at, cid = now_iso(), place.call_id
        self.b2bua.recorder.submit(lambda st: CallbackPlaces(st).finished(cid, status, at, by, result, call or None))
        self.b2bua.emit("CallbackPlaceLeft", place.call_id, queue=place.queue, status=status, result=result,
                        by=by, call=call or None)


def originate_command(engine: Any, b2bua: Any) -> Any:
    """The control command `calls.originate {ext, number, whisper?}` -> {"call_id"}; a refusal is its error."""
    from appliance.control import ControlError

    def handler(args: dict) -> dict:
        ext, number, whisper = args.get("ext"), args.get("number"), args.get("whisper", False)
        if not isinstance(ext, (str, int)) or not isinstance(number, (str, int)) or not str(ext) or not str(number):
            raise ControlError("say which extension calls which number: {ext, number}")
        if not isinstance(whisper, (bool, str)):
            raise ControlError("whisper is true, false, or the words to say")
        try:
            return {"call_id": engine.call(b2bua.callbacks.originate, str(ext), str(number).strip(), whisper)}
        except Refused as e:
            raise ControlError(str(e)) from None
    return handler


def agents_now(b2bua: Any) -> dict[str, dict]:
    """Engine thread: each extension's presence as routing sees it, plus whether a leg rings it now.

    For the missed service's automatic callbacks (appliance.missed.autocall),
    which must ring only a free agent."""
    ringing: set[str] = set()
    for s in b2bua.sessions.values():
        if s.ended:
            continue
        for leg in s.legs.values():
            if leg.state in (LegState.NEW, LegState.CALLING, LegState.RINGING) and leg.role != "a":
                ringing.add(leg.target)
    out = {}
    for ext, p in b2bua.state().presence.items():
        status = getattr(p, "status", None)   # a person's own status (a break), where routing knows one
        out[ext] = {"registered": p.registered, "dnd": bool(p.dnd or (status and status != "available")),
                    "calls": p.calls, "ringing": ext in ringing,
                    "last_call_end": p.last_call_end.isoformat() if p.last_call_end else None}
    return out


def _rules(row: dict) -> list[str] | None:
    return json.loads(row["dial_rules"]) if row.get("dial_rules") else None


def _minutes_uk(n: int) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return "хвилину"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "хвилини"
    return "хвилин"
