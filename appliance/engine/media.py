"""Sounds the engine plays into calls: ringback, music on hold, prompts.

All of it is pjsua2's own C players and tone generators (a Python audio port
would run on the media clock thread and stall the bridge; see PJSUA2-NOTES).
A prompt is `DATA/prompts/<name>.wav` (8 kHz mono 16-bit) when the owner has
recorded one (in any language), else the spoken default in the caller's
language, `DATA/prompts/<language>/<name>.wav`; otherwise a short tone
pattern stands in, so a missing file never leaves a caller in silence.  Music
on hold is `DATA/music/default.wav`, created on first use as a gentle arpeggio
until the owner uploads music.

A sound that is stopped is muted at once and released on the next engine
loop turn, never inside the callback that stopped it.

Spoken prompts the engine needs (queue positions, numbers, voicemail
greetings) are generated once per language with espeak-ng into
`DATA/prompts/uk` and `DATA/prompts/en` when it is installed
(`appliance.audio.speak_missing`, which the panel uses too: it has no pjsua2);
a file the owner put in `DATA/prompts` is never replaced.
"""

from __future__ import annotations

import logging
import math
import struct
import wave
from pathlib import Path
from typing import Any

import pjsua2 as pj

from appliance.audio import (  # noqa: F401 - the engine's modules call them as media.*
    LANGUAGES, RATE, SPEECH, first, prompt_path, resample, speak, speak_missing, trim, write_wav,
)

_retired: list[Any] = []
log = logging.getLogger("appliance.engine.media")


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


def prompt(data_dir: Path, name: str, language: str = "uk") -> tuple[Any, float]:
    """(sound, seconds) for a named prompt: the owner's WAV, else the default in `language`,
    else a tone pattern in its place."""
    path = prompt_path(data_dir, name, language)
    if path is not None:
        try:
            with wave.open(str(path)) as w:
                seconds = w.getnframes() / float(w.getframerate())
            return player(path, loop=False), seconds + 0.1
        except (wave.Error, EOFError, pj.Error) as e:
            log.warning("prompt %s cannot be played (%s); a tone stands in", path, e)
    pattern = stand_in(name)
    return tones(pattern, loop=False), sum(on + off for _, on, off in pattern) / 1000.0 + 0.1


def stand_in(name: str) -> list[tuple[int, int, int]]:
    """The tone pattern played for a prompt that has no recording.

    A digit is that many short beeps (ten for 0), so a number is still
    understood; "beep" is the tone before a voicemail recording.
    """
    if name == "beep":
        return [(1000, 400, 100)]
    if name.startswith("digits/") and name[7:].isdigit() and len(name) == 8:
        count = int(name[7:]) or 10
        return [(1200, 120, 120)] * (count - 1) + [(1200, 120, 400)]
    return [(800, 250, 100), (600, 250, 300)]


def exists(data_dir: Path, name: str, language: str = "uk") -> bool:
    return prompt_path(data_dir, name, language) is not None


def number(data_dir: Path, n: int, language: str = "uk") -> list[str]:
    """The prompts that say the number n: `digits/<n>` when it was recorded (or spoken),
    else tens and units ("digits/20", "digits/3"), else digit by digit."""
    if exists(data_dir, f"digits/{n}", language):
        return [f"digits/{n}"]
    tens, units = f"digits/{n - n % 10}", f"digits/{n % 10}"
    if 20 < n < 100 and n % 10 and exists(data_dir, tens, language) and exists(data_dir, units, language):
        return [tens, units]
    return [f"digits/{d}" for d in str(n)]


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
