"""The five status LEDs as gpiozero LEDs, each showing one pattern of lights.PATTERNS at a time."""

from __future__ import annotations

from typing import Any, Mapping

from appliance.hw.lights import PATTERNS, Pattern
from appliance.hw.pins import HwError


class Leds:
    def __init__(self, pins: Mapping[str, int | None], *, active_high: bool, factory: Any):
        from gpiozero import LED

        self.pins = {name: pin for name, pin in pins.items() if pin is not None}
        self.devices: dict[str, Any] = {}
        self.shown: dict[str, Pattern] = {}
        try:
            for name, pin in self.pins.items():
                try:
                    self.devices[name] = LED(pin, active_high=active_high, initial_value=False,
                                             pin_factory=factory)
                except Exception as e:  # gpiozero raises many kinds: pin in use, no such pin, no permission
                    raise HwError(f"the {name} LED on GPIO{pin} cannot be opened: {type(e).__name__}: {e}") from None
        except HwError:
            self.close()
            raise

    def show(self, name: str, pattern: Pattern) -> None:
        """Light one LED in a pattern; the same pattern again leaves a blink running undisturbed."""
        if self.shown.get(name) == pattern:
            return
        self.shown[name] = pattern
        led = self.devices.get(name)
        if led is None:
            return
        if pattern.on_time is not None:
            led.blink(on_time=pattern.on_time, off_time=pattern.off_time, background=True)
        elif pattern.name == "on":
            led.on()
        else:
            led.off()

    def close(self) -> None:
        for led in self.devices.values():
            led.close()
        self.devices.clear()


OFF = PATTERNS["off"]
