"""The steps that talk to the caller: webhook, prompts, IVR menus, voicemail and queues.

Part of the B2BUA (appliance/engine/b2bua.py); everything here runs on the engine thread.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request
from typing import Any

import pjsua2 as pj

from appliance.routing.steps import AskWebhook, Menu, Outcome, Play, Queue, Ring, Voicemail

from . import media
from .session import RingRun, Session, audio_of, hangup

log = logging.getLogger("appliance.engine.b2bua")


class StepsMixin:
    """Methods of `B2BUA` (see b2bua.py)."""

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
