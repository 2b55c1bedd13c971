"""Queues on the engine side: callers held with music, announcements, agents rung in turn, call-back requests.

A collaborator of the B2BUA (appliance/engine/b2bua.py), created by it and
called by name; everything here runs on the engine thread.  Who waits in
which queue, in what order, is `queues.Queues` (plain data); this part plays
the music and announcements, rings agents for the callers at the front, as
many callers at once as there are free agents, and takes callers out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Iterable

import pjsua2 as pj

from appliance.routing.facts import State
from appliance.routing.model import split_ref
from appliance.routing.steps import Outcome, Queue, Ring

from . import media
from .queues import Queues
from .session import LegState, RingRun, Session, audio_of, hangup, now_iso

log = logging.getLogger("appliance.engine.b2bua")


class QueueCalls:
    """The B2BUA's queue steps."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua
        self.waiting = Queues(b2bua.emit)     # who waits where, in what order
        self.held: dict[str, Any] = {}         # call id -> its queue music player

    def shutdown(self) -> None:
        self.waiting.clear()
        self.held.clear()

    def queue(self, s: Session, step: Queue) -> None:
        """Hold the caller with music, announce their place, ring agents when it is their turn."""
        self.b2bua.prompts.greet(s)
        qid = split_ref(step.dest)[1]
        w = self.waiting.join(qid, s.id, s.caller, step.priority)
        s.note("queue", queue=qid, position=w.position, vip=step.priority > 0)

        def waiting() -> None:
            self.queue_music(s, on=True)
            if step.announce_every > 0:
                s.after(step.announce_every, lambda: self.queue_announce(s, step))
        self.b2bua.prompts.say(s, [step.greeting] if step.greeting else [], then=waiting)
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
        held = self.held
        player = held.get(s.id)
        if player is None:
            if not on:
                return
            step = s.step
            path = self.b2bua.data_dir / "music" / f"{getattr(step, 'music', 'default')}.wav"
            try:
                player = media.player(path, loop=True) if path.exists() else self.b2bua.music.player()
            except pj.Error:
                player = self.b2bua.music.player()
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
        position = self.waiting.position(s.id)
        if not position:
            return
        st = self.b2bua.router.queue_status(step, position, self.b2bua.facts(s), self.queue_state())
        names: list[str] = []
        if st["announce_position"]:
            names += ["queue-position", *media.number(self.b2bua.data_dir, position, self.b2bua.prompts.language())]
        if st["announce_wait"] and st["minutes"]:
            minutes = media.number(self.b2bua.data_dir, st["minutes"], self.b2bua.prompts.language())
            names += ["queue-wait", *minutes, "minutes"]
        for key, prompt in ((step.callback_key, "queue-callback"), (step.exit_key, "queue-exit")):
            if key and key.isdigit():
                names += [prompt, f"digits/{key}"]
        s.note("announced", position=position, estimated_wait=st["estimated_wait"])
        self.b2bua.emit("QueuePosition", s.id, queue=st["queue"], position=position,
                  estimated_wait=st["estimated_wait"], announced=True)

        def back() -> None:
            self.queue_music(s, on=True)
            s.after(step.announce_every, lambda: self.queue_announce(s, step))
        self.queue_music(s, on=False)
        self.b2bua.prompts.say(s, names, then=back)

    def queue_state(self, ringing: Iterable[str] = ()) -> State:
        """The state routing sees, with the queues' answer times and agents being rung counted busy."""
        state = self.b2bua.state()
        presence = dict(state.presence)
        for target in ringing:
            p = presence.get(target)
            if p is not None:
                presence[target] = replace(p, calls=p.calls + 1)
        return replace(state, presence=presence, answer_times=self.waiting.recent_answer_times())

    def queue_dispatch(self, qid: str) -> None:
        """Ring agents for the callers at the front of queue `qid`.

        As many callers as there are free agents may ring at once (agents
        already ringing for someone count as busy); a caller whose last
        attempt just ended waits `retry` seconds, and nobody behind takes
        their turn meanwhile.
        """
        line = [w for w in self.waiting.line(qid)]
        idle: list[tuple[Any, Any]] = []
        for w in line:
            place = self.b2bua.callbacks.places.get(w.call_id)  # a call-back's virtual place (callback.py)
            if place is not None:
                # Between attempts (minutes after a customer who did not answer) it holds up no one.
                if not place.calling and w.next_try <= time.monotonic():
                    idle.append((w, place))
                continue
            o = self.b2bua.sessions.get(w.call_id)
            if o is None or o.ended or not isinstance(o.step, Queue) or o.peer is not None:
                continue
            if o.ring is None:
                idle.append((w, o))
        if not idle:
            return
        ringing = {leg.target for o in self.b2bua.sessions.values() for leg in o.legs.values()
                   if leg.state in (LegState.CALLING, LegState.RINGING)}
        state = self.queue_state(ringing)
        first = idle[0][1]
        free = self.b2bua.router.queue_status(first.step, 1, self._facts(first), state)["agents"]
        now = time.monotonic()
        for w, o in idle[:free]:
            if w.next_try > now:
                continue
            d = self.b2bua.router.queue_ring(o.step, self._facts(o), state)
            if not isinstance(d.step, Ring) or not d.step.legs:
                break
            if d.updates.positions:
                self.b2bua.strategy_state["positions"].update(d.updates.positions)
                positions = dict(self.b2bua.strategy_state["positions"])
                self.b2bua.recorder.submit(lambda st, p=positions: st.set_routing_state("positions", p))
            if not isinstance(o, Session):
                ringing |= self.b2bua.callbacks.serve(o, d.step)  # its agent first, then the customer
                state = self.queue_state(ringing)
                continue
            for t in d.trace:
                o.note("trace", what=t.kind, text=t.text)
            self.queue_ring_agents(o, d.step)
            ringing |= {leg.target for leg in d.step.legs}
            state = self.queue_state(ringing)

    def _facts(self, waiting: Any) -> Any:
        """Routing's facts for a caller waiting (a Session) or a call-back's place."""
        if isinstance(waiting, Session):
            return self.b2bua.facts(waiting)
        return self.b2bua.callbacks.facts(waiting)

    def queue_ring_agents(self, s: Session, ring: Ring) -> None:
        run = s.ring = RingRun(s.step, ring.legs, time.monotonic())  # type: ignore[arg-type]
        s.note("queue_ring", targets=[leg.target for leg in ring.legs])
        for i, spec in enumerate(run.specs):
            s.after(spec.stop, lambda i=i: self.b2bua.ringer.leg_stop(s, run, i))
        for i, spec in enumerate(run.specs):
            if spec.start <= 0:
                self.b2bua.ringer.leg_start(s, run, i)
            else:
                s.after(spec.start, lambda i=i: self.b2bua.ringer.leg_start(s, run, i))
        self.b2bua.ringer.check_exhausted(s, run)

    def queue_attempt_over(self, s: Session, run: RingRun) -> None:
        """Nobody answered this round of ringing: back to waiting, try again after `retry` s."""
        step = run.step
        s.ring = None
        w = self.waiting.find(s.id)
        if w is not None:
            w.next_try = time.monotonic() + step.retry
        s.note("queue_attempt", codes=list(run.codes))
        qid = split_ref(step.dest)[1]
        self.b2bua.later(lambda: self.queue_dispatch(qid))

    def leave_queue(self, s: Session, reason: str = "hangup") -> None:
        """Take the call out of its queue (answered, hangup, exit, callback, timeout)."""
        self.held.pop(s.id, None)
        w = self.waiting.leave(s.id, reason)
        if w is not None:
            self.b2bua.later(lambda: self.queue_dispatch(w.queue))

    def hand_over(self, s: Session, key: str) -> Any:
        """The caller leaves, their place stays in the line as `key` (a call-back's virtual place)."""
        self.held.pop(s.id, None)
        w = self.waiting.find(s.id)
        if w is None:
            return None
        w.call_id = key
        self.b2bua.emit("QueueLeft", s.id, queue=w.queue, reason="callback",
                        waited_s=round(time.monotonic() - w.joined, 3), waiting=len(self.waiting.line(w.queue)))
        return w

    def leave_place(self, key: str, reason: str) -> None:
        """A virtual place leaves its queue (called back, or given up)."""
        w = self.waiting.leave(key, reason)
        if w is not None:
            self.b2bua.later(lambda: self.queue_dispatch(w.queue))

    def move_out(self, s: Session) -> None:
        """The caller leaves the queue for another destination (moves.py): its ringing and sounds stop."""
        s.cancel_timers()
        self._queue_stop_ringing(s)
        self.b2bua.prompts.silence(s)
        self.leave_queue(s, "moved")

    def put_at(self, w: Any, position: int) -> int:
        """Put a waiting caller at `position` (1: next) in its line; the callers between move by one.

        The line stays ordered as `Queues.join` orders it, VIP first and then
        by turn, so a caller who joins later falls in behind the right ones:
        the moved caller takes the turns of the places it lands between, and
        their priority (a caller put ahead of VIPs counts as one, a VIP put
        behind others no longer does).  Returns the caller's position.
        """
        line = self.waiting.waiting[w.queue]
        others = [x for x in line if x is not w]
        i = min(position, len(line)) - 1
        before, after = others[:i], others[i:]
        highest = before[-1].priority if before else max(w.priority, after[0].priority if after else 0)
        lowest = after[0].priority if after else 0
        w.priority = min(max(w.priority, lowest), highest)
        turns = sorted(x.seq for x in line)
        line[:] = [*before, w, *after]
        for x, seq in zip(line, turns):
            x.seq = seq
        return self._positions(w)

    def make_vip(self, w: Any) -> int:
        """VIP for this call: ahead of every caller who is not (as `vip_first`); returns the position."""
        w.priority = max(w.priority, 1)
        self.waiting.waiting[w.queue].sort(key=lambda x: (-x.priority, x.seq))
        return self._positions(w)

    def _positions(self, w: Any) -> int:
        """Tell the callers whose place changed (QueuePosition; `w`, with whether it is a VIP, always)."""
        for n, x in enumerate(self.waiting.waiting[w.queue], 1):
            if x.position != n or x is w:
                x.position = n
                vip = {"vip": x.priority > 0} if x is w else {}
                self.b2bua.emit("QueuePosition", x.call_id, queue=w.queue, position=n, **vip)
        self.b2bua.later(lambda: self.queue_dispatch(w.queue))
        return w.position

    def _queue_stop_ringing(self, s: Session) -> None:
        s.ring = None  # first: a leg's end may be reported while it is hung up
        for leg in list(s.legs.values()):
            if leg is not s.peer:
                hangup(leg)

    def queue_digit(self, s: Session, step: Queue, digit: str) -> None:
        if self.waiting.find(s.id) is None:
            return  # already leaving (the call-back confirmation is playing)
        if step.exit_key and digit == step.exit_key:
            s.cancel_timers()
            self._queue_stop_ringing(s)
            self.leave_queue(s, "exit")
            self.b2bua.step_done(s, Outcome.DIGITS, digits=digit)
        elif step.callback_key and digit == step.callback_key:
            s.cancel_timers()
            self._queue_stop_ringing(s)
            place = self.b2bua.callbacks.keep_place(s, step)  # the place stays; the queue calls back
            self.request_callback(s, step, place)
            self.b2bua.prompts.silence(s)
            self.b2bua.prompts.say(s, ["callback-confirm"], then=lambda: self.b2bua.step_done(s, Outcome.CALLBACK))

    def request_callback(self, s: Session, step: Queue, place: Any = None) -> None:
        qid = split_ref(step.dest)[1]
        row = {"call_id": s.id, "queue": qid, "caller": s.caller, "caller_name": s.caller_name,
               "dialled": s.dialled, "requested_at": now_iso(), "status": "open"}
        if place is not None:
            row |= {"priority": place.priority, "joined_at": place.joined_at.isoformat(timespec="milliseconds"),
                    "attempts": 0}
        self.b2bua.recorder.submit(lambda st: st.add_callback(row))
        s.note("callback", queue=qid)
        self.b2bua.emit("CallbackRequested", s.id, queue=qid, caller=s.caller, caller_name=s.caller_name)

    def queue_over(self, s: Session, step: Queue) -> None:
        if s.ended or s.step is not step or s.peer is not None:
            return
        self._queue_stop_ringing(s)
        self.leave_queue(s, "timeout")
        self.b2bua.step_done(s, Outcome.NO_ANSWER)

    def queue_answered(self, s: Session) -> None:
        """An agent took the call (called before it is bridged)."""
        self.leave_queue(s, "answered")

