"""`*28` on a desk phone: the night switch by feature code, confirmed aloud.

`*28` switches every night switch to the other mode until the schedule's
next boundary (what the button's short press does); `*28N` only the N-th
switch of the routing.  The change itself is the night service's (it runs on
the appliance's loop thread and saves the state with an event naming the
extension); the engine answers the phone, asks for the change through
`set_night` (a function returning a Future, given by `pbx run`), and says
what happened in the office's language ("Night mode on until 09:00").

A collaborator of the B2BUA; the sentence is spoken with espeak-ng in a
worker thread, then played like any prompt.
"""

from __future__ import annotations

import logging
import subprocess
import wave
from concurrent.futures import Future
from datetime import datetime
from typing import Any, Callable

from . import media
from .session import CallOutcome, Session

log = logging.getLogger("appliance.engine.b2bua")

CODE = "*28"
MAX_SWITCHES = 9  # *281 .. *289

SENTENCES = {
    "uk": {"night": "Нічний режим увімкнено", "day": "Денний режим увімкнено", "until": "до",
           "failed": "Не вдалося змінити нічний режим"},
    "en": {"night": "Night mode on", "day": "Day mode on", "until": "until",
           "failed": "Night mode could not be changed"},
}
VOICES = {"uk": "uk", "en": "en"}


def sentence(result: dict | None, language: str, tz: Any) -> str:
    """What the phone hears: the first switch's new mode and until when, in the office's language."""
    words = SENTENCES.get(language, SENTENCES["en"])
    if not result or not result.get("switches"):
        return words["failed"] + "."
    state = next(iter(result["switches"].values()))
    text = words["night" if state.get("mode") == "night" else "day"]
    if state.get("until"):
        until = datetime.fromisoformat(state["until"]).astimezone(tz)
        text += f" {words['until']} {until:%H:%M}"
    return text + "."


class NightCode:
    def __init__(self, b2bua: Any, set_night: Callable[[dict], Future]):
        self.b2bua = b2bua
        self.set_night = set_night
        self.said = 0  # confirmations spoken, for their file names

    def register(self) -> None:
        codes = [CODE, *(f"{CODE}{n}" for n in range(1, MAX_SWITCHES + 1))]
        for code in codes:
            self.b2bua.feature_codes[code] = self.dialled

    def dialled(self, s: Session, code: str) -> None:
        b = self.b2bua
        s.outcome = CallOutcome.FEATURE
        b.prompts.greet(s)
        index = code[len(CODE):]
        fut = self.set_night({"mode": "toggle", "switch_index": int(index) if index else None,
                              "by": f"extension {s.extension}"})
        # Done on the loop thread; the answer is taken up on the engine thread.
        fut.add_done_callback(lambda f: b.later(lambda: self._changed(s, f)))

    def _changed(self, s: Session, fut: Future) -> None:
        if s.ended:
            return
        try:
            result = fut.result()
        except Exception as e:  # noqa: BLE001 - the caller is told, the reason logged
            log.warning("call %s: %s could not change night mode: %s", s.id, s.extension, e)
            result = None
        b = self.b2bua
        language = str(b.settings.get("language", "uk"))
        text = sentence(result, language, b.lookups.snapshot.timezone)
        s.note("night", result=text)
        self.said += 1
        name = f"said/night-{self.said % 20}"
        path = b.data_dir / "prompts" / f"{name}.wav"

        def speak() -> None:
            try:
                path.unlink(missing_ok=True)  # an older sentence must never be played instead
                media.speak(path, text, VOICES.get(language, "en"))
            except (OSError, subprocess.SubprocessError, wave.Error, ValueError) as e:
                log.warning("could not speak %r: %s", text, e)
            b.later(lambda: self._say(s, name))
        b.pool.submit(speak)

    def _say(self, s: Session, name: str) -> None:
        if s.ended:
            return
        s.end_reason = "night mode changed by feature code"
        self.b2bua.prompts.say(s, [name], then=lambda: self.b2bua.end(s))
