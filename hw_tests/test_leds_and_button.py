"""The status LEDs and the night button on the real header, with a person watching and pressing.

Run with `-s` (the test talks to the person) and the pins wired, in the
order of appliance.hw.config.LEDS:

    PBX_HW_LEDS=17,27,22,23,24 PBX_HW_BUTTON=25 .venv/bin/python -m pytest -s hw_tests/test_leds_and_button.py

`PBX_HW_LEDS_ACTIVE_LOW=1` for LEDs lit by a low pin, `PBX_HW_BUTTON_ACTIVE_HIGH=1`
for a button to 3.3 V.  Stop the appliance first: it holds the pins.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from appliance.hw.button import NightButton
from appliance.hw.config import LEDS
from appliance.hw.leds import Leds
from appliance.hw.lights import PATTERNS

PRESS_WAIT = 30.0   # seconds a person has to press


def pins(name: str) -> list[int]:
    text = os.environ.get(name, "")
    if not text:
        pytest.skip(f"set {name} to the GPIO numbers wired (docs/hw.md), e.g. "
                    f"{'17,27,22,23,24' if name == 'PBX_HW_LEDS' else '25'}")
    return [int(p) for p in text.split(",")]


@pytest.fixture
def say(request):
    """Print to the person at the board; without -s nobody would see it, so skip."""
    if request.config.getoption("capture") != "no":
        pytest.skip("talks to the person at the board: run with -s")

    def say(text: str) -> None:
        print(f"\n>>> {text}", file=sys.stderr, flush=True)
    return say


@pytest.fixture
def factory():
    from appliance.hw.pins import pin_factory

    return pin_factory()   # gpiozero's own (lgpio on a Pi 4 or 5); each test closes its devices


def test_each_led_lights_then_blinks_in_turn(say, factory):
    numbers = pins("PBX_HW_LEDS")
    assert len(numbers) == len(LEDS), f"PBX_HW_LEDS names {len(numbers)} pins, one per LED: {', '.join(LEDS)}"
    leds = Leds(dict(zip(LEDS, numbers)), active_high=os.environ.get("PBX_HW_LEDS_ACTIVE_LOW") != "1",
                factory=factory)
    try:
        for name in LEDS:
            say(f"the {name} LED (GPIO{leds.pins[name]}): on, then blinking fast")
            leds.show(name, PATTERNS["on"])
            assert leds.devices[name].is_lit
            time.sleep(1.0)
            leds.show(name, PATTERNS["fast"])
            time.sleep(1.0)
            leds.show(name, PATTERNS["off"])
            assert not leds.devices[name].is_lit
        if sys.stdin.isatty():
            say("did each LED light and then blink, one after the other, in that order? [y/n]")
            assert input().strip().lower().startswith("y"), "the person saw something else: check the wiring (docs/hw.md)"
    finally:
        leds.close()


def test_the_button_reads_a_short_and_a_long_press(say, factory):
    [pin] = pins("PBX_HW_BUTTON")
    got: list[str] = []
    seen = threading.Event()

    def heard(kind: str):
        def note() -> None:
            got.append(kind)
            seen.set()
        return note

    button = NightButton(pin, active_high=os.environ.get("PBX_HW_BUTTON_ACTIVE_HIGH") == "1", hold=2.0,
                         bounce=0.05, factory=factory, on_down=lambda: None, on_up=lambda: None,
                         on_short=heard("short"), on_long=heard("long"))
    try:
        assert not button.device.is_pressed, "the button reads as pressed while nobody touches it: active high or low?"
        say(f"press the night button (GPIO{pin}) briefly, once")
        assert seen.wait(PRESS_WAIT), f"no press within {PRESS_WAIT:.0f} s"
        time.sleep(0.5)
        assert got == ["short"], f"read as {got}: one short press expected (bounce?)"
        seen.clear()
        say("now press and hold it for 3 seconds")
        assert seen.wait(PRESS_WAIT), f"no long press within {PRESS_WAIT:.0f} s"
        button.device.wait_for_release(timeout=PRESS_WAIT)
        time.sleep(0.2)
        assert got == ["short", "long"], f"read as {got}"
    finally:
        button.close()
