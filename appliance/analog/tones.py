"""Tones on an analog line at 8 kHz: Goertzel, DTMF (detect and generate), and the 425 Hz call-progress cadences.

Pure functions and small stateful detectors fed 16-bit samples (numpy int16
arrays or anything numpy can read).  No I/O: the line's audio thread feeds
them (appliance/analog/audio.py), the tests feed generated signals.

Facts used (ITU-T Q.23/Q.24 for DTMF; ETSI ES 201 970 and the national
tables of ITU-T E.180 for the tones):
- DTMF: rows 697, 770, 852, 941 Hz; columns 1209, 1336, 1477, 1633 Hz; a
  digit is one row tone plus one column tone, at least 40 ms long;
- the dial, busy and congestion tones in Ukraine (as in most of Europe) are
  425 Hz: dial continuous, busy 0.35-0.5 s on and off, congestion
  0.2-0.25 s on and off; the ringing tone is 1 s on, 4 s off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

RATE = 8000
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
DIGITS = "".join(KEYS)
BLOCK = 205          # samples per DTMF analysis block (25.6 ms): the classic choice at 8 kHz
HOP = BLOCK // 2
DIAL_TONE = 425.0


def goertzel(samples: np.ndarray, freq: float, rate: int = RATE) -> float:
    """Power of `freq` in the block (|X(f)|^2, the generalised Goertzel: any frequency, not only a bin's)."""
    x = np.asarray(samples, dtype=np.float64)
    n = len(x)
    if n == 0:
        return 0.0
    # Correlating with a complex exponential gives the same |X(f)|^2 as the Goertzel
    # recursion and runs in numpy instead of a Python loop.
    w = np.exp(-2j * np.pi * freq / rate * np.arange(n))
    return float(abs(np.dot(x, w)) ** 2)


def relative_power(samples: np.ndarray, freq: float, rate: int = RATE) -> float:
    """The share (0..1) of the block's power that is at `freq`: 1 for a pure sine of that frequency."""
    x = np.asarray(samples, dtype=np.float64)
    energy = float(np.dot(x, x))
    if energy <= 0.0:
        return 0.0
    return goertzel(x, freq, rate) / (energy * len(x) / 2)


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB below a full-scale sine (-96 for silence)."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) == 0:
        return -96.0
    rms = math.sqrt(float(np.dot(x, x)) / len(x))
    return max(-96.0, 20 * math.log10(max(rms, 1e-9) / (32767 / math.sqrt(2))))


# -- generators ---------------------------------------------------------------------------


def tone(freqs: tuple[float, ...] | float, seconds: float, level: float = 0.3, rate: int = RATE) -> np.ndarray:
    """A sum of sines, each `level` of full scale, as int16."""
    if isinstance(freqs, (int, float)):
        freqs = (float(freqs),)
    t = np.arange(int(round(seconds * rate))) / rate
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs) if freqs else np.zeros(len(t))
    return np.asarray(np.round(x * level * 32767), dtype=np.int16)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)), dtype=np.int16)


