"""Sounds the engine plays into calls: ringback, music on hold, prompts.

All of it is pjsua2's own C players and tone generators (a Python audio port
would run on the media clock thread and stall the bridge; see PJSUA2-NOTES).
A prompt is `DATA/prompts/<name>.wav` (8 kHz mono 16-bit) when the owner has
recorded one; otherwise a short tone pattern stands in, so a missing file
never leaves a caller in silence.  Music on hold is `DATA/music/default.wav`,
created on first use as a gentle arpeggio until the owner uploads music.

A sound that is stopped is muted at once and released on the next engine
loop turn, never inside the callback that stopped it.

Spoken prompts the engine needs (queue positions, numbers, voicemail
greetings) are generated once with espeak-ng into `DATA/prompts` when it is
installed (`speak_missing`); a file the owner put there is never replaced.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import wave
from pathlib import Path
from typing import Any

import pjsua2 as pj

RATE = 8000
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


def prompt(data_dir: Path, name: str) -> tuple[Any, float]:
    """(sound, seconds) for a named prompt: its WAV, else a tone pattern in its place."""
    path = Path(data_dir) / "prompts" / f"{name}.wav"
    if path.exists():
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


def exists(data_dir: Path, name: str) -> bool:
    return (Path(data_dir) / "prompts" / f"{name}.wav").exists()


def number(data_dir: Path, n: int) -> list[str]:
    """The prompts that say the number n: `digits/<n>` when it was recorded,
    else tens and units ("digits/20", "digits/3"), else digit by digit."""
    if exists(data_dir, f"digits/{n}"):
        return [f"digits/{n}"]
    if 20 < n < 100 and n % 10 and exists(data_dir, f"digits/{n - n % 10}") and exists(data_dir, f"digits/{n % 10}"):
        return [f"digits/{n - n % 10}", f"digits/{n % 10}"]
    return [f"digits/{d}" for d in str(n)]


# What the engine says in its own words until the owner records better ones.
SPEECH = {
    "queue-position": "You are caller number",
    "queue-wait": "Your estimated waiting time is about",
    "minutes": "minutes",
    "queue-callback": "To be called back, press",
    "queue-exit": "To leave the queue, press",
    "callback-confirm": "Thank you. We will call you back as soon as possible.",
    "vm-unavailable": "Nobody can take your call right now. Please leave a message after the tone.",
    "vm-busy": "The line is busy. Please leave a message after the tone.",
    **{f"digits/{n}": str(n) for n in (*range(21), 30, 40, 50, 60, 70, 80, 90)},
}
_speaking = threading.Lock()


def speak(path: Path, text: str, voice: str = "en") -> bool:
    """Say `text` with espeak-ng into `path` as a prompt (8 kHz mono, silence trimmed); False without it.

    Slow (a fraction of a second): run it in a worker thread, never on the
    engine thread."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, raw = tempfile.mkstemp(suffix=".wav", dir=path.parent)
    os.close(fd)
    try:
        subprocess.run([espeak, "-v", voice, "-s", "150", "-w", raw, text], check=True,
                       capture_output=True, timeout=30)
        with wave.open(raw) as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            data = w.readframes(w.getnframes())
        if width != 2 or channels != 1:
            raise ValueError(f"espeak-ng wrote {channels} channel(s) of {width * 8} bits")
        write_wav(path, trim(resample(data, rate, RATE)))
        return True
    finally:
        Path(raw).unlink(missing_ok=True)


def speak_missing(data_dir: Path, voice: str = "en") -> int:
    """Generate the spoken prompts that are missing with espeak-ng; the number written.

    Slow (a fraction of a second per prompt): run it in a worker thread, never
    on the engine thread.  Without espeak-ng the tone stand-ins are used.
    """
    if shutil.which("espeak-ng") is None:
        log.info("espeak-ng is not installed: prompts that were not recorded are played as tones")
        return 0
    written = 0
    with _speaking:
        for name, text in SPEECH.items():
            path = Path(data_dir) / "prompts" / f"{name}.wav"
            if path.exists():
                continue
            try:
                speak(path, text, voice)
                written += 1
            except (OSError, subprocess.SubprocessError, wave.Error, ValueError) as e:
                log.warning("could not generate prompt %s with espeak-ng: %s", name, e)
                break
    if written:
        log.info("generated %d spoken prompts in %s", written, Path(data_dir) / "prompts")
    return written


def resample(pcm: bytes, rate: int, to: int) -> bytes:
    """16-bit mono PCM from `rate` to `to` Hz: a moving average against aliasing, then
    linear interpolation (good enough for speech prompts)."""
    import array

    src = array.array("h", pcm)
    if rate == to or not src:
        return pcm
    width = max(1, round(rate / to))
    if width > 1:
        acc, smooth = 0, array.array("h")
        for i, x in enumerate(src):
            acc += x
            if i >= width:
                acc -= src[i - width]
            smooth.append(int(acc / min(i + 1, width)))
        src = smooth
    out = array.array("h")
    step = rate / to
    n = int(len(src) / step)
    for j in range(n):
        pos = j * step
        i = int(pos)
        frac = pos - i
        b = src[i + 1] if i + 1 < len(src) else src[i]
        out.append(int(src[i] + (b - src[i]) * frac))
    return out.tobytes()


def trim(pcm: bytes, level: int = 300, keep: float = 0.05) -> bytes:
    """Leading and trailing near-silence cut to `keep` seconds (espeak-ng pads its output)."""
    import array

    a = array.array("h", pcm)
    loud = [i for i, x in enumerate(a) if abs(x) > level]
    if not loud:
        return pcm
    pad = int(keep * RATE)
    return a[max(0, loud[0] - pad):loud[-1] + pad].tobytes()


def write_wav(path: Path, pcm: bytes, rate: int = RATE) -> None:
    """An 8 kHz mono 16-bit WAV, written beside and renamed (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    tmp.replace(path)


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
