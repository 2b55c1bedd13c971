"""The `hw` section of the configuration: which GPIO pins the LEDs and the night button use, and how.

    hw:
      pins: {ready: 17, trunk: 27, calls: 22, night: 23, missed: 24, button: 25}
      leds_active_high: true      # LED from the pin through a resistor to ground
      button_active_high: false   # button from the pin to ground, the pin's pull-up on
      hold_seconds: 2             # a press this long is a long press
      bounce_ms: 50               # edges closer than this are contact bounce
      night_switch: kyiv          # the switch the button sets and the night LED shows

Every key is optional.  Pins are BCM GPIO numbers (GPIO17 is pin 11 of the
40-pin header); `null` leaves a part out.  The store keeps the keys given
(setting `hw`); `HwConfig.from_setting` fills in the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from appliance.errors import ConfigError

LEDS = ("ready", "trunk", "calls", "night", "missed")
PARTS = (*LEDS, "button")
DEFAULT_PINS = {"ready": 17, "trunk": 27, "calls": 22, "night": 23, "missed": 24, "button": 25}
# GPIO0 and GPIO1 are the HAT ID EEPROM's I2C bus; 2 to 27 are on the 40-pin header.
LOWEST_PIN, HIGHEST_PIN = 2, 27
KEYS = ("pins", "leds_active_high", "button_active_high", "hold_seconds", "bounce_ms", "night_switch", "lines", "phones")
HOLD_RANGE = (0.5, 10.0)
BOUNCE_RANGE = (0, 500)


@dataclass(frozen=True)
class HwConfig:
    pins: Mapping[str, int | None] = field(default_factory=lambda: dict(DEFAULT_PINS))
    leds_active_high: bool = True
    button_active_high: bool = False
    hold_seconds: float = 2.0
    bounce_ms: int = 50
    night_switch: str | None = None    # None: every switch (the night LED shows the first)

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any] | None) -> "HwConfig":
        s = dict(setting or {})
        pins = {**DEFAULT_PINS, **(s.get("pins") or {})}
        return cls(pins, bool(s.get("leds_active_high", True)), bool(s.get("button_active_high", False)),
                   float(s.get("hold_seconds", 2.0)), int(s.get("bounce_ms", 50)), s.get("night_switch"))


def parse_hw(item: Any, night_switches: Mapping[str, Any] | None = None) -> dict:
    """Check the `hw` section; returns the keys given, ready to store.  `night_switches`:
    the routing's, which `night_switch` must name."""
    path: tuple = ("hw",)
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise ConfigError("hw must be a mapping", path)
    for key in item:
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r} in hw (known: {', '.join(KEYS)})", (*path, key))
    out: dict[str, Any] = {}
    if "pins" in item:
        out["pins"] = _pins(item["pins"], (*path, "pins"))
    for key in ("leds_active_high", "button_active_high"):
        if key in item:
            if not isinstance(item[key], bool):
                raise ConfigError(f"{key} must be true or false", (*path, key))
            out[key] = item[key]
    if "hold_seconds" in item:
        value, (low, high) = item["hold_seconds"], HOLD_RANGE
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"hold_seconds must be a number of seconds from {low} to {high:g}", (*path, "hold_seconds"))
        out["hold_seconds"] = value
    if "bounce_ms" in item:
        value, (low, high) = item["bounce_ms"], BOUNCE_RANGE
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"bounce_ms must be a whole number of milliseconds from {low} to {high}",
                              (*path, "bounce_ms"))
        out["bounce_ms"] = value
    if item.get("night_switch") is not None:
        name = item["night_switch"]
        if not isinstance(name, str) or (night_switches is not None and name not in night_switches):
            known = ", ".join(night_switches or ()) or "none"
            raise ConfigError(f"night_switch {name!r} is not a night switch of the routing (switches: {known})",
                              (*path, "night_switch"))
        out["night_switch"] = name
    if item.get("lines") is not None:
        from appliance.analog.config import parse_lines  # the analog lines' adapter and pins

        used = {pin: part for part, pin in {**DEFAULT_PINS, **out.get("pins", {})}.items() if pin is not None}
        out["lines"] = parse_lines(item["lines"], (*path, "lines"), used)
    if item.get("phones") is not None:
        from appliance.analog.config import parse_phones  # analog phones (FXS) as extensions

        used = {pin: part for part, pin in {**DEFAULT_PINS, **out.get("pins", {})}.items() if pin is not None}
        for name, line in (out.get("lines") or {}).items():
            used |= {line[k]: f"line {name} {k}" for k in ("ring", "hook", "loop", "answer") if line.get(k) is not None}
        out["phones"] = parse_phones(item["phones"], (*path, "phones"), used)
    return out


def _pins(value: Any, path: tuple) -> dict[str, int | None]:
    if not isinstance(value, dict):
        raise ConfigError(f"pins must be a mapping of {', '.join(PARTS)} to GPIO numbers", path)
    pins: dict[str, int | None] = {}
    for part, pin in value.items():
        if part not in PARTS:
            raise ConfigError(f"unknown part {part!r} in pins (known: {', '.join(PARTS)})", (*path, part))
        if pin is not None and (isinstance(pin, bool) or not isinstance(pin, int)
                                or not LOWEST_PIN <= pin <= HIGHEST_PIN):
            raise ConfigError(f"the {part} pin must be a GPIO number from {LOWEST_PIN} to {HIGHEST_PIN} "
                              "(BCM numbering), or null for none", (*path, part))
        pins[part] = pin
    used: dict[int, str] = {}
    for part, pin in {**DEFAULT_PINS, **pins}.items():
        if pin is None:
            continue
        if pin in used:
            at = part if part in pins else used[pin]
            raise ConfigError(f"GPIO{pin} is given to both {used[pin]} and {part}", (*path, at))
        used[pin] = part
    return pins