def dtmf(digits: str, on: float = 0.08, off: float = 0.08, level: float = 0.25) -> np.ndarray:
    """DTMF for `digits` (0-9, *, #, A-D), each `on` seconds with `off` seconds of silence after it."""
    parts = []
    for d in digits.upper():
        if d not in DIGITS:
            raise ValueError(f"{d!r} is not a DTMF digit")
        i = DIGITS.index(d)
        parts += [tone((ROWS[i // 4], COLS[i % 4]), on, level), silence(off)]
    return np.concatenate(parts) if parts else silence(0)


def cadence(on: float, off: float, cycles: int, freq: float = DIAL_TONE, level: float = 0.3) -> np.ndarray:
    """A call-progress cadence: `cycles` times `on` seconds of `freq`, `off` seconds of silence."""
    return np.concatenate([np.concatenate([tone(freq, on, level), silence(off)]) for _ in range(cycles)])


# -- DTMF detection -----------------------------------------------------------------------


def block_digit(block: np.ndarray, min_dbfs: float = -40.0) -> str | None:
    """The DTMF digit in one block, or None.

    A digit needs: the block loud enough; one row and one column tone each
    clearly above the others of its group (6 dB); the two within 8 dB of
    each other (twist); and the pair carrying most of the block's power, so
    speech and the 425 Hz tones are not taken for digits."""
    x = np.asarray(block, dtype=np.float64)
    if level_dbfs(x) < min_dbfs:
        return None
    energy = float(np.dot(x, x)) * len(x) / 2
    rows = [goertzel(x, f) for f in ROWS]
    cols = [goertzel(x, f) for f in COLS]
    r, c = int(np.argmax(rows)), int(np.argmax(cols))
    rp, cp = rows[r], cols[c]
    if any(p * 4 > rp for i, p in enumerate(rows) if i != r) or any(p * 4 > cp for i, p in enumerate(cols) if i != c):
        return None
    if not (1 / 6.3 < rp / max(cp, 1e-9) < 6.3):
        return None
    if (rp + cp) < 0.6 * energy:
        return None
    return KEYS[r][c]


@dataclass
class DtmfDetector:
    """Digits from a stream: blocks overlap by half; a digit counts once it is seen in two blocks
    running (a tone of 40-51 ms, by where it falls), and again only after a block without it (the
    gap between key presses)."""

    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    last: str | None = None
    seen: int = 0
    reported: bool = False

    def feed(self, samples: np.ndarray) -> str:
        """The digits that started in these samples."""
        buf = np.concatenate([self.pending, np.asarray(samples, dtype=np.int16)])
        out = []
        i = 0
        while i + BLOCK <= len(buf):
            d = block_digit(buf[i:i + BLOCK])
            i += HOP
            if d is not None and d == self.last:
                self.seen += 1
                if self.seen >= 2 and not self.reported:
                    out.append(d)
                    self.reported = True
            else:
                self.last, self.seen, self.reported = d, 1 if d else 0, False
        self.pending = buf[i:]
        return "".join(out)


def detect_dtmf(samples: np.ndarray) -> str:
    """Every DTMF digit in a recording, in order."""
    return DtmfDetector().feed(samples)


# -- call-progress tones ------------------------------------------------------------------

FRAME = 160  # 20 ms


@dataclass
class CadenceDetector:
    """The 425 Hz busy or congestion cadence, and long silence, from 20 ms frames.

    A frame is "tone" when loud enough and most of its power is at 425 Hz.
    Busy: at least `cycles` on/off pairs whose on and off parts each last
    0.15 to 0.7 s and agree with each other within 30 %: this covers busy
    (0.35-0.5 s) and congestion (0.2-0.25 s); dial tone (continuous) and the
    ringing tone (1 s on, 4 s off) never match.  `silence_s` seconds with
    neither tone nor sound above `silence_dbfs` is silence (0: never)."""

    cycles: int = 3
    min_dbfs: float = -45.0
    silence_s: float = 0.0
    silence_dbfs: float = -55.0
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    state: bool = False
    run: int = 0                     # frames in the current state
    runs: list = field(default_factory=list)   # (tone?, frames) of finished runs
    quiet: int = 0
    busy: bool = False
    silent: bool = False

    def feed(self, samples: np.ndarray) -> str | None:
        """"busy", "silence", or None."""
        buf = np.concatenate([self.pending, np.asarray(samples, dtype=np.int16)])
        n = len(buf) // FRAME * FRAME
        self.pending = buf[n:]
        found = None
        for i in range(0, n, FRAME):
            frame = buf[i:i + FRAME]
            level = level_dbfs(frame)
            on = level >= self.min_dbfs and relative_power(frame, DIAL_TONE) > 0.6
            self.quiet = self.quiet + 1 if level < self.silence_dbfs else 0
            if self.silence_s and self.quiet * FRAME >= self.silence_s * RATE and not self.silent:
                self.silent = True
                found = found or "silence"
            if on == self.state:
                self.run += 1
                continue
            self.runs.append((self.state, self.run))
            self.runs = self.runs[-(2 * self.cycles + 2):]
            self.state, self.run = on, 1
            if not on and self._cadence() and not self.busy:
                self.busy = True
                found = "busy"
        return found

    def _cadence(self) -> bool:
        # The last finished runs, ending with a tone: off, on, off, on, ... , on.
        need = 2 * self.cycles - 1
        runs = self.runs[-need:]
        if len(runs) < need or not runs[-1][0]:
            return False
        ons = [n for t, n in runs if t]
        offs = [n for t, n in runs if not t]
        frames = [n * FRAME / RATE for n in ons + offs]
        if any(not 0.15 <= s <= 0.7 for s in frames):
            return False
        return max(ons) <= 1.3 * min(ons) + 1 and max(offs) <= 1.3 * min(offs) + 1


def detect_busy(samples: np.ndarray, cycles: int = 3) -> bool:
    """Whether a recording holds a busy or congestion cadence."""
    detector = CadenceDetector(cycles=cycles)
    detector.feed(samples)
    return detector.busy
