"""The line's audio through sounddevice (PortAudio on ALSA): 8 kHz, mono, 16-bit, 20 ms frames.

One thread owns the stream and the line's echo canceller.  For every frame
it reads from the line it takes the echo out (appliance/analog/echo.py),
hands the cleaned frame to `on_frame` (the caller ID, DTMF and cadence
detectors) and, with `rx_gain`, to `from_line` (the queue the user agent's
bridge port takes from); and it writes one frame to the line: a sound queued
with `play` (dialling, caller ID, the phone's tones, the line test), else
what the bridge port put in `to_line` with `tx_gain`, else silence.

    line ──read──> canceller ──> detectors (the line's own level)
                       ^    └──> rx_gain ──> from_line ──> the call
                       │ the reference: the frame written before this read
    line <──write── sound queued with `play` (no gain)
                    or to_line ──> tx_gain <── the call

The gains are for the call's voice only.  The line's own signalling (DTMF
dialled out, FSK caller ID, dial tone, the line test's tone) is generated at
the level it is specified at and goes out as it is; and the detectors see
what the line sent at the line's own level, so changing a gain changes
neither what the exchange hears of our signalling nor what we detect.

The stream is opened only while the line is in use (from the first ring, or
from going off-hook, until on-hook) and uses PortAudio's blocking read and
write, so a real adapter's clock sets the pace.  A device with no clock of
its own (ALSA's `file` plugin on `null`, as the tests use) returns at once;
then the thread keeps to real time itself: it never runs more than 60 ms
ahead of the monotonic clock.  On an adapter a blocking read is never that
far ahead, so this pacing never engages there.

The two queues are the jitter buffers between the adapter's clock and the
user agent's bridge clock: each is kept at most MAX_QUEUED frames long
(oldest dropped), and an empty one gives silence.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable

import numpy as np

from . import echo
from .tones import level_dbfs

log = logging.getLogger("appliance.analog")

RATE = 8000
FRAME = 160           # samples: 20 ms
AHEAD = 0.06          # seconds the thread may run ahead of real time on a clockless device
MAX_QUEUED = 8        # frames (160 ms) in either direction before the oldest are dropped


def gain_factor(db: float) -> float:
    return 10 ** (db / 20)


def amplify(frame: np.ndarray, factor: float) -> np.ndarray:
    """`frame` times `factor`, clipped to int16 (a loud peak saturates instead of wrapping to the other sign)."""
    if factor == 1.0:
        return frame
    return np.clip(np.rint(frame * np.float32(factor)), -32768, 32767).astype(np.int16)


class LineAudio:
    def __init__(self, device: str | int | None, on_frame: Callable[[np.ndarray], None] = lambda x: None, *,
                 rx_gain: float = 0.0, tx_gain: float = 0.0, echo_tail: int = 0):
        """`rx_gain`, `tx_gain`: dB from the line toward the call and from the call toward the line;
        `echo_tail`: ms of echo the canceller covers (0: no canceller)."""
        self.device = device
        self.on_frame = on_frame
        self.rx_gain, self.tx_gain, self.echo_tail = rx_gain, tx_gain, int(echo_tail)
        self._rx_factor, self._tx_factor = gain_factor(rx_gain), gain_factor(tx_gain)
        if self.echo_tail:
            echo.library()   # a missing libspeexdsp stops the line's process at its start, not at its first call
        # Called by the audio thread with (the frame read, the frame after the canceller): the line test's.
        self.tap: Callable[[np.ndarray, np.ndarray], None] | None = None
        self.from_line: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED)
        self.to_line: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED)
        self._sounds: collections.deque[np.ndarray] = collections.deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.opened = threading.Event()
        self.error = ""
        self.rx_dbfs = self.tx_dbfs = -96.0
        self.clean_dbfs = -96.0   # what was read, after the canceller
        self.echo_state = "off" if not self.echo_tail else "idle"   # or cancelling, double talk (echo.LineCanceller)
        self.frames = 0
        self.passing = False      # the bridge's audio goes to the line (off-hook in a call)

    @property
    def is_open(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def open(self) -> None:
        if self.is_open:
            return
        self._stop.clear()
        self.opened.clear()
        self.error = ""
        self.from_line.clear()
        self.to_line.clear()
        self._thread = threading.Thread(target=self._run, name="line-audio", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        t = self._thread
        if t is None:
            return
        self._stop.set()
        t.join(timeout)
        self._thread = None
        with self._lock:
            self._sounds.clear()
        self.passing = False

    def play(self, samples: np.ndarray) -> float:
        """Queue a sound for the line (it replaces the bridge's audio while it plays); its length in seconds."""
        with self._lock:
            self._sounds.append(np.asarray(samples, dtype=np.int16))
        return len(samples) / RATE

    def stop_sounds(self) -> None:
        """Drop the sounds queued with `play` (a tone that should end now)."""
        with self._lock:
            self._sounds.clear()

    def status(self) -> dict:
        """The audio's part of `pbx line status`: open or not, levels in dBFS, the gains and the canceller."""
        return {"open": self.is_open, "error": self.error,
                "rx_dbfs": round(self.rx_dbfs, 1), "rx_clean_dbfs": round(self.clean_dbfs, 1),
                "tx_dbfs": round(self.tx_dbfs, 1), "rx_gain_db": self.rx_gain, "tx_gain_db": self.tx_gain,
                "echo_tail_ms": self.echo_tail, "echo_state": self.echo_state}

    @property
    def playing(self) -> bool:
        with self._lock:
            return bool(self._sounds)

    def _next_out(self) -> np.ndarray:
        with self._lock:
            if self._sounds:
                s = self._sounds[0]
                out, rest = s[:FRAME], s[FRAME:]
                if len(rest):
                    self._sounds[0] = rest
                else:
                    self._sounds.popleft()
                if len(out) < FRAME:
                    out = np.concatenate([out, np.zeros(FRAME - len(out), dtype=np.int16)])
                return out
        if self.passing and self.to_line:
            return amplify(np.frombuffer(self.to_line.popleft(), dtype=np.int16), self._tx_factor)
        return np.zeros(FRAME, dtype=np.int16)

    def _run(self) -> None:
        import sounddevice as sd

        try:
            stream = sd.Stream(device=self.device, samplerate=RATE, channels=1, dtype="int16",
                               blocksize=FRAME, latency="low")
            stream.start()
        except Exception as e:  # noqa: BLE001 - PortAudio's errors are plain exceptions
            self.error = f"cannot open the line's audio device {self.device!r}: {e}"
            log.error("%s", self.error)
            self.opened.set()
            return
        self.opened.set()
        canceller = None
        try:
            tail = self.echo_tail * RATE // 1000
            # A new canceller at every opening: each call may reach the line through another echo path.
            canceller = echo.LineCanceller(FRAME, tail, RATE) if tail else None
            played = np.zeros(FRAME, dtype=np.int16)   # the reference: the frame written before this read
            t0, n = time.monotonic(), 0
            while not self._stop.is_set():
                data, _overflow = stream.read(FRAME)
                raw = np.ascontiguousarray(data[:, 0])
                # The detectors get the frame after the canceller too: during a call the echo of the far
                # end's voice would mask the exchange's busy tone and the silence that end it.  Before a
                # call nothing is played and the canceller passes the frame as read (echo.LineCanceller).
                frame = canceller.process(raw, played) if canceller is not None else raw
                if canceller is not None:
                    self.echo_state = canceller.state
                self.rx_dbfs = level_dbfs(raw)
                self.clean_dbfs = level_dbfs(frame)
                self.from_line.append(amplify(frame, self._rx_factor).tobytes())
                try:
                    tap = self.tap
                    if tap is not None:
                        tap(raw, frame)
                    self.on_frame(frame)
                except Exception:  # noqa: BLE001 - a detector's bug must not stop the line's audio
                    log.exception("line audio: a detector failed")
                out = self._next_out()
                self.tx_dbfs = level_dbfs(out)
                stream.write(out.reshape(-1, 1))
                played = out
                n += 1
                self.frames += 1
                ahead = t0 + n * FRAME / RATE - time.monotonic()
                if ahead > AHEAD:
                    time.sleep(ahead)
                elif ahead < -0.5:
                    t0, n = time.monotonic(), 0   # the adapter's clock is slower: follow it
        except Exception as e:  # noqa: BLE001
            self.error = f"the line's audio stopped: {e}"
            log.error("%s", self.error)
        finally:
            if canceller is not None:
                canceller.close()
                self.echo_state = "idle"
            try:
                stream.stop()
                stream.close()
            except Exception:  # noqa: BLE001
                pass
