"""The line's audio through sounddevice (PortAudio on ALSA): 8 kHz, mono, 16-bit, 20 ms frames.

One thread owns the stream.  For every frame it reads from the line it hands
the frame to `on_frame` (the caller ID, DTMF and cadence detectors) and to
`from_line` (the queue the user agent's bridge port takes from), and it
writes one frame to the line: a sound queued with `play` (dialling, the line
test), else what the bridge port put in `to_line`, else silence.

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

from .tones import level_dbfs

log = logging.getLogger("appliance.analog")

RATE = 8000
FRAME = 160           # samples: 20 ms
AHEAD = 0.06          # seconds the thread may run ahead of real time on a clockless device
MAX_QUEUED = 8        # frames (160 ms) in either direction before the oldest are dropped


class LineAudio:
    def __init__(self, device: str | int | None, on_frame: Callable[[np.ndarray], None] = lambda x: None):
        self.device = device
        self.on_frame = on_frame
        self.from_line: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED)
        self.to_line: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED)
        self._sounds: collections.deque[np.ndarray] = collections.deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.opened = threading.Event()
        self.error = ""
        self.rx_dbfs = self.tx_dbfs = -96.0
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
            return np.frombuffer(self.to_line.popleft(), dtype=np.int16)
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
        t0, n = time.monotonic(), 0
        try:
            while not self._stop.is_set():
                data, _overflow = stream.read(FRAME)
                frame = np.ascontiguousarray(data[:, 0])
                self.rx_dbfs = level_dbfs(frame)
                self.from_line.append(frame.tobytes())
                try:
                    self.on_frame(frame)
                except Exception:  # noqa: BLE001 - a detector's bug must not stop the line's audio
                    log.exception("line audio: a detector failed")
                out = self._next_out()
                self.tx_dbfs = level_dbfs(out)
                stream.write(out.reshape(-1, 1))
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
            try:
                stream.stop()
                stream.close()
            except Exception:  # noqa: BLE001
                pass
