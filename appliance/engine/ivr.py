"""The steps that talk to the caller: webhook, prompts, IVR menus, voicemail and queues.

Part of the B2BUA (appliance/engine/b2bua.py); everything here runs on the engine thread.

The caller is answered when one of these steps starts; whatever the caller
heard before (ringback, music, a previous prompt) stops first.  Prompts are
played one after another with the engine's timers (`say`), never from a
player's end-of-file callback, which runs on the media thread.  Who waits in
which queue is kept in `queues.Queues`; agents are rung for the callers at
the front, as many callers at once as there are free agents.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request
from dataclasses import replace
from typing import Any, Callable, Iterable

import pjsua2 as pj

from appliance.routing.facts import State
from appliance.routing.model import split_ref
from appliance.routing.steps import AskWebhook, Menu, Outcome, Play, Queue, Ring, Voicemail

from . import media
from .queues import Queues
from .session import RingRun, Session, audio_of, hangup, now_iso

log = logging.getLogger("appliance.engine.b2bua")

VOICEMAIL_MAX_SECONDS = 180   # setting engine.voicemail_max
MEDIA_WAIT = 2.0              # seconds a prompt waits for the caller's audio to come up


class Saying:
    """Prompts played to a caller one after another, on the engine's timers.

    A class rather than nested functions: a closure that schedules itself is
    a reference cycle, and a player caught in one is freed by the garbage
    collector on whatever thread runs it, which pjsua does not allow.
    """

    __slots__ = ("b2bua", "s", "names", "then", "i", "current", "deadline")

    def __init__(self, b2bua: Any, s: Session, names: list[str], then: Callable[[], None] | None):
        self.b2bua, self.s, self.names, self.then = b2bua, s, names, then
        self.i = 0
        self.current: Any = None
        self.deadline = time.monotonic() + MEDIA_WAIT

    def start(self) -> None:
        # A caller just answered has no audio until pjsua reports the media
        # (a moment after the 200 OK): begin when it is there.
        s = self.s
        if s.ended:
            return
        if not (s.a.media_ok and audio_of(s.a) is not None) and time.monotonic() < self.deadline:
            s.after(0.02, self.start)
            return
        self.next()

    def next(self) -> None:
        b, s = self.b2bua, self.s
        if self.current is not None:
            b.unplug(s, self.current)
            self.current = None
        if s.ended:
            return
        if self.i >= len(self.names):
            then, self.then = self.then, None
            if then is not None:
                then()
            return
        snd, seconds = media.prompt(b.data_dir, self.names[self.i])
        self.i += 1
        s.sounds.append(snd)
        self.current = snd
        b.connect_sound(snd, s.a)
        s.after(seconds, self.next)


class StepsMixin:
    """Methods of `B2BUA` (see b2bua.py)."""

    # -- webhook -------------------------------------------------------------------

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

    # -- what the caller hears -----------------------------------------------------------

    def greet(self, s: Session) -> None:
        """Answer the caller (if not yet) and stop what they heard before."""
        if not s.a_answered:
            self.answer_a(s)
        self.silence(s)
        if not self.__dict__.get("_spoken"):
            # Spoken prompts for numbers and greetings, once, off the engine thread.
            self.__dict__["_spoken"] = True
            self.pool.submit(media.speak_missing, self.data_dir)

    def silence(self, s: Session) -> None:
        """Stop every sound attached to the call (recorders too)."""
        for snd in list(s.sounds):
            self.unplug(s, snd)

    def unplug(self, s: Session, snd: Any) -> None:
        am = audio_of(s.a) if s.a is not None else None
        if am is not None and not isinstance(snd, pj.AudioMediaRecorder):
            try:
                snd.stopTransmit(am)
            except pj.Error:
                pass
        media.stop(snd)
        s.sounds = [x for x in s.sounds if x is not snd]

    def say(self, s: Session, names: Iterable[str], then: Callable[[], None] | None = None) -> None:
        """Play prompts to the caller one after another, then call `then`."""
        Saying(self, s, [n for n in names if n], then).start()

    def ringback_answered(self, s: Session) -> None:
        """A caller already answered (after a menu, a queue) hears ringing while legs ring."""
        self.silence(s)
        snd = self.music.player() if s.ringback == "music" else media.ringback()
        if snd is not None:
            s.sounds.append(snd)
            self.connect_sound(snd, s.a)

    def caller_digit(self, s: Session, digit: str) -> None:
        """A key the caller pressed (RFC 2833 or SIP INFO), for the step that listens."""
        step = s.step
        if isinstance(step, Menu):
            self.menu_digit(s, digit)
        elif isinstance(step, Queue):
            self.queue_digit(s, step, digit)
        elif isinstance(step, Voicemail):
            self.voicemail_digit(s, step, digit)

    # -- announcement and menu -----------------------------------------------------------

    def play(self, s: Session, step: Play) -> None:
        self.greet(s)
        self.say(s, [step.prompt], then=lambda: self.step_done(s, Outcome.PLAYED))

    def menu(self, s: Session, step: Menu) -> None:
        self.greet(s)
        s.digits = ""
        self.say(s, step.prompts, then=lambda: s.after(step.timeout, lambda: self.menu_over(s, step)))

    def menu_digit(self, s: Session, digit: str) -> None:
        step = s.step
        self.silence(s)
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

    # -- voicemail -----------------------------------------------------------------------

    def voicemail(self, s: Session, step: Voicemail) -> None:
        """Greeting, a beep, then record the caller until they hang up (or `voicemail_max` s)."""
        self.greet(s)
        s.outcome = "missed"  # until there is a message
        box = self.router.config.voicemail.get(step.box) if self.router is not None else None
        greeting = f"vm-{step.box}-{step.greeting}"
        if box is not None and box.greeting:
            greeting = box.greeting
        elif not media.exists(self.data_dir, greeting):
            greeting = f"vm-{step.greeting}"
        self.say(s, [greeting, "beep"], then=lambda: self.voicemail_record(s, step))

    def voicemail_record(self, s: Session, step: Voicemail) -> None:
        if s.ended or s.step is not step:
            return
        folder = self.data_dir / "voicemail" / (step.box or "general")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{s.started_at[:19].replace(':', '-')}-{s.id}.wav"
        am = audio_of(s.a)
        rec = pj.AudioMediaRecorder()
        try:
            rec.createRecorder(str(path))
            if am is None:
                raise RuntimeError("the caller has no audio")
            am.startTransmit(rec)
        except (pj.Error, RuntimeError) as e:
            log.warning("call %s: cannot record voicemail in %s: %s", s.id, path, e.info() if isinstance(e, pj.Error) else e)
            s.end_reason = "voicemail could not record"
            return self.end(s)
        s.sounds.append(rec)
        s.outcome = "voicemail"
        s.note("voicemail", box=step.box, file=str(path))
        self.emit("VoicemailStarted", s.id, box=step.box, file=str(path), caller=s.caller)
        about = {"call_id": s.id, "box": step.box, "caller": s.caller, "caller_name": s.caller_name,
                 "dialled": s.dialled, "started_at": now_iso()}
        self.recorder.submit(lambda _store: path.with_suffix(".json").write_text(json.dumps(about)))
        seconds = float(self.settings.get("voicemail_max", VOICEMAIL_MAX_SECONDS))
        s.after(seconds, lambda: self.voicemail_done(s, "longest message reached"))

    def voicemail_digit(self, s: Session, step: Voicemail, digit: str) -> None:
        if digit == "#" and any(isinstance(x, pj.AudioMediaRecorder) for x in s.sounds):
            self.voicemail_done(s, "caller pressed #")

    def voicemail_done(self, s: Session, why: str) -> None:
        if s.ended:
            return
        s.end_reason = why
        self.end(s)

    # -- queues --------------------------------------------------------------------------

    @property
    def queues(self) -> Queues:
        q = self.__dict__.get("_queues")
        if q is None:
            q = self.__dict__["_queues"] = Queues(self.emit)
            self.__dict__["_queue_music"] = {}
            self.engine.on_shutdown(self._queues_shutdown)
        return q

    def _queues_shutdown(self) -> None:
        self.queues.clear()
        self.__dict__["_queue_music"].clear()

    def queue(self, s: Session, step: Queue) -> None:
        """Hold the caller with music, announce their place, ring agents when it is their turn."""
        self.greet(s)
        qid = split_ref(step.dest)[1]
        w = self.queues.join(qid, s.id, s.caller, step.priority)
        s.note("queue", queue=qid, position=w.position, vip=step.priority > 0)

        def waiting() -> None:
            self.queue_music(s, on=True)
            if step.announce_every > 0:
                s.after(step.announce_every, lambda: self.queue_announce(s, step))
        self.say(s, [step.greeting] if step.greeting else [], then=waiting)
        s.after(step.max_wait, lambda: self.queue_over(s, step))
        self.queue_tick(s, step)
        self.queue_dispatch(qid)

    def queue_tick(self, s: Session, step: Queue) -> None:
        # Agents come free without telling the queue (a call ends, wrap-up
        # passes, a phone registers): look again every `retry` seconds.
        def tick() -> None:
            if not s.ended and s.step is step:
                self.queue_dispatch(split_ref(step.dest)[1])
                self.queue_tick(s, step)
        s.after(max(1, step.retry), tick)

    def queue_music(self, s: Session, on: bool) -> None:
        held = self.__dict__["_queue_music"]
        player = held.get(s.id)
        if player is None:
            if not on:
                return
            step = s.step
            path = self.data_dir / "music" / f"{getattr(step, 'music', 'default')}.wav"
            try:
                player = media.player(path, loop=True) if path.exists() else self.music.player()
            except pj.Error:
                player = self.music.player()
            if player is None:
                return
            held[s.id] = player
            s.sounds.append(player)
        am = audio_of(s.a)
        if am is None:
            return
        try:
            player.startTransmit(am) if on else player.stopTransmit(am)
        except pj.Error:
            pass

    def queue_announce(self, s: Session, step: Queue) -> None:
        if s.ended or s.step is not step or s.peer is not None:
            return
        position = self.queues.position(s.id)
        if not position:
            return
        st = self.router.queue_status(step, position, self.facts(s), self.queue_state())
        names: list[str] = []
        if st["announce_position"]:
            names += ["queue-position", *media.number(self.data_dir, position)]
        if st["announce_wait"] and st["minutes"]:
            names += ["queue-wait", *media.number(self.data_dir, st["minutes"]), "minutes"]
        for key, prompt in ((step.callback_key, "queue-callback"), (step.exit_key, "queue-exit")):
            if key and key.isdigit():
                names += [prompt, f"digits/{key}"]
        s.note("announced", position=position, estimated_wait=st["estimated_wait"])
        self.emit("QueuePosition", s.id, queue=st["queue"], position=position,
                  estimated_wait=st["estimated_wait"], announced=True)

        def back() -> None:
            self.queue_music(s, on=True)
            s.after(step.announce_every, lambda: self.queue_announce(s, step))
        self.queue_music(s, on=False)
        self.say(s, names, then=back)

    def queue_state(self, ringing: Iterable[str] = ()) -> State:
        """The state routing sees, with the queues' answer times and agents being rung counted busy."""
        state = self.state()
        presence = dict(state.presence)
        for target in ringing:
            p = presence.get(target)
            if p is not None:
                presence[target] = replace(p, calls=p.calls + 1)
        return replace(state, presence=presence, answer_times=self.queues.recent_answer_times())

    def queue_dispatch(self, qid: str) -> None:
        """Ring agents for the callers at the front of queue `qid`.

        As many callers as there are free agents may ring at once (agents
        already ringing for someone count as busy); a caller whose last
        attempt just ended waits `retry` seconds, and nobody behind takes
        their turn meanwhile.
        """
        line = [w for w in self.queues.line(qid)]
        idle = []
        for w in line:
            o = self.sessions.get(w.call_id)
            if o is None or o.ended or not isinstance(o.step, Queue) or o.peer is not None:
                continue
            if o.ring is None:
                idle.append((w, o))
        if not idle:
            return
        ringing = {leg.target for o in self.sessions.values() for leg in o.legs.values()
                   if leg.state in ("calling", "ringing")}
        state = self.queue_state(ringing)
        first = idle[0][1]
        free = self.router.queue_status(first.step, 1, self.facts(first), state)["agents"]
        now = time.monotonic()
        for w, o in idle[:free]:
            if w.next_try > now:
                continue
            d = self.router.queue_ring(o.step, self.facts(o), state)
            if not isinstance(d.step, Ring) or not d.step.legs:
                break
            for t in d.trace:
                o.note("trace", what=t.kind, text=t.text)
            if d.updates.positions:
                self.strategy_state["positions"].update(d.updates.positions)
                positions = dict(self.strategy_state["positions"])
                self.recorder.submit(lambda st, p=positions: st.set_routing_state("positions", p))
            self.queue_ring_agents(o, d.step)
            ringing |= {leg.target for leg in d.step.legs}
            state = self.queue_state(ringing)

    def queue_ring_agents(self, s: Session, ring: Ring) -> None:
        run = s.ring = RingRun(s.step, ring.legs, time.monotonic())  # type: ignore[arg-type]
        s.note("queue_ring", targets=[leg.target for leg in ring.legs])
        for i, spec in enumerate(run.specs):
            s.after(spec.stop, lambda i=i: self.leg_stop(s, run, i))
        for i, spec in enumerate(run.specs):
            if spec.start <= 0:
                self.leg_start(s, run, i)
            else:
                s.after(spec.start, lambda i=i: self.leg_start(s, run, i))
        self.check_exhausted(s, run)

    def queue_attempt_over(self, s: Session, run: RingRun) -> None:
        """Nobody answered this round of ringing: back to waiting, try again after `retry` s."""
        step = run.step
        s.ring = None
        w = self.queues.find(s.id)
        if w is not None:
            w.next_try = time.monotonic() + step.retry
        s.note("queue_attempt", codes=list(run.codes))
        qid = split_ref(step.dest)[1]
        self.later(lambda: self.queue_dispatch(qid))

    def leave_queue(self, s: Session, reason: str = "hangup") -> None:
        """Take the call out of its queue (answered, hangup, exit, callback, timeout)."""
        if "_queues" not in self.__dict__:
            return
        self.__dict__["_queue_music"].pop(s.id, None)
        w = self.queues.leave(s.id, reason)
        if w is not None:
            self.later(lambda: self.queue_dispatch(w.queue))

    def _queue_stop_ringing(self, s: Session) -> None:
        s.ring = None  # first: a leg's end may be reported while it is hung up
        for leg in list(s.legs.values()):
            if leg is not s.peer:
                hangup(leg)

    def queue_digit(self, s: Session, step: Queue, digit: str) -> None:
        if self.queues.find(s.id) is None:
            return  # already leaving (the call-back confirmation is playing)
        if step.exit_key and digit == step.exit_key:
            s.cancel_timers()
            self._queue_stop_ringing(s)
            self.leave_queue(s, "exit")
            self.step_done(s, Outcome.DIGITS, digits=digit)
        elif step.callback_key and digit == step.callback_key:
            s.cancel_timers()
            self._queue_stop_ringing(s)
            self.leave_queue(s, "callback")
            self.request_callback(s, step)
            self.silence(s)
            self.say(s, ["callback-confirm"], then=lambda: self.step_done(s, Outcome.CALLBACK))

    def request_callback(self, s: Session, step: Queue) -> None:
        qid = split_ref(step.dest)[1]
        row = {"call_id": s.id, "queue": qid, "caller": s.caller, "caller_name": s.caller_name,
               "dialled": s.dialled, "requested_at": now_iso(), "status": "open"}
        self.recorder.submit(lambda st: st.db["callbacks"].insert(row))
        s.note("callback", queue=qid)
        self.emit("CallbackRequested", s.id, queue=qid, caller=s.caller, caller_name=s.caller_name)

    def queue_over(self, s: Session, step: Queue) -> None:
        if s.ended or s.step is not step or s.peer is not None:
            return
        self._queue_stop_ringing(s)
        self.leave_queue(s, "timeout")
        self.step_done(s, Outcome.NO_ANSWER)

    def queue_answered(self, s: Session) -> None:
        """An agent took the call (called before it is bridged)."""
        self.leave_queue(s, "answered")

