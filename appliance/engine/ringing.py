"""Ringing legs for a Ring or Forward step: their timers, the first answer wins, the others are cancelled.

A collaborator of the B2BUA (appliance/engine/b2bua.py), created by it and called by name;
everything here runs on the engine thread.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import time
import wave
from typing import Any

import pjsua2 as pj

from appliance.routing import dialplan
from appliance.routing.numbers import normalise
from appliance.routing.steps import Connected, Decision, Forward, Leg as LegSpec, Outcome, Queue, Ring

from . import media
from .session import (
    BUSY_CODES, COMPLETED_ELSEWHERE, CONFIRM_SECONDS, Account, Leg, LegState, RingRun, Session, call_op, hangup,
    header, now_iso,
)

log = logging.getLogger("appliance.engine.b2bua")


class Ringing:
    """The B2BUA's Ring and Forward steps: legs placed and stopped on time, the first answer wins."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua

    def ring(self, s: Session, step: Ring | Forward, specs: tuple[LegSpec, ...]) -> None:
        run = s.ring = RingRun(step, specs, time.monotonic())
        if s.a_answered and s.peer is None:
            self.b2bua.prompts.ringback_answered(s)  # after a menu or a queue: the engine's own ringing
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
        number, name = s.shown or (s.caller, s.caller_name)
        from_name = name or number
        if spec.branch:  # another shop's appliance, over its branch trunk (trunks.py)
            return self.b2bua.trunks.ring_branch(s, run, i, spec)
        if spec.external or spec.target.startswith("+"):
            if not s.may_use_trunk:
                run.codes.append(403)
                s.note("skip", target=spec.target, why="an unknown caller cannot reach a trunk")
                return
            out = self.b2bua.trunks.trunk_out(s.trunk)
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
            bindings = self.b2bua.lookups.bindings_for(self.b2bua.store, spec.target)
            if not bindings:
                run.codes.append(480)
                s.note("skip", target=spec.target, why="not registered")
            cfg = self.b2bua.engine.config
            local = f'"{from_name}" <sip:{number or "anonymous"}@{cfg.sip_host}:{cfg.sip_port}>'
            for b in bindings:
                self.place(s, run, i, self.b2bua.phone_account(b), b["contact"], local)
        if spec.target not in s.rung:
            s.rung.append(spec.target)

    def place(self, s: Session, run: RingRun, i: int, acc: Account, uri: str, local: str,
              confirm: bool = False, trunk: str = "", headers: tuple[tuple[str, str], ...] = ()) -> Leg | None:
        spec = run.specs[i]
        leg = Leg(self.b2bua, acc, pj.PJSUA_INVALID_ID, "b", spec.target, i, confirm)
        leg.trunk = trunk
        prm = call_op()
        prm.txOption.localUri = local
        for name, value in headers:
            prm.txOption.headers.append(header(name, value))
        if not leg.dial(uri, prm):
            log.warning("call %s: could not call %s: %s %s", s.id, uri, leg.code, leg.reason)
            run.codes.append(leg.code or 500)
            return None
        leg.session = s
        s.legs[leg.uid] = leg
        run.placed += 1
        if confirm:
            self.prepare_whisper(s, run.step)
        self.b2bua.emit("LegStarted", s.id, target=spec.target, uri=uri, leg=leg.uid)
        return leg

    def whisper_text(self, step: Ring | Forward) -> str:
        """What a mobile hears before it takes a call: whose line, and the key to press."""
        language = str(self.b2bua.settings.get("language", "uk"))
        key = str(self.b2bua.settings.get("confirm_key", "1"))
        line = step.path.route or step.name
        if language == "en":
            return f"Call for {line}. Press {key} to take it."
        return f"Дзвінок на лінію {line}. Натисніть {key}, щоб прийняти."

    def prepare_whisper(self, s: Session, step: Ring | Forward) -> None:
        """Have the whisper spoken while the mobile rings (once per text; espeak-ng in a worker thread)."""
        text = self.whisper_text(step)
        s.whisper = f"said/whisper-{hashlib.sha1(text.encode()).hexdigest()[:12]}"
        path = self.b2bua.data_dir / "prompts" / f"{s.whisper}.wav"
        if path.exists():
            return
        language = str(self.b2bua.settings.get("language", "uk"))

        def speak() -> None:
            try:
                media.speak(path, text, "en" if language == "en" else "uk")
            except (OSError, subprocess.SubprocessError, wave.Error, ValueError) as e:
                log.warning("could not speak the whisper %r: %s", text, e)
        self.b2bua.pool.submit(speak)

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
        self.b2bua.step_done(s, Outcome.NO_ANSWER)

    def check_exhausted(self, s: Session, run: RingRun) -> None:
        """Nobody left ringing and nobody still to start: the step is over early."""
        if s.ended or s.ring is not run or s.peer is not None:
            return
        if any(l.spec >= 0 for l in s.legs.values()) or len(run.started) < len(run.specs):
            return
        if isinstance(run.step, Queue):
            return self.b2bua.queues.queue_attempt_over(s, run)  # back to waiting in the queue
        if not run.codes or run.placed == 0 and all(c in (480, 403, 503) for c in run.codes):
            outcome = Outcome.UNAVAILABLE
        elif all(c in BUSY_CODES for c in run.codes):
            outcome = Outcome.BUSY
        elif run.stopped or any(c in (408, 480, 487, 0) for c in run.codes):
            outcome = Outcome.NO_ANSWER
        else:
            outcome = Outcome.FAILED
        if not s.routed and outcome is Outcome.FAILED:
            return self.b2bua.step_done(s, outcome, code=run.codes[-1])
        self.b2bua.step_done(s, outcome)

    def ringing(self, s: Session) -> None:
        if s.transfer is not None and s.transfer.rings:
            return self.b2bua.transfers.target_ringing(s)
        if s.a_early or s.a_answered:
            return
        s.a_early = True
        prm = call_op(180 if s.ringback == "180" else 183)
        try:
            s.a.answer(prm)
        except pj.Error as e:
            log.warning("call %s: could not send ringing: %s", s.id, e.info())
            return
        self.b2bua.stats["post_dial_ms"].append((time.monotonic() - s.t0) * 1000)
        if s.ringback != "180":
            self.b2bua.leg_media(s.a, None)

    def b_answered(self, s: Session, leg: Leg) -> None:
        if s.peer is not None or s.ring is None:
            hangup(leg, headers=(("Reason", COMPLETED_ELSEWHERE),))
            return
        if leg.confirm and not leg.accepted:
            # A mobile answered: it is bridged only after the key press, so its
            # voicemail can never take the call.
            self.b2bua.emit("LegConfirming", s.id, target=leg.target, leg=leg.uid)
            s.note("confirming", target=leg.target)
            whisper = self.b2bua.data_dir / "prompts" / f"{s.whisper}.wav" if s.whisper else None
            snd = None
            if whisper is not None and whisper.exists():
                try:
                    snd = media.player(whisper, loop=True)  # whose line, and the key, again until pressed
                except pj.Error as e:
                    log.warning("call %s: the whisper cannot be played: %s", s.id, e.info())
            if snd is None:
                snd = media.confirm_prompt(self.b2bua.data_dir)
            leg.sounds.append(snd)
            self.b2bua.connect_sound(snd, leg)
            s.after(float(self.b2bua.settings.get("confirm_seconds", CONFIRM_SECONDS)),
                    lambda: self.confirm_timeout(s, leg))
            return
        self.winner(s, leg, leg.target)

    def confirm_timeout(self, s: Session, leg: Leg) -> None:
        if leg.accepted or leg.state == LegState.ENDED or s.ended:
            return
        s.note("not_confirmed", target=leg.target)
        self.b2bua.emit("LegNotConfirmed", s.id, target=leg.target, leg=leg.uid)
        hangup(leg)

    def winner(self, s: Session, leg: Leg, by: str) -> None:
        """leg takes the call: bridge it, cancel everyone else."""
        if s.transfer is not None and s.transfer.rings:
            return self.b2bua.transfers.target_answered(s, leg, by)
        s.peer = leg
        first = s.answered_at is None
        s.answered_by = by
        s.answered_at, s.t_answer = now_iso(), time.monotonic()
        if first:
            sid, at = s.id, s.answered_at
            self.b2bua.recorder.submit(lambda st: st.call_answered(sid, at, by))
        step = s.step
        s.cancel_timers()
        s.ring = None
        for other in list(s.legs.values()):
            if other is not leg:
                hangup(other, headers=(("Reason", COMPLETED_ELSEWHERE),))
        leg.spec = -1
        if isinstance(step, Queue):
            self.b2bua.queues.queue_answered(s)
        if not s.a_answered:
            self.b2bua.answer_a(s)
        self.b2bua.bridge(s)
        s.note("answered", by=by)
        self.b2bua.emit("CallAnswered", s.id, by=by, wait_s=round(s.t_answer - s.t0, 3))
        if s.routed and isinstance(step, (Ring, Forward, Queue)):
            try:
                d = self.b2bua.router.next_step(step, Outcome.ANSWERED, self.b2bua.facts(s), self.b2bua.state(), by=by)
            except Exception:  # noqa: BLE001
                log.exception("routing failed after an answer on call %s", s.id)
                return
            for t in d.trace:
                s.note("trace", what=t.kind, text=t.text)
            self.b2bua.decided(s, d) if not isinstance(d.step, Connected) else self._connected(s, d)

    def _connected(self, s: Session, d: Decision) -> None:
        s.step = d.step
        if d.updates.positions or d.updates.answered:
            self.b2bua.decided(s, Decision(d.step, (), d.updates))
