"""Caller ID on an analog line: the FSK burst (Bell 202, V.23) and DTMF caller ID, both ways.

Pure functions over 16-bit samples at 8 kHz; no I/O.  A burst that does not
decode, or whose checksum is wrong, gives `CallerId(status="unknown")`, never
an exception: the call still rings, from an unknown caller.

The facts of the formats (ETSI EN 300 659-1/-3, Bellcore GR-30-CORE):
- FSK at 1200 baud: Bell 202 sends 1 (mark) as 1200 Hz and 0 (space) as
  2200 Hz; ITU-T V.23 (ETSI) 1300 Hz and 2100 Hz.  First a channel seizure
  of alternating 0 and 1 (300 bits in Bellcore, 96-315 in ETSI), then marks
  (180 bits; ETSI 80 +- 25), then the message bytes, each as a start bit (0),
  eight data bits least significant first and a stop bit (1); marks may be
  sent between bytes.
- A message: its type, its length, that many bytes, and a checksum that
  makes the sum of all bytes 0 modulo 256.  SDMF (type 0x04): 8 ASCII
  characters MMDDHHMM, then the number (or "O": unavailable, "P": private).
  MDMF (type 0x80, call set-up): parameters of type, length, value: 0x01
  date and time (MMDDHHMM), 0x02 calling number, 0x04 reason the number is
  absent ("O", "P"), 0x07 caller's name, 0x08 reason the name is absent.
- DTMF caller ID (ETSI EN 300 659-1 annex, used where FSK is not): "A",
  the number, "C"; "D" then a code and "C" says why there is no number
  ("1": private, else unavailable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .tones import RATE, detect_dtmf, dtmf as dtmf_tones

BAUD = 1200
STANDARDS = {"bell202": (1200.0, 2200.0), "v23": (1300.0, 2100.0)}   # (mark, space)
SDMF, MDMF = 0x04, 0x80
P_DATETIME, P_NUMBER, P_NO_NUMBER, P_NAME, P_NO_NAME = 0x01, 0x02, 0x04, 0x07, 0x08


@dataclass(frozen=True)
class CallerId:
    """What the line said about the caller.  status: "number" (number known), "private"
    (withheld), "unavailable" (the network does not know), "unknown" (nothing decoded)."""

    number: str = ""
    name: str = ""
    when: str = ""         # MMDDHHMM as sent
    status: str = "unknown"
    source: str = ""       # "fsk", "dtmf" or ""

    @property
    def known(self) -> bool:
        return self.status == "number"


UNKNOWN = CallerId()


# -- messages ----------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    return (-sum(data)) & 0xFF


def sdmf_message(number: str, when: str = "01010000") -> bytes:
    """An SDMF message: date and time, then the number ("O"/"P" for none)."""
    body = when.encode("ascii") + number.encode("ascii")
    head = bytes([SDMF, len(body)]) + body
    return head + bytes([checksum(head)])


def mdmf_message(number: str = "", name: str = "", when: str = "", absent: str = "") -> bytes:
    """An MDMF call set-up message with the parameters given; `absent` ("O"/"P") instead of a number."""
    params = b""
    for ptype, value in ((P_DATETIME, when), (P_NUMBER, number), (P_NO_NUMBER, absent), (P_NAME, name)):
        if value:
            raw = value.encode("latin-1")
            params += bytes([ptype, len(raw)]) + raw
    head = bytes([MDMF, len(params)]) + params
    return head + bytes([checksum(head)])


def parse_message(data: bytes) -> CallerId | None:
    """The caller in a complete message (type, length, body, checksum), or None when it is not one."""
    if len(data) < 3 or len(data) < data[1] + 3:
        return None
    mtype, length = data[0], data[1]
    whole = data[:length + 3]
    if sum(whole) & 0xFF:
        return None
    body = whole[2:2 + length]
    if mtype == SDMF:
        if length < 8:
            return None
        when, rest = body[:8].decode("latin-1"), body[8:].decode("latin-1")
        return _caller(rest, "", when, rest if rest in ("O", "P") else "")
    if mtype in (MDMF, 0x82):
        fields: dict[int, str] = {}
        i = 0
        while i + 2 <= len(body):
            ptype, plen = body[i], body[i + 1]
            if i + 2 + plen > len(body):
                return None
            fields[ptype] = body[i + 2:i + 2 + plen].decode("latin-1")
            i += 2 + plen
        return _caller(fields.get(P_NUMBER, ""), fields.get(P_NAME, ""), fields.get(P_DATETIME, ""),
                       fields.get(P_NO_NUMBER, ""))
    return None


def _caller(number: str, name: str, when: str, absent: str) -> CallerId:
    digits = "".join(ch for ch in number if ch.isdigit() or ch == "+")
    if digits and absent not in ("O", "P"):
        return CallerId(digits, name.strip(), when, "number", "fsk")
    return CallerId("", name.strip(), when, "private" if absent == "P" else "unavailable", "fsk")


# -- FSK ---------------------------------------------------------------------------------


def fsk_bits(message: bytes, seizure: int = 300, marks: int = 180) -> list[int]:
    """The bits of a caller ID burst: channel seizure, marks, then each byte framed (start, 8 LSB first, stop)."""
    bits = [i % 2 for i in range(seizure)] + [1] * marks
    for byte in message:
        bits += [0, *((byte >> k) & 1 for k in range(8)), 1]
    return bits + [1] * 4


def fsk_modulate(bits: Iterable[int], standard: str = "bell202", level: float = 0.3,
                 rate: int = RATE) -> np.ndarray:
    """Phase-continuous FSK at 1200 baud."""
    mark, space = STANDARDS[standard]
    bits = list(bits)
    n = int(round(len(bits) * rate / BAUD))
    which = np.array(bits)[np.minimum((np.arange(n) * BAUD) // rate, len(bits) - 1)]
    freq = np.where(which == 1, mark, space)
    phase = 2 * np.pi * np.cumsum(freq) / rate
    return np.asarray(np.round(np.sin(phase) * level * 32767), dtype=np.int16)


def fsk_burst(message: bytes, standard: str = "bell202", level: float = 0.3) -> np.ndarray:
    return fsk_modulate(fsk_bits(message), standard, level)


def _discriminate(x: np.ndarray, standard: str, rate: int) -> np.ndarray:
    """Per sample: >0 where the last bit's worth of signal is nearer mark than space."""
    mark, space = STANDARDS[standard]
    width = int(round(rate / BAUD))
    n = np.arange(len(x))
    window = np.ones(width)
    out = []
    for f in (mark, space):
        z = x * np.exp(-2j * np.pi * f * n / rate)
        out.append(np.abs(np.convolve(z, window)[:len(x)]) ** 2)
    return out[0] - out[1]


