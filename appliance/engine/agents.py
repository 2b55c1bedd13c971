"""Agents' statuses: what a person says about themselves, apart from what the system sees.

A person sets their extension's status: `available`, `break`, `lunch` or
`wrapup` (after-call work).  Any status but available pauses the agent:
groups and queues do not ring it (routing's `Presence.paused`), a direct
call still does.  The system's state (registered, ringing, in a call) is the
monitor's; the system adds one status of its own: after a call the agent
answered, *after-call work* for the extension's `wrapup` seconds, which
routing's wrap-up rule already honours and which this part only says.

A collaborator of the B2BUA (appliance/engine/b2bua.py) as `agents`;
everything here runs on the engine thread:

- `set(ext, status, by)` changes a status: in memory at once (the next
  routing decision sees it), in the store through the recorder
  (appliance/store/agents.py), and as the event `AgentStatusChanged`;
- feature codes on the desk phone: `*45` pauses (a break), `*45N` with a
  reason digit (`REASONS`: 1 break, 2 lunch, 3 after-call work), `*46`
  resumes; the phone hears the new status spoken (espeak-ng in a worker
  thread, a tone stands in without it), then the call ends;
- `call_ended(s)`: the automatic after-call work, announced with
  `AgentStatusChanged` (`auto: true`, `until`) and again when it is over.

    {"kind": "AgentStatusChanged", "ext": "101", "status": "break", "set": "break",
     "auto": false, "until": null, "since": ISO, "by": "extension 101"}

`status` is what the agent is now (the automatic after-call work while it
lasts, else the person's status), `set` the person's own.
"""

from __future__ import annotations

import logging
import subprocess
import time
import wave
from datetime import datetime, timedelta, timezone
from typing import Any

from appliance.routing.strategies import resolve
from appliance.store.agents import AVAILABLE, STATUSES, AgentStatuses

from . import media
from .session import CallOutcome, Session, Timer, now_iso

log = logging.getLogger("appliance.engine.b2bua")

PAUSE_CODE, RESUME_CODE = "*45", "*46"
REASONS = {"1": "break", "2": "lunch", "3": "wrapup"}   # *451 .. *453
WRAPUP = "wrapup"

SENTENCES = {
    "uk": {"available": "Ви доступні", "break": "Ви на перерві", "lunch": "Ви на обіді",
           "wrapup": "Робота після дзвінка"},
    "en": {"available": "You are available", "break": "You are on a break", "lunch": "You are at lunch",
           "wrapup": "After-call work"},
}


def wrapup_seconds(config: Any, ext: str) -> int:
    """The longest wrap-up routing gives `ext`: its own (extensions, extension_defaults) or a group's or queue's."""
    if config is None:
        return 0
    most = config.extension(ext).availability.wrapup or 0
    for g in (*config.groups.values(), *config.queues.values()):
        for m in g.members:
            if not m.external and m.target == ext:
                most = max(most, resolve(m.availability, g.availability).wrapup or 0)
    return int(most)


