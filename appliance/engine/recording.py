"""Recording calls on the engine thread: the policy at the join, the announcement, recorders, the key.

A collaborator of the B2BUA (appliance/engine/b2bua.py), created by it and called by name at four
points of a call: `hold_bridge` (before the two sides are joined: the announcement that the call is
recorded plays first), `bridged` (joined: an `always` recording starts), `digit` (a desk phone in
the call pressed a key: the feature code starts and stops an `on_demand` recording) and `ended`.

A recording is one or more spans, each a pjsua2 `AudioMediaRecorder` that both parties' ports
transmit to, so the file holds the bridge's mix of the two; each span is a WAV
(`DATA/recordings/YYYY/MM/DD/<start>-<call id>.<policy>.<n>.wav`).  A recorder is let go like any
sound (`media.stop`: released on the next loop turn, never inside a callback), and when the call
ends its spans go to the encoder (appliance/recording/encoder.py), which compresses them into one
MP3 off this thread and links it to the call record.

The disk guard is read every `DISK_CHECK` seconds and on every reload: below its threshold every
span is closed and no new one starts (`RecordingStopped`, reason "disk"); when space is back
(`RecordingResumed`) the calls that were being recorded get a new span.  Calls go on either way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pjsua2 as pj

from appliance.recording.config import Settings
from appliance.recording.disk import MB, DiskGuard, Usage
from appliance.recording.encoder import Done, Encoder, Job
from appliance.recording.policy import NOTHING, Choice, Policy, choose, office_extension, place_of

from . import media
from .session import Leg, Session, Timer, audio_of

if TYPE_CHECKING:
    from .b2bua import B2BUA

log = logging.getLogger("appliance.engine.recording")

DISK_CHECK = 10.0      # seconds between looks at the free space
KEY_GAP = 3.0          # seconds within which the feature code's keys must follow each other
BEEP_SECONDS = 1.0     # how long the key's confirmation tone is kept before it is let go
START_BEEP = [(880, 120, 80), (880, 120, 80)]   # two short beeps: recording
STOP_BEEP = [(440, 250, 50)]                    # one lower beep: not recording


@dataclass
class Take:
    """One call's recording: its policy, its spans so far, and the recorder of the span under way."""

    session: Session
    choice: Choice
    base: Path                       # the folder and the name without suffix
    parts: list[Path] = field(default_factory=list)
    recorder: Any = None             # the span being recorded (pj.AudioMediaRecorder)
    on: bool = False                 # recording is wanted now (always; on_demand once the key was pressed)
    announcing: bool = False
    announced: bool = False
    keys: str = ""
    keys_at: float = 0.0


