"""The analog lines' keys: `hw.lines.<trunk name>` (adapter and pins) beside a `kind: analog` trunk.

    trunks:
      - {name: line, kind: analog, number: "0441234567", port: 5072}
    hw:
      lines:
        line: {device: "hw:CARD=Device", ring: 5, hook: 6, loop: 13, answer: null}

Pins are BCM GPIO numbers.  `ring` is the ring detector's output (an
opto-coupler: active low unless `ring_active_high`), `hook` drives the hook
relay (on = off-hook), `loop` reads loop current (optional: active while the
line holds current; its loss ends a call), `answer` reads the polarity
reversal some exchanges send when the far end answers (optional: without it
an outgoing call counts as answered once the digits are dialled).

`rx_gain` and `tx_gain` (dB, from the line toward the call and from the call
toward the line) and `echo_tail` (ms of the hybrid's echo the canceller
covers, 0: off) are keys of a line and of a phone alike (AUDIO): an FXS
interface has the same 2-to-4-wire hybrid, and so the same echo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from appliance.errors import ConfigError

AUDIO = {  # key: (default, low, high); a whole default: whole numbers only
    "rx_gain": (0.0, -20.0, 20.0),        # dB from the line toward the call
    "tx_gain": (0.0, -20.0, 20.0),        # dB from the call toward the line
    "echo_tail": (64, 0, 256),            # ms of echo the canceller covers (0: no canceller)
}
PINS = ("ring", "hook", "loop", "answer")
NUMBERS = {  # key: (default, low, high); a whole default: whole numbers only
    "caller_id_wait": (6.0, 1.0, 15.0),   # s after the first ring's end to wait for caller ID
    "ring_gap": (6.0, 2.0, 20.0),         # s without ringing after which the caller is gone
    "dial_delay": (1.0, 0.2, 5.0),        # s after going off-hook before dialling
    "silence_seconds": (30.0, 0.0, 600.0),  # s of silence that end a call (0: never)
    "busy_cycles": (3, 2, 10),            # busy tone on/off pairs that end a call
    **AUDIO,
}
FLAGS = {"ring_active_high": False, "hook_active_high": True, "loop_active_high": False, "answer_active_high": False}
KEYS = ("device", *PINS, *NUMBERS, *FLAGS)
DEFAULT_PORT = 5072


@dataclass(frozen=True)
class LineConfig:
    name: str
    number: str = ""
    port: int = DEFAULT_PORT              # the line's user agent on loopback (the trunk's port)
    device: str | None = None             # PortAudio's name for the adapter; None: the default device
    ring: int | None = None
    hook: int | None = None
    loop: int | None = None
    answer: int | None = None
    caller_id_wait: float = 6.0
    ring_gap: float = 6.0
    dial_delay: float = 1.0
    silence_seconds: float = 30.0
    busy_cycles: int = 3
    rx_gain: float = 0.0
    tx_gain: float = 0.0
    echo_tail: int = 64
    ring_active_high: bool = False
    hook_active_high: bool = True
    loop_active_high: bool = False
    answer_active_high: bool = False

    @classmethod
    def from_setting(cls, trunk: Mapping[str, Any], hw_lines: Mapping[str, Any] | None) -> "LineConfig":
        s = dict((hw_lines or {}).get(trunk["name"]) or {})
        numbers = trunk.get("numbers") or []
        return cls(trunk["name"], numbers[0] if numbers else "", int(trunk.get("port") or DEFAULT_PORT),
                   **{k: v for k, v in s.items() if k in KEYS})


def parse_lines(item: Any, path: tuple, used: Mapping[int, str]) -> dict:
    """Check `hw.lines`; `used`: GPIO number -> part for the pins already given (LEDs, button)."""
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise ConfigError("lines must be a mapping from an analog trunk's name to its adapter and pins", path)
    taken = dict(used)
    out = {}
    for name, line in item.items():
        at = (*path, name)
        if not isinstance(line, dict):
            raise ConfigError(f"line {name!r} must be a mapping of {', '.join(KEYS)}", at)
        row: dict[str, Any] = {}
        for key, value in line.items():
            if key not in KEYS:
                raise ConfigError(f"unknown key {key!r} in line {name!r} (known: {', '.join(KEYS)})", (*at, key))
            if key == "device":
                if value is not None and not isinstance(value, (str, int)):
                    raise ConfigError("device must be the adapter's name (as `python -m sounddevice` lists it)", (*at, key))
            elif key in PINS:
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 27):
                    raise ConfigError(f"the {key} pin must be a GPIO number from 2 to 27 (BCM), or null", (*at, key))
                if value is not None:
                    if value in taken:
                        raise ConfigError(f"GPIO{value} is given to both {taken[value]} and line {name} {key}", (*at, key))
                    taken[value] = f"line {name} {key}"
            elif key in FLAGS:
                if not isinstance(value, bool):
                    raise ConfigError(f"{key} must be true or false", (*at, key))
            else:
                _check_number(key, value, NUMBERS[key], (*at, key))
            row[key] = value
        out[name] = row
    return out


def _check_number(key: str, value: Any, limits: tuple, at: tuple) -> None:
    default, low, high = limits
    whole = isinstance(default, int)
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or not low <= value <= high:
        raise ConfigError(f"{key} must be a {'whole ' if whole else ''}number from {low} to {high}", at)


def check_trunks(trunks: list[dict], lines: Mapping[str, Any]) -> None:
    """Every analog trunk has its line's pins, and every line names an analog trunk."""
    analog = {t["name"] for t in trunks if t["kind"] == "analog"}
    for name in lines:
        if name not in analog:
            raise ConfigError(f"hw line {name!r} is not an analog trunk (analog trunks: {', '.join(sorted(analog)) or 'none'})",
                              ("hw", "lines", name))
    for name in analog:
        if (lines.get(name) or {}).get("hook") is None or (lines.get(name) or {}).get("ring") is None:
            raise ConfigError(f"analog trunk {name!r} needs its ring and hook pins under hw.lines.{name}", ("hw", "lines"))


