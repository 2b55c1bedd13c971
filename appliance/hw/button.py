"""The night button: a gpiozero Button read as short and long presses.

gpiozero's `bounce_time` debounces real pins (lgpio does it in the kernel);
on top of that an edge within `bounce` seconds of the last accepted one is
contact bounce, here too, so a press is counted once on any pin factory:
a release that soon after the press was a glitch, not a press, and a press
that soon after a release is the contacts settling.

`on_down` and `on_up` follow the button (the night LED answers at once).  A
press held for `hold` seconds is a long press, taken at that moment (the
person sees the night LED answer and lets go); its release does nothing
more.  A shorter press is a short press, taken at its release.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from appliance.hw.pins import HwError

Callback = Callable[[], None]


class NightButton:
    def __init__(self, pin: int, *, active_high: bool, hold: float, bounce: float, factory: Any,
                 on_down: Callback, on_up: Callback, on_short: Callback, on_long: Callback,
                 clock: Callable[[], float] = time.monotonic):
        from gpiozero import Button

        self.pin, self.bounce, self.clock = pin, bounce, clock
        self.on_down, self.on_up, self.on_short, self.on_long = on_down, on_up, on_short, on_long
        try:
            # Active low (the default): the button joins the pin to ground and the pin's pull-up holds it high.
            self.device = Button(pin, pull_up=not active_high, bounce_time=bounce or None, hold_time=hold,
                                 pin_factory=factory)
        except Exception as e:  # gpiozero raises many kinds: pin in use, no such pin, no permission
            raise HwError(f"the night button on GPIO{pin} cannot be opened: {type(e).__name__}: {e}") from None
        self._down_at: float | None = None
        self._up_at = float("-inf")
        self._held = False
        self.device.when_pressed = self._pressed
        self.device.when_released = self._released
        self.device.when_held = self._hold

    def _pressed(self) -> None:
        now = self.clock()
        if self._down_at is not None or now - self._up_at < self.bounce:
            return
        self._down_at, self._held = now, False
        self.on_down()

    def _released(self) -> None:
        now = self.clock()
        if self._down_at is None:
            return
        down_for, self._down_at = now - self._down_at, None
        self.on_up()
        if down_for < self.bounce:
            return  # a glitch, not a press
        self._up_at = now
        if not self._held:
            self.on_short()

    def _hold(self) -> None:
        if self._down_at is None or self._held:
            return
        self._held = True
        self.on_long()

    def close(self) -> None:
        self.device.close()
