"""What a caller heard: tone prompts for tests and a windowed Goertzel over a recording.

Tests give every prompt its own frequency (`tone_wav`), record the caller's
side of the call, and read back the order of what was heard (`heard`).
"""

from __future__ import annotations

import array
import math
import time
import wave
from pathlib import Path

RATE = 8000
MUSIC = (523.25, 659.25, 783.99, 1046.5)   # the default music on hold's notes
RINGING = 425.0


def tone_wav(path: Path, freq: float, seconds: float, amplitude: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(RATE * seconds)
    pcm = array.array("h", (int(amplitude * math.sin(2 * math.pi * freq * i / RATE)) for i in range(n)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def _power(samples, freq: float) -> float:
    k = 2 * math.cos(2 * math.pi * freq / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + k * s1 - s2
        s2, s1 = s1, s0
    return s1 * s1 + s2 * s2 - k * s1 * s2


def samples(path: Path) -> array.array:
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE, w.getframerate()
        return array.array("h", w.readframes(w.getnframes()))


def heard(path: Path, labels: dict[str, float | tuple[float, ...]], window: float = 0.1,
          share: float = 0.4, min_windows: int = 2) -> list[str]:
    """The labels heard in order: runs of at least `min_windows` windows.

    A window belongs to the label whose frequencies hold at least `share` of
    its power; a run of one label broken by less than 0.3 s of anything else
    counts once.
    """
    data = samples(path)
    size = int(RATE * window)
    runs: list[list] = []
    for start in range(0, len(data) - size + 1, size):
        chunk = data[start:start + size]
        energy = sum(x * x for x in chunk)
        label = "-"
        if energy / size > 1000:   # louder than about -50 dBFS
            best = 0.0
            for name, freqs in labels.items():
                fs = freqs if isinstance(freqs, tuple) else (freqs,)
                p = sum(_power(chunk, f) for f in fs) / (energy * size / 2)
                if p > best:
                    best, label = p, name
            if best < share:
                label = "?"
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    out: list[str] = []
    gap = 0  # windows since the last label kept: a pause of 0.3 s or more separates two runs of one label
    for label, count in runs:
        if count < min_windows or label in ("-", "?"):
            gap += count
            continue
        if not out or out[-1] != label or gap >= 3:
            out.append(label)
        gap = 0
    return out


def complete(path: Path) -> bool:
    """The recorder closed the file (the header is written when it is released)."""
    try:
        with wave.open(str(path)) as w:
            return w.getnframes() > 0 or Path(path).stat().st_size <= 44
    except (OSError, EOFError, wave.Error):
        return False


def seconds_of(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def wait_for(check, timeout: float = 5.0, what: str = "condition"):
    """Poll `check()` until it returns something true; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.05)