class CallRecordings:
    """The B2BUA's call recording; `usage` reads the disk (injectable: a test fills the card)."""

    def __init__(self, b2bua: "B2BUA", usage: Callable[[Path], Usage] | None = None):
        self.b2bua = b2bua
        self.folder = b2bua.data_dir / "recordings"
        self.settings = Settings()
        self.guard = DiskGuard(self.folder, self.settings.min_free_mb, self.settings.min_free_percent, usage)
        self.takes: dict[str, Take] = {}
        self.encoder = Encoder(self.folder, b2bua.data_dir, done=self._saved,
                               retention_days=lambda: self.settings.retention_days)
        self.started = False

    # -- life ----------------------------------------------------------------------------

    def start(self) -> None:
        """Engine thread, after the first reload: the encoder, and the first look at the disk."""
        self.encoder.start()
        self.started = True
        self._disk_timer()

    def reload(self, setting: Any) -> None:
        self.settings = Settings.from_setting(setting)
        self.guard.configure(self.settings.min_free_mb, self.settings.min_free_percent)
        if self.started:
            self.check_disk()

    def shutdown(self) -> None:
        """Engine thread, calls hung up: the spans still open are closed and handed to the encoder."""
        for take in list(self.takes.values()):
            take.recorder = None  # not inside a callback: the recorder may go now
            self._hand_over(take)
        self.takes.clear()
        self.encoder.stop(timeout=5.0)  # what is not done by then is compressed at the next start

    # -- the call --------------------------------------------------------------------------

    def hold_bridge(self, s: Session) -> bool:
        """Before the two sides are joined: True while they hear that the call is recorded."""
        take = self._take(s)
        if take.announcing:
            return True
        if take.announced or not take.choice.announce or s.peer is None:
            return False
        snd, seconds = media.prompt(self.b2bua.data_dir, self.settings.announcement,
                                    str(self.b2bua.settings.get("language", "uk")))
        s.sounds.append(snd)  # bridge() stops it when it joins the two
        for leg in (s.a, s.peer):
            self.b2bua.connect_sound(snd, leg)
        take.announcing = True
        s.note("recording", what="announced", policy=take.choice.policy.value)
        self.b2bua.add_timer(Timer(time.monotonic() + seconds, lambda: self._announced(take)))
        return True

    def _announced(self, take: Take) -> None:
        take.announcing, take.announced = False, True
        s = take.session
        if not s.ended:
            self.b2bua.bridge(s)

    def bridged(self, s: Session) -> None:
        """The two sides were joined (again, after a transfer: a new span with the new parties)."""
        take = self.takes.get(s.id)
        if take is None or not take.choice.records:
            return
        if take.recorder is not None:
            self._close_span(take, "rejoined")
        if take.choice.policy is Policy.ALWAYS:
            take.on = True
        if take.on:
            self._open_span(take)

    def digit(self, s: Session, leg: Leg, digit: str) -> bool:
        """A key from a leg in a joined call; True when it completed the feature code."""
        take = self.takes.get(s.id)
        if take is None or take.choice.policy is not Policy.ON_DEMAND or not s.bridged or not self._desk(s, leg):
            return False
        code = self.settings.toggle_code
        now = time.monotonic()
        if now - take.keys_at > KEY_GAP:
            take.keys = ""
        take.keys, take.keys_at = (take.keys + digit)[-len(code):], now
        if take.keys != code:
            return False
        take.keys = ""
        take.on = not take.on
        if take.on:
            self._open_span(take)
        else:
            self._close_span(take, "key")
        self._beep(leg, START_BEEP if take.recorder is not None else STOP_BEEP)
        return True

    def ended(self, s: Session) -> None:
        take = self.takes.pop(s.id, None)
        if take is None:
            return
        if take.recorder is not None:
            media.stop(take.recorder)  # released on the next turn, which writes the WAV's header
            take.recorder = None
        self._hand_over(take)

    # -- the disk --------------------------------------------------------------------------

    def check_disk(self) -> None:
        r = self.guard.check()
        if not r.changed:
            return
        if not r.allowed:
            log.warning("recording stopped: %d MB free, below %d MB", r.free // MB, r.threshold // MB)
            for take in self.takes.values():
                if take.recorder is not None:
                    self._close_span(take, "disk")
            self.b2bua.emit("RecordingStopped", None, reason="disk", free_mb=r.free // MB,
                            threshold_mb=r.threshold // MB)
            return
        log.warning("recording resumed: %d MB free", r.free // MB)
        self.b2bua.emit("RecordingResumed", None, free_mb=r.free // MB, threshold_mb=r.threshold // MB)
        for take in self.takes.values():
            if take.on and take.recorder is None and take.session.bridged and not take.session.ended:
                self._open_span(take)

    def _disk_timer(self) -> None:
        self.b2bua.add_timer(Timer(time.monotonic() + DISK_CHECK, self._disk_timer))
        self.check_disk()

    # -- inside ----------------------------------------------------------------------------

    def _take(self, s: Session) -> Take:
        """The call's recording, its policy chosen the first time the two sides are about to be joined."""
        take = self.takes.get(s.id)
        if take is None:
            take = self.takes[s.id] = Take(s, self._choice(s), self._base(s))
            if take.choice.records:
                s.note("recording", what="policy", policy=take.choice.policy.value, by=take.choice.target)
        return take

    def _choice(self, s: Session) -> Choice:
        if not self.settings.rules:
            return NOTHING
        trunk = s.trunk or (s.peer.trunk if s.peer is not None else "")
        ext = office_extension(s.answered_by, s.extension, self.b2bua.extensions)
        return choose(self.settings.rules, trunk, place_of(s.path), ext)

    def _base(self, s: Session) -> Path:
        try:
            started = datetime.fromisoformat(s.started_at).astimezone(self.b2bua.lookups.snapshot.timezone)
        except (ValueError, AttributeError):
            started = datetime.now()
        day = self.folder / f"{started:%Y}" / f"{started:%m}" / f"{started:%d}"
        return day / f"{started:%Y%m%d-%H%M%S}-{s.id}"

    def _desk(self, s: Session, leg: Leg) -> bool:
        """The leg is an office desk phone's: the one that answered, or the one that placed the call."""
        if leg is s.a:
            return bool(s.extension) and s.extension in self.b2bua.extensions
        return leg is s.peer and leg.role == "b" and not leg.trunk and leg.target in self.b2bua.extensions

    def _open_span(self, take: Take) -> None:
        s = take.session
        if not self.guard.allowed:
            s.note("recording", what="not started", why="disk")
            return
        a = audio_of(s.a) if s.a is not None else None
        b = audio_of(s.peer) if s.peer is not None else None
        if a is None or b is None:
            return
        path = take.base.with_name(f"{take.base.name}.{take.choice.policy.value}.{len(take.parts) + 1}.wav")
        rec = pj.AudioMediaRecorder()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            rec.createRecorder(str(path))
            a.startTransmit(rec)
            b.startTransmit(rec)
        except (pj.Error, OSError) as e:
            log.warning("call %s: cannot record into %s: %s", s.id, path, e.info() if isinstance(e, pj.Error) else e)
            media.stop(rec)
            return
        take.recorder = rec
        take.parts.append(path)
        s.note("recording", what="started", part=len(take.parts))
        self.b2bua.emit("RecordingStarted", s.id, policy=take.choice.policy.value, by=take.choice.target,
                        part=len(take.parts))

    def _close_span(self, take: Take, why: str) -> None:
        rec, take.recorder = take.recorder, None
        if rec is None:
            return
        s = take.session
        for leg in (s.a, s.peer):  # nothing more reaches the span from now on ...
            am = audio_of(leg) if leg is not None else None
            if am is not None:
                try:
                    am.stopTransmit(rec)
                except pj.Error:
                    pass
        media.stop(rec)  # ... and it is let go on the next turn, which writes its WAV header
        s.note("recording", what="paused", why=why)
        self.b2bua.emit("RecordingPaused", s.id, reason=why, part=len(take.parts))

    def _hand_over(self, take: Take) -> None:
        if take.parts:
            self.encoder.submit(Job(take.session.id, take.choice.policy.value, tuple(take.parts),
                                    take.base.with_name(take.base.name + ".mp3")))

    def _beep(self, leg: Leg, pattern: list[tuple[int, int, int]]) -> None:
        """The desk phone hears that the key took: two beeps for recording, one for not."""
        tone = media.tones(pattern, loop=False)
        leg.sounds.append(tone)  # let go with the leg if it ends first
        self.b2bua.connect_sound(tone, leg)

        def let_go() -> None:
            if any(x is tone for x in leg.sounds):
                leg.sounds.remove(tone)
                media.stop(tone)
        self.b2bua.add_timer(Timer(time.monotonic() + BEEP_SECONDS, let_go))

    def _saved(self, done: Done) -> None:
        """Encoder thread: the call's file is written and linked (or could not be)."""
        if done.file is None:
            self.b2bua.later(lambda: self.b2bua.emit("RecordingFailed", done.call_id, error=done.error))
            return
        self.b2bua.later(lambda: self.b2bua.emit(
            "RecordingSaved", done.call_id, file=done.file, seconds=done.seconds, bytes=done.size,
            encode_s=done.encode_seconds))
