"""Which gpiozero pin factory drives the pins, and the error when a pin cannot be opened.

`GPIOZERO_PIN_FACTORY` names the factory when set (`lgpio` on a Pi 4 or 5,
`mock` for gpiozero's MockFactory), exactly as gpiozero reads it; a factory
that cannot be loaded is an error, never a quiet fall back to mock pins.
Unset, a Raspberry Pi gets gpiozero's default choice (lgpio first) and any
other machine MockFactory, so `pbx run` works on a laptop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MODEL = Path("/proc/device-tree/model")


class HwError(RuntimeError):
    """A part the configuration names cannot be used: the message says which pin and why."""


def on_a_pi() -> bool:
    try:
        return MODEL.read_bytes().startswith(b"Raspberry Pi")
    except OSError:
        return False


def pin_factory() -> Any:
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    name = os.environ.get("GPIOZERO_PIN_FACTORY")
    if name is None and not on_a_pi():
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    try:
        Device.ensure_pin_factory()
        return Device.pin_factory
    except (BadPinFactory, ImportError, OSError, RuntimeError) as e:
        raise HwError(f"no GPIO pin factory {name or '(the default)'} here: {e}; "
                      "set GPIOZERO_PIN_FACTORY (lgpio on a Pi 4 or 5, mock for none)") from None


def describe(factory: Any) -> str:
    """"MockFactory" or "LGPIOFactory", for the log."""
    return type(factory).__name__
