"""The line's echo canceller: speexdsp's MDF canceller (the one pjmedia uses by default), through ctypes.

An analog line reaches the adapter through a hybrid (2 wires to 4), and no
hybrid matches the line's impedance exactly: part of what the adapter plays
comes back in what it captures, a few milliseconds later and some dB lower.
The caller on the IP side hears it as their own voice.  pjmedia's echo
canceller attaches to a sound device port, and the line is a Python port
(docs/analog.md), so the line's audio thread calls speexdsp itself: each
frame captured from the line, with the frame played to the line as the
reference, gives the frame with the echo taken out.

ctypes releases the GIL for the length of each C call, so the canceller's
work does not hold up the line's user agent thread.

`EchoCanceller` owns one speexdsp state from `__init__` to `close()` (a
context manager too).  Nothing is freed in `__del__`: the audio thread that
creates the state closes it when the stream closes.

`LineCanceller` decides, frame by frame, whether the canceller's output or
the frame as read goes on:
- nothing played within the tail: there is no echo to take out, and
  speexdsp would still alter the frame (its DC notch and pre-emphasis), so
  the frame passes exactly as read.  Before a call is answered the line
  plays nothing, so the FSK caller ID between the rings reaches its decoder
  untouched;
- the frame is louder than an echo of what was played can be (a Geigel
  double-talk detector: ITU-T G.168 assumes a hybrid returns at least 6 dB
  less than it is sent): someone on the line is talking over the far end,
  and the frame passes as read, for HANGOVER frames after the last such one.
  speexdsp keeps adapting during double talk (it has no way to pause), and
  with tonal signals on both sides (a tone played while the line sends
  another) it can fit the near end's tone and take it out; this guard keeps
  the near end whole then.  Its echo, at least 6 dB under the near end's
  peak, goes through unremoved while it lasts.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import functools

import numpy as np

DOUBLE_TALK = 10 ** (-6 / 20)   # the loudest an echo can be, relative to the peak played within the tail
HANGOVER = 3                     # frames (60 ms) a double talk lasts after the last frame that showed it

# From speex/speex_echo.h (speexdsp 1.2): the speex_echo_ctl() request used here.
SPEEX_ECHO_SET_SAMPLING_RATE = 24


class EchoUnavailable(RuntimeError):
    """libspeexdsp is not installed: the canceller cannot run (set echo_tail to 0, or install it)."""


@functools.cache
def library() -> ctypes.CDLL:
    """libspeexdsp, loaded once; EchoUnavailable with what to install when it is missing."""
    name = ctypes.util.find_library("speexdsp")
    if name is None:
        raise EchoUnavailable("the echo canceller needs libspeexdsp (Debian: apt install libspeexdsp1; "
                              "scripts/setup installs it); or set the line's echo_tail to 0")
    try:
        lib = ctypes.CDLL(name)
    except OSError as e:
        raise EchoUnavailable(f"cannot load {name} for the echo canceller: {e}") from None
    samples = ctypes.POINTER(ctypes.c_int16)
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_state_init.restype = ctypes.c_void_p
    lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
    lib.speex_echo_state_destroy.restype = None
    lib.speex_echo_state_reset.argtypes = [ctypes.c_void_p]
    lib.speex_echo_state_reset.restype = None
    lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_echo_ctl.restype = ctypes.c_int
    lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p, samples, samples, samples]
    lib.speex_echo_cancellation.restype = None
    return lib


class EchoCanceller:
    """One echo path's canceller: `frame` samples a call of `cancel`, a filter `tail` samples long."""

    def __init__(self, frame: int, tail: int, rate: int = 8000):
        if frame <= 0 or tail <= 0:
            raise ValueError(f"the echo canceller needs a frame and a tail of at least one sample ({frame}, {tail})")
        self._lib = library()
        self.frame, self.tail, self.rate = frame, tail, rate
        self._st = self._lib.speex_echo_state_init(frame, tail)
        if not self._st:
            raise MemoryError("speex_echo_state_init returned no state")
        value = ctypes.c_int(rate)
        self._lib.speex_echo_ctl(self._st, SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.byref(value))

    @property
    def closed(self) -> bool:
        return self._st is None

    def cancel(self, captured: np.ndarray, played: np.ndarray) -> np.ndarray:
        """`captured` with the echo of `played` (and of the frames played before it) taken out; a new array."""
        if self._st is None:
            raise RuntimeError("the echo canceller is closed")
        rec = np.ascontiguousarray(captured, dtype=np.int16)
        play = np.ascontiguousarray(played, dtype=np.int16)
        if len(rec) != self.frame or len(play) != self.frame:
            raise ValueError(f"the echo canceller takes frames of {self.frame} samples ({len(rec)}, {len(play)})")
        out = np.empty(self.frame, dtype=np.int16)
        p = ctypes.POINTER(ctypes.c_int16)
        self._lib.speex_echo_cancellation(self._st, rec.ctypes.data_as(p), play.ctypes.data_as(p),
                                          out.ctypes.data_as(p))
        return out

    def reset(self) -> None:
        """Forget the echo path learnt so far (a new call may reach the line through another one)."""
        if self._st is not None:
            self._lib.speex_echo_state_reset(self._st)

    def close(self) -> None:
        if self._st is not None:
            self._lib.speex_echo_state_destroy(self._st)
            self._st = None

    def __enter__(self) -> "EchoCanceller":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LineCanceller:
    """The line's echo canceller as the audio thread uses it: `process(captured, played)` once a frame, where
    `played` is the frame written to the line just before `captured` was read.  `tail` in samples."""

    def __init__(self, frame: int, tail: int, rate: int = 8000):
        self.canceller = EchoCanceller(frame, tail, rate)
        # The peaks of the frames played within the canceller's reach: its filter, the frame its FFT block
        # overlaps with, and a margin.  All zero: the canceller's reference history is silence.
        reach = -(-tail // frame) + 3
        self._peaks: collections.deque[int] = collections.deque([0] * reach, maxlen=reach)
        self._hold = 0
        self.state = "idle"     # idle (nothing played), cancelling, double talk

    def process(self, captured: np.ndarray, played: np.ndarray) -> np.ndarray:
        self._peaks.append(_peak(played))
        far = max(self._peaks)
        if far == 0:
            # The canceller is not called: its history is silent, so when something is played again it
            # takes up where it left off, as if it had been fed silence all along.
            self.state, self._hold = "idle", 0
            return captured
        out = self.canceller.cancel(captured, played)
        if _peak(captured) > DOUBLE_TALK * far:
            self._hold = HANGOVER
            self.state = "double talk"
            return captured
        if self._hold:
            self._hold -= 1
            self.state = "double talk"
            return captured
        self.state = "cancelling"
        return out

    def close(self) -> None:
        self.canceller.close()


def _peak(frame: np.ndarray) -> int:
    return int(np.max(np.abs(frame.astype(np.int32)))) if len(frame) else 0