def fsk_bytes(samples: np.ndarray, standard: str = "bell202", rate: int = RATE) -> list[bytes]:
    """The byte runs in the signal: each run is the bytes after a stretch of at least 10 mark bits,
    framed start/stop bits checked, until the framing breaks."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) < rate // 10:
        return []
    spb = rate / BAUD
    d = _discriminate(x, standard, rate)
    loud = np.abs(d) > (np.max(np.abs(d)) * 0.05 if len(d) else 0)
    mark = (d > 0) & loud
    runs: list[bytes] = []
    i, n = 0, len(d)
    need = int(10 * spb)
    while i < n:
        # A stretch of marks (the preamble after the seizure, or between messages).
        j = i
        while j < n and not mark[j]:
            j += 1
        k = j
        while k < n and mark[k]:
            k += 1
        if k >= n:
            break
        if k - j < need:
            i = k + 1
            continue
        out, pos = bytearray(), k
        while True:
            byte = _frame(d, pos, spb)
            if byte is None:
                break
            out.append(byte)
            # The next start bit: skip marks (the stop bit and any fill), a long gap ends the run.
            p = int(pos + 9.5 * spb)
            limit = p + int(20 * spb)
            while p < n and p < limit and d[p] > 0:
                p += 1
            if p >= n or p >= limit:
                break
            pos = p
        if out:
            runs.append(bytes(out))
        i = max(k + 1, int(pos + 10 * spb) if out else k + 1)
    return runs


def _frame(d: np.ndarray, edge: int, spb: float) -> int | None:
    """The byte whose start bit begins at `edge`, or None when start or stop bit is wrong."""
    def bit(k: int) -> int | None:
        at = int(round(edge + (k + 0.5) * spb))
        if at >= len(d):
            return None
        return 1 if d[at] > 0 else 0
    bits = [bit(k) for k in range(10)]
    if None in bits or bits[0] != 0 or bits[9] != 1:
        return None
    return sum(b << k for k, b in enumerate(bits[1:9]))


def decode_fsk(samples: np.ndarray, standards: tuple[str, ...] = ("bell202", "v23")) -> CallerId:
    """The caller from an FSK burst in the samples (either standard), or UNKNOWN."""
    for std in standards:
        for run in fsk_bytes(samples, std):
            for start in range(len(run)):
                if run[start] not in (SDMF, MDMF, 0x82):
                    continue
                caller = parse_message(run[start:])
                if caller is not None:
                    return caller
    return UNKNOWN


# -- DTMF caller ID ----------------------------------------------------------------------


def dtmf_callerid(number: str = "", absent: str = "") -> np.ndarray:
    """DTMF caller ID: A<number>C, or D<code>C when there is no number ("1" private, "3" unavailable)."""
    text = f"A{number}C" if number else f"D{absent or '3'}C"
    return dtmf_tones(text, on=0.07, off=0.07)


def parse_dtmf_callerid(digits: str) -> CallerId:
    """A<number>C (or #) -> the number; D<code>C -> private or unavailable; anything else UNKNOWN."""
    for start, end in (("A", "C"), ("A", "#"), ("D", "C"), ("D", "#")):
        i = digits.find(start)
        if i < 0:
            continue
        j = digits.find(end, i + 1)
        if j < 0:
            continue
        body = digits[i + 1:j]
        if not body.isdigit():
            continue
        if start == "A":
            return CallerId(body, "", "", "number", "dtmf")
        return CallerId("", "", "", "private" if body == "1" else "unavailable", "dtmf")
    return UNKNOWN


def decode_dtmf(samples: np.ndarray) -> CallerId:
    return parse_dtmf_callerid(detect_dtmf(samples))


def decode(samples: np.ndarray) -> CallerId:
    """The caller from whatever the line sent between the rings: FSK first, else DTMF."""
    caller = decode_fsk(samples)
    if caller.status != "unknown":
        return caller
    return decode_dtmf(samples)
