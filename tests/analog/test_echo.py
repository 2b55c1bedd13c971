"""The line's gains and echo canceller, through `LineAudio` on the real sounddevice and ALSA's `file` plugin.

The capture file is what the line "sends": the test writes it as the echo of what LineAudio will play
(the sound queued before the stream opens goes out from the first frame written, so the echo's place
in the capture is known to the sample) and, where a test needs it, a near-end tone.  Every frame
LineAudio hands to the call is collected by its own `on_frame`, which the audio thread calls right
after queueing the frame in `from_line`, so none is dropped whatever the machine's load.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from appliance.analog import callerid as cid
from appliance.analog import tones
from appliance.analog.audio import FRAME, RATE, LineAudio
from appliance.analog.bench import file_device
from appliance.analog.echo import EchoCanceller, LineCanceller

pytestmark = [pytest.mark.slow]

DELAY = 0.04          # s from a sample played to its echo in the capture
ECHO = 10 ** (-10 / 20)   # the echo's amplitude: -10 dB, a common hybrid's (the canceller's double-talk
                          # guard takes anything within 6 dB of what was played for the near end talking)
NEAR_HZ = 600.0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("echo")
    before = os.environ.get("ALSA_CONFIG_PATH")
    file_device(folder)
    yield {"capture": folder / "capture.raw", "play": folder / "play.raw"}
    if before is None:
        os.environ.pop("ALSA_CONFIG_PATH", None)
    else:
        os.environ["ALSA_CONFIG_PATH"] = before


def noise(seconds: float, rms: float = 0.1, seed: int = 7) -> np.ndarray:
    """Broadband (white) noise, `rms` of full scale: a reference the canceller can learn the whole path from."""
    x = np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * rms * 32767
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def echo_of(played: np.ndarray, seconds: float) -> np.ndarray:
    """The hybrid's echo of `played` as the line's capture holds it: delayed by DELAY, ECHO of its amplitude."""
    d = int(DELAY * RATE)
    y = np.zeros(int(seconds * RATE))
    y[d:d + len(played)] = ECHO * played[:len(y) - d]
    return y


def as_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def run_line(files: dict, capture: np.ndarray, seconds: float, *, play: np.ndarray | None = None,
             feed: list[np.ndarray] | None = None, **settings) -> tuple[np.ndarray, np.ndarray]:
    """Open a LineAudio on the capture, `play` queued before it opens and `feed` as the call's audio (one frame
    into `to_line` as each frame is read); wait for `seconds` of frames.  What went to the call (`from_line`)
    and what the detectors saw (`on_frame`)."""
    np.concatenate([capture, tones.silence(2)]).astype("<i2").tofile(files["capture"])
    files["play"].unlink(missing_ok=True)
    want = int(seconds * RATE) // FRAME
    to_call: list[np.ndarray] = []
    detected: list[np.ndarray] = []
    done = threading.Event()

    def on_frame(frame: np.ndarray) -> None:      # the audio thread, once for each frame read
        detected.append(frame.copy())
        while audio.from_line:
            to_call.append(np.frombuffer(audio.from_line.popleft(), dtype=np.int16))
        if feed is not None and len(detected) <= len(feed):
            audio.to_line.append(feed[len(detected) - 1].tobytes())
        if len(to_call) >= want:
            done.set()

    audio = LineAudio("line", on_frame, **settings)
    if play is not None:
        audio.play(play)
    audio.passing = feed is not None
    audio.open()
    try:
        assert done.wait(seconds + 30), f"only {len(to_call)} of {want} frames in time; error: {audio.error!r}"
        assert not audio.error
    finally:
        audio.close()
    return np.concatenate(to_call)[:want * FRAME], np.concatenate(detected)[:want * FRAME]


def level(x: np.ndarray) -> float:
    return tones.level_dbfs(x)


def amplitude_at(x: np.ndarray, freq: float) -> float:
    """The amplitude of the `freq` component (a Goertzel over the whole block)."""
    return 2 * np.sqrt(tones.goertzel(x, freq)) / len(x)


def window(x: np.ndarray, start: float, end: float) -> np.ndarray:
    return x[int(start * RATE):int(end * RATE)]


# The scene of the echo tests: 6 s of noise played from the first frame; its echo in the capture; from
# 5 s on, a near-end tone on top (someone on the line talking over the far end).
PLAYED = noise(6.0)
NEAR = np.concatenate([tones.silence(5.0), tones.tone(NEAR_HZ, 1.0, 0.1)])
CAPTURE = as_int16(echo_of(PLAYED, 6.0) + NEAR)


def test_the_canceller_takes_the_echo_out_and_leaves_the_near_end(files):
    to_call, detected = run_line(files, CAPTURE, 6.0, play=PLAYED, echo_tail=64)
    echo_only = (4.0, 5.0)                    # the last second of echo alone, after 4 s to converge
    erle = level(window(CAPTURE, *echo_only)) - level(window(to_call, *echo_only))
    assert erle >= 15, f"the echo is only {erle:.1f} dB lower"
    near = (5.0, 6.0)
    kept = amplitude_at(window(to_call, *near), NEAR_HZ) / amplitude_at(window(NEAR, *near), NEAR_HZ)
    assert abs(20 * np.log10(kept)) < 3, f"the near-end tone came out at {20 * np.log10(kept):+.1f} dB"
    assert np.array_equal(to_call, detected)   # the detectors see the cleaned frames too (no gain here)


def test_with_echo_tail_0_nothing_is_removed(files):
    to_call, detected = run_line(files, CAPTURE, 6.0, play=PLAYED, echo_tail=0)
    assert np.array_equal(to_call, CAPTURE[:len(to_call)])
    assert np.array_equal(detected, to_call)


def test_before_anything_is_played_the_line_passes_untouched_and_caller_id_decodes(files):
    burst = cid.fsk_burst(cid.mdmf_message("0671234567", "Petrenko", "12011030"), "v23")
    capture = np.concatenate([tones.silence(0.3), burst, tones.silence(0.5)])
    seconds = len(capture) // FRAME * FRAME / RATE
    to_call, detected = run_line(files, capture, seconds, echo_tail=128)
    assert np.array_equal(detected, capture[:len(detected)])   # speexdsp would have altered it (its DC notch)
    assert np.array_equal(to_call, detected)
    assert cid.decode(detected).number == "0671234567"


def test_the_call_audio_goes_out_with_tx_gain_and_is_the_reference(files):
    far = noise(5.0, rms=0.2, seed=11)
    frames = [far[i:i + FRAME] for i in range(0, len(far), FRAME)]
    # The bridge's frame queued while frame n is read goes out right after it: it is played as frame n.
    sent = as_int16(far * 10 ** (-6 / 20))
    capture = as_int16(echo_of(sent, 5.0))
    to_call, _ = run_line(files, capture, 5.0, feed=frames, tx_gain=-6.0, echo_tail=64)
    # The file plugin does not keep the last frames written before the stream stops: the first 4.5 s.
    out, sent = np.fromfile(files["play"], dtype="<i2")[:int(4.5 * RATE)], sent[:int(4.5 * RATE)]
    assert np.abs(out.astype(int) - sent).max() <= 1        # -6 dB: half the amplitude, to the rounding
    erle = level(window(capture, 4.0, 5.0)) - level(window(to_call, 4.0, 5.0))
    assert erle >= 15, f"the echo of the gained audio is only {erle:.1f} dB lower"


def test_a_sound_the_line_plays_itself_is_not_gained(files):
    digits = tones.dtmf("123", on=0.08, off=0.08)
    run_line(files, tones.silence(1.0), 1.0, play=digits, tx_gain=-10.0, echo_tail=0)
    out = np.fromfile(files["play"], dtype="<i2")
    assert np.array_equal(out[:len(digits)], digits)
    assert tones.detect_dtmf(out) == "123"


def test_rx_gain_of_6_db_doubles_the_amplitude(files):
    capture = tones.tone(1000, 1.0, 0.2)
    to_call, detected = run_line(files, capture, 1.0, rx_gain=6.0, echo_tail=0)
    ratio = np.sqrt(np.mean(to_call.astype(float) ** 2) / np.mean(capture.astype(float) ** 2))
    assert ratio == pytest.approx(2.0, rel=0.01)
    assert np.array_equal(detected, capture)   # the detectors see the line's own level


def test_rx_gain_saturates_instead_of_wrapping(files):
    capture = tones.tone(300, 1.0, 0.8)
    to_call, _ = run_line(files, capture, 1.0, rx_gain=6.0, echo_tail=0)
    assert to_call.max() == 32767 and to_call.min() == -32768
    assert np.array_equal(np.sign(to_call), np.sign(capture))   # a wrapped sample would change sign
    small = np.abs(capture) < 16000
    assert np.allclose(to_call[small], capture[small] * 10 ** (6 / 20), atol=1)


def test_the_canceller_class_checks_its_frames_and_closes_once():
    with EchoCanceller(FRAME, 512) as ec:
        x = noise(0.02)
        assert len(ec.cancel(x, x)) == FRAME
        ec.reset()
        with pytest.raises(ValueError, match="frames of 160 samples"):
            ec.cancel(x[:80], x[:80])
    assert ec.closed
    ec.close()                                   # a second close is harmless
    with pytest.raises(RuntimeError, match="closed"):
        ec.cancel(x, x)


def cancel(captured: np.ndarray, played: np.ndarray, tail: int = 512) -> tuple[np.ndarray, list[str]]:
    """A LineCanceller fed as the audio thread feeds it (the frame played before each frame read); the output
    and its state at each frame."""
    lc, out, states = LineCanceller(FRAME, tail), [], []
    before = np.zeros(FRAME, dtype=np.int16)
    try:
        for i in range(0, len(captured) - FRAME + 1, FRAME):
            out.append(lc.process(captured[i:i + FRAME], before))
            states.append(lc.state)
            before = played[i:i + FRAME]
    finally:
        lc.close()
    return np.concatenate(out), states


def test_a_tone_from_the_line_survives_a_tone_played_to_it():
    # The line sends 1 kHz (no echo at all) while 600 Hz is played: speexdsp alone fits the near end's tone
    # from the played one and takes it out; the double-talk guard passes it whole.
    captured = np.concatenate([tones.silence(1.0), tones.tone(1000, 4.0, 0.3)])
    played = np.concatenate([tones.silence(1.5), tones.tone(600, 3.5, 0.38)])
    out, states = cancel(captured, played)
    late = window(out, 2.0, 5.0)
    assert tones.relative_power(late, 1000) > 0.99
    assert abs(level(late) - level(window(captured, 2.0, 5.0))) < 0.5
    assert states[-1] == "double talk" and states[0] == "idle"


def test_a_loud_near_end_passes_as_read_and_the_canceller_comes_back_after_it():
    played = noise(6.0)
    near = np.concatenate([tones.silence(4.0), tones.tone(NEAR_HZ, 0.5, 0.5), tones.silence(1.5)])
    captured = as_int16(echo_of(played, 6.0) + near)
    out, states = cancel(captured, played)
    talk = slice(int(4.0 * RATE) // FRAME + 1, int(4.5 * RATE) // FRAME)
    assert set(states[talk]) == {"double talk"}
    assert np.array_equal(window(out, 4.02, 4.5), window(captured, 4.02, 4.5))
    assert states[-1] == "cancelling"
    assert level(window(captured, 5.5, 6.0)) - level(window(out, 5.5, 6.0)) >= 15


def test_a_missing_libspeexdsp_is_named_when_the_line_starts(monkeypatch):
    from appliance.analog import echo

    monkeypatch.setattr(echo.ctypes.util, "find_library", lambda name: None)
    echo.library.cache_clear()
    try:
        with pytest.raises(echo.EchoUnavailable, match=r"libspeexdsp.*echo_tail to 0"):
            LineAudio("line", echo_tail=64)
        LineAudio("line", echo_tail=0)            # no canceller, no library needed
    finally:
        echo.library.cache_clear()               # loaded again, for real, by the next test that needs it
