"""MAC addresses: as the owner types them, and inside the file names phones ask for."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s:.\-]")
_HEX12 = re.compile(r"[0-9a-f]{12}")

# The names phones ask for, by vendor: <mac>.cfg (Yealink, Fanvil), cfg<mac>.xml or cfg<mac>
# (Grandstream), <mac>.xml or <model>-<mac>.htm (Snom).  Anything else names no phone.
_FILE = re.compile(r"^(?:cfg|[a-z0-9]+-)?([0-9a-f]{12})(?:\.(?:cfg|xml|htm))?$")


def normalise_mac(text: str | None) -> str | None:
    """12 lower-case hex digits, from "00:15:65:AB:CD:EF", "0015.65ab.cdef", "001565-abcdef"...;
    None when it is not a MAC address (or is all zeros, all ones, or a multicast one)."""
    digits = _SEPARATORS.sub("", (text or "").strip().lower())
    if not _HEX12.fullmatch(digits) or digits in ("000000000000", "ffffffffffff"):
        return None
    if int(digits[1], 16) & 1:  # the group bit: a multicast address is never a phone's own
        return None
    return digits


def mac_of_file(filename: str) -> str | None:
    """The MAC address a phone's request names ("001565abcdef.cfg" -> "001565abcdef"), or None."""
    m = _FILE.fullmatch(filename.lower())
    return m.group(1) if m else None
