"""The appliance's hardware: status LEDs and the night button on GPIO, through gpiozero.

- `config`: the `hw` section (pins, active high or low, long-press time).
- `lights`: what the LEDs show, pure: events folded into a `Box`, one table to patterns.
- `pins`: the pin factory (GPIOZERO_PIN_FACTORY; MockFactory off a Pi) and `HwError`.
- `leds`, `button`: the gpiozero devices.
- `client`: `Hardware`, a client of the control socket that drives them.

docs/hw.md says how to wire them and what each pattern means.
"""

from appliance.hw.client import Hardware
from appliance.hw.pins import HwError

__all__ = ["Hardware", "HwError"]
