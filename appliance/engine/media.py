"""Sounds the engine plays into calls: ringback, music on hold, prompts.

All of it is pjsua2's own C players and tone generators (a Python audio port
would run on the media clock thread and stall the bridge; see PJSUA2-NOTES).
A prompt is `DATA/prompts/<name>.wav` (8 kHz mono 16-bit) when the owner has
recorded one; otherwise a short tone pattern stands in, so a missing file
never leaves a caller in silence.  Music on hold is `DATA/music/default.wav`,
created on first use as a gentle arpeggio until the owner uploads music.

A sound that is stopped is muted at once and released on the next engine
loop turn, never inside the callback that stopped it.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path
from typing import Any

import pjsua2 as pj

RATE = 8000
_retired: list[Any] = []


def tones(pattern: list[tuple[int, int, int]], loop: bool = True) -> Any:
    """A tone generator playing (frequency Hz, on ms, off ms) steps."""
    tg = pj.ToneGenerator()
    tg.createToneGenerator(RATE, 1)
    v = pj.ToneDescVector()
    for freq, on, off in pattern:
        d = pj.ToneDesc()
        d.freq1, d.freq2, d.on_msec, d.off_msec, d.volume = freq, 0, on, off, 0
        d.flags = 0
        v.append(d)
    tg.play(v, loop)
    return tg


def ringback(_music: Any = None) -> Any:
    # The European ringing tone: 425 Hz, 1 s on, 4 s off.
    return tones([(425, 1000, 4000)])


def confirm_prompt(data_dir: Path) -> Any:
    """What a forwarded mobile hears until it presses the key."""
    path = Path(data_dir) / "prompts" / "confirm.wav"
    if path.exists():
        return player(path, loop=True)
    return tones([(1000, 200, 150), (1000, 200, 1200)])


def prompt(data_dir: Path, name: str) -> tuple[Any, float]:
    """(sound, seconds) for a named prompt."""
    path = Path(data_dir) / "prompts" / f"{name}.wav"
    if path.exists():
        with wave.open(str(path)) as w:
            seconds = w.getnframes() / float(w.getframerate())
        return player(path, loop=False), seconds + 0.1
    return tones([(800, 250, 100), (600, 250, 300)], loop=False), 1.0


def player(path: Path, loop: bool) -> Any:
    p = pj.AudioMediaPlayer()
    p.createPlayer(str(path), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
    return p


def stop(snd: Any) -> None:
    """Mute a sound now; let it go on the next loop turn."""
    try:
        if isinstance(snd, pj.ToneGenerator):
            snd.stop()
    except pj.Error:
        pass
    # A player has no pause: dropping it removes its port from the bridge.
    _retired.append(snd)


def release_retired() -> None:
    _retired.clear()


class Music:
    """Music on hold (and queue/ringback music) from one file, a player per listener."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "music" / "default.wav"
        if not self.path.exists():
            write_default_music(self.path)

    def player(self) -> Any:
        try:
            return player(self.path, loop=True)
        except pj.Error:
            return None

    def close(self) -> None:
        release_retired()


def write_default_music(path: Path, seconds: float = 8.0) -> None:
    """A soft arpeggio in C major, so hold is never silence (and a test can hear it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    notes = [523.25, 659.25, 783.99, 1046.5, 783.99, 659.25]
    frames = bytearray()
    per_note = int(RATE * 0.5)
    total = int(RATE * seconds)
    for i in range(total):
        f = notes[(i // per_note) % len(notes)]
        t = (i % per_note) / RATE
        env = min(1.0, t * 20) * max(0.0, 1.0 - t * 1.6)
        frames += struct.pack("<h", int(6000 * env * math.sin(2 * math.pi * f * i / RATE)))
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    tmp.replace(path)