class Agents:
    """The B2BUA's agents' statuses, set by people, and the automatic after-call work."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua
        self.statuses: dict[str, dict] = {}       # ext -> {status, since, by}: the person's own
        self.wrapups: dict[str, Timer] = {}       # ext -> the end of its automatic after-call work
        self.until: dict[str, str] = {}           # ext -> when that ends (ISO)
        self.said = 0                             # confirmations spoken, for their file names
        b2bua.feature_codes[PAUSE_CODE] = self.dialled
        b2bua.feature_codes[RESUME_CODE] = self.dialled
        for digit in REASONS:
            b2bua.feature_codes[PAUSE_CODE + digit] = self.dialled

    def start(self) -> None:
        """Engine thread, at the B2BUA's start: the statuses people set before."""
        self.statuses = AgentStatuses(self.b2bua.store).all()

    def shutdown(self) -> None:
        self.wrapups.clear()
        self.until.clear()

    # -- what routing and the panel read -------------------------------------------

    def status_of(self, ext: str) -> str:
        return (self.statuses.get(ext) or {}).get("status", AVAILABLE)

    def paused(self, ext: str) -> bool:
        return self.status_of(ext) != AVAILABLE

    def view(self, ext: str) -> dict:
        mine = self.statuses.get(ext) or {"status": AVAILABLE, "since": None, "by": ""}
        auto = ext in self.until and mine["status"] == AVAILABLE
        return {"ext": ext, "status": WRAPUP if auto else mine["status"], "set": mine["status"], "auto": auto,
                "until": self.until.get(ext) if auto else None, "since": mine["since"], "by": mine["by"]}

    def views(self) -> dict:
        """Control command `agents.status`: every extension's status now."""
        return {"agents": {ext: self.view(ext) for ext in sorted(self.b2bua.extensions)}}

    # -- changes ---------------------------------------------------------------------

    def set(self, ext: str, status: str, by: str = "") -> dict:
        """A person's new status for `ext` (ValueError for an unknown extension or status)."""
        if ext not in self.b2bua.extensions:
            raise ValueError(f"there is no extension {ext}")
        if status not in STATUSES:
            raise ValueError(f"{status!r} is not a status: one of {', '.join(STATUSES)}")
        at = now_iso()
        self.statuses[ext] = {"status": status, "since": at, "by": by}
        self.b2bua.recorder.submit(lambda st: AgentStatuses(st).set(ext, status, by, at))
        return self._changed(ext)

    def _changed(self, ext: str) -> dict:
        view = self.view(ext)
        self.b2bua.emit("AgentStatusChanged", None, **view)
        return view

    def call_ended(self, s: Session) -> None:
        """The B2BUA's end of a call: the agent who answered it is in after-call work for its wrap-up."""
        ext = s.answered_by
        if ext not in self.b2bua.extensions:
            return
        seconds = wrapup_seconds(getattr(self.b2bua.router, "config", None), ext)
        if seconds <= 0:
            return
        old = self.wrapups.pop(ext, None)
        if old is not None:
            old.cancel()
        t = Timer(time.monotonic() + seconds, lambda: self._wrapup_over(ext))
        self.wrapups[ext] = t
        self.b2bua.add_timer(t)
        until = datetime.now(timezone.utc) + timedelta(seconds=seconds)
        self.until[ext] = until.isoformat(timespec="milliseconds")
        self._changed(ext)

    def _wrapup_over(self, ext: str) -> None:
        self.wrapups.pop(ext, None)
        self.until.pop(ext, None)
        self._changed(ext)

    # -- feature codes ----------------------------------------------------------------

    def dialled(self, s: Session, code: str) -> None:
        """*45, *45N, *46 from a desk phone: the extension's own status, confirmed aloud."""
        b = self.b2bua
        s.outcome = CallOutcome.FEATURE
        b.prompts.greet(s)
        status = AVAILABLE if code == RESUME_CODE else REASONS.get(code[len(PAUSE_CODE):], "break")
        self.set(s.extension, status, f"extension {s.extension}")
        s.note("agent_status", status=status)
        s.end_reason = f"agent status set to {status} by feature code"
        language = b.prompts.language()
        text = SENTENCES.get(language, SENTENCES["en"])[status] + "."
        self.said += 1
        name = f"said/agent-{self.said % 20}"
        path = b.data_dir / "prompts" / f"{name}.wav"
        voice = "en" if language == "en" else "uk"

        def speak() -> None:
            try:
                path.unlink(missing_ok=True)  # an older sentence must never be played instead
                media.speak(path, text, voice)
            except (OSError, subprocess.SubprocessError, wave.Error, ValueError) as e:
                log.warning("could not speak %r: %s", text, e)
            b.later(lambda: self._say(s, name))
        b.pool.submit(speak)

    def _say(self, s: Session, name: str) -> None:
        if not s.ended:
            self.b2bua.prompts.say(s, [name], then=lambda: self.b2bua.end(s))
