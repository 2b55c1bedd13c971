"""The steps that talk to the caller: webhook, prompts, IVR menus and voicemail.

A collaborator of the B2BUA (appliance/engine/b2bua.py), created by it and
called by name; everything here runs on the engine thread.

The caller is answered when one of these steps starts; whatever the caller
heard before (ringback, music, a previous prompt) stops first.  Prompts are
played one after another with the engine's timers (`say`), never from a
player's end-of-file callback, which runs on the media thread.  Queues are
`queuecalls.QueueCalls`.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request
from typing import Any, Callable, Iterable

import pjsua2 as pj

from appliance.routing.steps import AskWebhook, Menu, Outcome, Play, Queue, Voicemail

from . import media
from .session import CallOutcome, Session, audio_of, now_iso

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

    def __init__(self, prompts: "Prompts", s: Session, names: list[str], then: Callable[[], None] | None):
        self.b2bua, self.s, self.names, self.then = prompts, s, names, then
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
        snd, seconds = media.prompt(b.b2bua.data_dir, self.names[self.i], b.language())
        self.i += 1
        s.sounds.append(snd)
        self.current = snd
        b.b2bua.connect_sound(snd, s.a)
        s.after(seconds, self.next)


class Prompts:
    """The B2BUA's steps that talk to the caller: webhook, announcements, menus, voicemail."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua
        self.spoken = False  # the spoken prompts have been made (once, off the engine thread)
        # The steps that listen for the caller's keys, and what hears them.
        self.listeners: dict[type, Callable[[Session, Any, str], None]] = {
            Menu: self.menu_digit, Queue: b2bua.queues.queue_digit, Voicemail: self.voicemail_digit,
        }

    def language(self) -> str:
        """What callers hear the appliance's own prompts in (`calls.language`)."""
        return str(self.b2bua.settings.get("language", "uk"))

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

        fut = self.b2bua.pool.submit(post)

        def done(f: Any) -> None:
            outcome, answer = f.result()

            def back() -> None:
                if not s.ended and s.step is step:
                    self.b2bua.step_done(s, outcome, answer=answer)
            self.b2bua.later(back)

        fut.add_done_callback(done)

    # -- what the caller hears -----------------------------------------------------------

    def greet(self, s: Session) -> None:
        """Answer the caller (if not yet) and stop what they heard before."""
        if not s.a_answered:
            self.b2bua.answer_a(s)
        self.silence(s)
        if not self.spoken:
            # Spoken prompts for numbers and greetings, once, off the engine thread.
            self.spoken = True
            self.b2bua.pool.submit(media.speak_missing, self.b2bua.data_dir, media.first(self.language()))

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
        snd = self.b2bua.music.player() if s.ringback == "music" else media.ringback()
        if snd is not None:
            s.sounds.append(snd)
            self.b2bua.connect_sound(snd, s.a)

    def caller_digit(self, s: Session, digit: str) -> None:
        """A key the caller pressed (RFC 2833 or SIP INFO), for the step that listens."""
        listener = self.listeners.get(type(s.step))
        if listener is not None:
            listener(s, s.step, digit)

    # -- announcement and menu -----------------------------------------------------------

    def play(self, s: Session, step: Play) -> None:
        self.greet(s)
        self.say(s, [step.prompt], then=lambda: self.b2bua.step_done(s, Outcome.PLAYED))

    def menu(self, s: Session, step: Menu) -> None:
        self.greet(s)
        s.digits = ""
        self.say(s, step.prompts, then=lambda: s.after(step.timeout, lambda: self.menu_over(s, step)))

    def menu_digit(self, s: Session, step: Menu, digit: str) -> None:
        self.silence(s)
        s.cancel_timers()
        s.digits += digit
        self.b2bua.emit("MenuKey", s.id, menu=step.name, digit=digit, digits=s.digits)
        entry = step.entry(s.digits)
        if entry.value == "more":
            s.after(step.inter_digit, lambda: self.menu_over(s, step))
        else:
            self.b2bua.step_done(s, Outcome.DIGITS, digits=s.digits)

    def menu_over(self, s: Session, step: Menu) -> None:
        if s.step is not step:
            return
        if s.digits:
            self.b2bua.step_done(s, Outcome.DIGITS, digits=s.digits)
        else:
            self.b2bua.step_done(s, Outcome.TIMEOUT)

    # -- voicemail -----------------------------------------------------------------------

    def voicemail(self, s: Session, step: Voicemail) -> None:
        """Greeting, a beep, then record the caller until they hang up (or `voicemail_max` s)."""
        self.greet(s)
        s.outcome = CallOutcome.MISSED  # until there is a message
        greeting = f"vm-{step.box}-{step.greeting}"
        if step.prompt:
            greeting = step.prompt
        elif not media.exists(self.b2bua.data_dir, greeting, self.language()):
            greeting = f"vm-{step.greeting}"
        self.say(s, [greeting, "beep"], then=lambda: self.voicemail_record(s, step))

    def voicemail_record(self, s: Session, step: Voicemail) -> None:
        if s.ended or s.step is not step:
            return
        folder = self.b2bua.data_dir / "voicemail" / (step.box or "general")
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
            return self.b2bua.end(s)
        s.sounds.append(rec)
        s.outcome = CallOutcome.VOICEMAIL
        s.note("voicemail", box=step.box, file=str(path))
        self.b2bua.emit("VoicemailStarted", s.id, box=step.box, file=str(path), caller=s.caller)
        about = {"call_id": s.id, "box": step.box, "caller": s.caller, "caller_name": s.caller_name,
                 "dialled": s.dialled, "started_at": now_iso()}
        self.b2bua.recorder.submit(lambda _store: path.with_suffix(".json").write_text(json.dumps(about)))
        seconds = float(self.b2bua.settings.get("voicemail_max", VOICEMAIL_MAX_SECONDS))
        s.after(seconds, lambda: self.voicemail_done(s, "longest message reached"))

    def voicemail_digit(self, s: Session, step: Voicemail, digit: str) -> None:
        if digit == "#" and any(isinstance(x, pj.AudioMediaRecorder) for x in s.sounds):
            self.voicemail_done(s, "caller pressed #")

    def voicemail_done(self, s: Session, why: str) -> None:
        if s.ended:
            return
        s.end_reason = why
        self.b2bua.end(s)
