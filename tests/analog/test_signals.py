"""The analog line's signal processing on generated signals: FSK and DTMF caller ID, DTMF digits, the 425 Hz cadences."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.analog import callerid as cid
from appliance.analog import tones


def noisy(x: np.ndarray, sigma: float, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(x + rng.normal(0, sigma, len(x)), -32768, 32767).astype(np.int16)


def framed(x: np.ndarray) -> np.ndarray:
    return np.concatenate([tones.silence(0.4), x, tones.silence(0.4)])


@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_mdmf_number_name_and_time(standard):
    burst = cid.fsk_burst(cid.mdmf_message("0671234567", "Petrenko O.", "12011030"), standard)
    got = cid.decode(noisy(framed(burst), 900))
    assert got == cid.CallerId("0671234567", "Petrenko O.", "12011030", "number", "fsk")


@pytest.mark.parametrize("standard", ["bell202", "v23"])
def test_sdmf_number(standard):
    got = cid.decode(framed(cid.fsk_burst(cid.sdmf_message("0441112233", "03151200"), standard)))
    assert (got.number, got.when, got.status) == ("0441112233", "03151200", "number")


@pytest.mark.parametrize("absent,status", [("P", "private"), ("O", "unavailable")])
def test_withheld_and_unavailable(absent, status):
    assert cid.decode(framed(cid.fsk_burst(cid.mdmf_message(absent=absent)))).status == status
    assert cid.decode(framed(cid.fsk_burst(cid.sdmf_message(absent)))).status == status


def test_short_seizure_and_marks_as_etsi_allows():
    bits = cid.fsk_bits(cid.mdmf_message("380501112233"), seizure=96, marks=55)
    assert cid.decode(framed(cid.fsk_modulate(bits, "v23"))).number == "380501112233"


def test_checksum_makes_the_sum_zero():
    msg = cid.mdmf_message("0671234567", "A")
    assert sum(msg) % 256 == 0
    assert cid.parse_message(msg[:-1] + bytes([(msg[-1] + 1) % 256])) is None


def test_a_corrupted_burst_is_an_unknown_caller():
    burst = cid.fsk_burst(cid.mdmf_message("0671234567")).copy()
    burst[len(burst) - 500:len(burst) - 420] = 0          # a dropout inside the number
    assert cid.decode(framed(burst)) == cid.UNKNOWN
    flipped = cid.fsk_modulate([1 - b if i == 520 else b for i, b in enumerate(cid.fsk_bits(cid.sdmf_message("0441112233")))])
    assert cid.decode(framed(flipped)) == cid.UNKNOWN


@pytest.mark.parametrize("seed", range(5))
def test_noise_and_truncation_never_raise(seed):
    rng = np.random.default_rng(seed)
    burst = cid.fsk_burst(cid.mdmf_message("0671234567", "Name"))
    for x in (rng.normal(0, 5000, 8000).astype(np.int16), burst[: rng.integers(1, len(burst))],
              tones.silence(0.001), tones.silence(0)):
        assert cid.decode(x).status in ("unknown", "number", "private", "unavailable")


def test_dtmf_caller_id():
    assert cid.decode(framed(cid.dtmf_callerid("0501234567"))) == cid.CallerId("0501234567", "", "", "number", "dtmf")
    assert cid.decode(framed(cid.dtmf_callerid(absent="1"))).status == "private"
    assert cid.decode(framed(cid.dtmf_callerid(absent="3"))).status == "unavailable"
    assert cid.decode(framed(tones.dtmf("A0501"))) == cid.UNKNOWN     # no end code: unknown


def test_dtmf_digits_in_noise_and_in_chunks():
    signal = noisy(framed(tones.dtmf("0123456789*#ABCD", on=0.05, off=0.05)), 300)
    detector = tones.DtmfDetector()
    got = "".join(detector.feed(signal[i:i + 160]) for i in range(0, len(signal), 160))
    assert got == "0123456789*#ABCD"
    assert tones.detect_dtmf(tones.dtmf("55")) == "55"         # the same key twice, with a gap


def test_no_digits_in_tones_and_speech_like_noise():
    assert tones.detect_dtmf(tones.tone(425, 2)) == ""
    assert tones.detect_dtmf(tones.tone((440, 480), 2)) == ""
    assert tones.detect_dtmf(noisy(tones.silence(2), 4000)) == ""
    assert tones.detect_dtmf(tones.dtmf("1", on=0.02)) == ""   # shorter than 40 ms


@pytest.mark.parametrize("on,off", [(0.35, 0.35), (0.5, 0.5), (0.25, 0.25), (0.2, 0.2)])
def test_busy_and_congestion(on, off):
    assert tones.detect_busy(np.concatenate([tones.silence(1), noisy(tones.cadence(on, off, 4), 200)]))


@pytest.mark.parametrize("signal", [tones.tone(425, 5), tones.cadence(1, 4, 2), tones.cadence(0.35, 0.35, 1),
                                    tones.cadence(0.35, 0.35, 4, freq=1000)])
def test_not_busy(signal):
    assert not tones.detect_busy(signal)


def test_long_silence():
    d = tones.CadenceDetector(silence_s=2)
    assert d.feed(tones.tone(600, 1)) is None
    assert d.feed(tones.silence(1.9)) is None
    assert d.feed(tones.silence(0.2)) == "silence"


def test_goertzel_picks_the_frequency():
    x = tones.tone((697, 1209), 0.1)
    assert tones.relative_power(x, 697) > 0.4
    assert tones.relative_power(x, 941) < 0.01
