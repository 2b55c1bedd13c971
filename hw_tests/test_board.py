"""What the appliance needs from the board: a native engine build and reachable devices."""

from __future__ import annotations

import os
import platform
from pathlib import Path

EM_AARCH64 = 183  # ELF e_machine of arm64


def test_the_engine_binding_is_built_natively_for_arm64():
    import _pjsua2  # the compiled part of the binding appliance/pjbuild made on this board

    assert platform.machine() == "aarch64"
    header = Path(_pjsua2.__file__).read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == EM_AARCH64


def test_the_gpio_chip_is_there_for_the_leds_and_the_night_button():
    chips = sorted(Path("/dev").glob("gpiochip*"))
    assert chips, "no /dev/gpiochip*: is this kernel's GPIO character device enabled?"
    assert os.access(chips[0], os.R_OK | os.W_OK), (
        f"{chips[0]} is not readable and writable by this user (the service user is in group gpio)")