# -- FXS: an analog phone as an extension (`kind: analog` extensions, `hw.phones.<number>`) -----------

PHONE_PINS = ("ring", "hook")
PHONE_NUMBERS = {  # key: (default, low, high)
    "digit_timeout": (4.0, 1.0, 15.0),    # s after a digit before the number counts as dialled
    "flash_min": (0.1, 0.05, 1.0),        # s: an on-hook at least this long and
    "flash_max": (0.6, 0.2, 2.0),         # at most this long is a hook flash, not a hang-up
    **AUDIO,
}
PHONE_FLAGS = {"ring_active_high": True, "hook_active_high": False}
PHONE_KEYS = ("device", "port", *PHONE_PINS, *PHONE_NUMBERS, *PHONE_FLAGS)
DEFAULT_PHONE_PORT = 5090


@dataclass(frozen=True)
class PhoneConfig:
    """An analog phone on an FXS port: `ring` drives the ringing generator (the SLIC's ring input or a
    relay), `hook` reads the off-hook detector (active while the handset is lifted)."""

    number: str                            # the extension
    port: int = DEFAULT_PHONE_PORT         # the phone's user agent on loopback
    device: str | None = None
    ring: int | None = None
    hook: int | None = None
    digit_timeout: float = 4.0
    flash_min: float = 0.1
    flash_max: float = 0.6
    rx_gain: float = 0.0
    tx_gain: float = 0.0
    echo_tail: int = 64
    ring_active_high: bool = True
    hook_active_high: bool = False

    @property
    def name(self) -> str:
        """Its name among the lines (DATA/lines/<name>.json)."""
        return f"ext{self.number}"

    @classmethod
    def from_setting(cls, number: str, hw_phones: Mapping[str, Any] | None) -> "PhoneConfig":
        s = dict((hw_phones or {}).get(number) or {})
        return cls(number, **{k: v for k, v in s.items() if k in PHONE_KEYS})


def parse_phones(item: Any, path: tuple, used: Mapping[int, str]) -> dict:
    """Check `hw.phones` (extension number -> adapter, port and pins); `used` as for parse_lines."""
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise ConfigError("phones must be a mapping from an analog extension's number to its adapter and pins", path)
    taken = dict(used)
    out, ports = {}, {}
    for number, phone in item.items():
        number = str(number)
        at = (*path, number)
        if not isinstance(phone, dict):
            raise ConfigError(f"phone {number} must be a mapping of {', '.join(PHONE_KEYS)}", at)
        row: dict[str, Any] = {}
        for key, value in phone.items():
            if key not in PHONE_KEYS:
                raise ConfigError(f"unknown key {key!r} in phone {number} (known: {', '.join(PHONE_KEYS)})", (*at, key))
            if key == "device":
                if value is not None and not isinstance(value, (str, int)):
                    raise ConfigError("device must be the adapter's name (as `python -m sounddevice` lists it)", (*at, key))
            elif key == "port":
                if isinstance(value, bool) or not isinstance(value, int) or not 1024 <= value <= 65535:
                    raise ConfigError("port must be a UDP port from 1024 to 65535", (*at, key))
                if value in ports:
                    raise ConfigError(f"port {value} is given to both phone {ports[value]} and phone {number}", (*at, key))
                ports[value] = number
            elif key in PHONE_PINS:
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 27):
                    raise ConfigError(f"the {key} pin must be a GPIO number from 2 to 27 (BCM), or null", (*at, key))
                if value is not None:
                    if value in taken:
                        raise ConfigError(f"GPIO{value} is given to both {taken[value]} and phone {number} {key}", (*at, key))
                    taken[value] = f"phone {number} {key}"
            elif key in PHONE_FLAGS:
                if not isinstance(value, bool):
                    raise ConfigError(f"{key} must be true or false", (*at, key))
            else:
                _check_number(key, value, PHONE_NUMBERS[key], (*at, key))
            row[key] = value
        if row.get("ring") is None or row.get("hook") is None:
            raise ConfigError(f"phone {number} needs its ring and hook pins", at)
        if (row.get("flash_min", 0.1) >= row.get("flash_max", 0.6)):
            raise ConfigError(f"phone {number}: flash_min must be shorter than flash_max", at)
        out[number] = row
    return out


def check_extensions(analog: set[str], phones: Mapping[str, Any]) -> None:
    """Every `kind: analog` extension has its phone under hw.phones, and every phone is such an extension."""
    for number in phones:
        if number not in analog:
            raise ConfigError(f"hw phone {number} is not an analog extension (analog extensions: "
                              f"{', '.join(sorted(analog)) or 'none'})", ("hw", "phones", number))
    for number in sorted(analog):
        if number not in phones:
            raise ConfigError(f"analog extension {number} needs its ring and hook pins under hw.phones.{number}",
                              ("hw", "phones"))
