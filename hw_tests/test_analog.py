"""The analog line adapter on a real Pi: the hook relay, the loop current, and audio through the adapter.

Wire the adapter as docs/analog.md shows, plug in a working analog line, stop the appliance (it holds
the pins and the sound card), then:

    PBX_LINE_DEVICE="hw:CARD=Device" PBX_LINE_RING=5 PBX_LINE_HOOK=6 PBX_LINE_LOOP=13 \\
        .venv/bin/python -m pytest -s hw_tests/test_analog.py

The test goes off-hook, expects loop current (when PBX_LINE_LOOP is set) and the exchange's 425 Hz
dial tone in the capture, dials nothing, and goes on-hook again.  Skipped on any other machine
(hw_tests/conftest.py) and when the variables are not set.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from appliance.analog import tones


def env_pin(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


@pytest.fixture
def adapter():
    device = os.environ.get("PBX_LINE_DEVICE")
    hook, loop = env_pin("PBX_LINE_HOOK"), env_pin("PBX_LINE_LOOP")
    if not device or hook is None:
        pytest.skip("set PBX_LINE_DEVICE (the adapter's name in `python -m sounddevice`) and PBX_LINE_HOOK "
                    "(and PBX_LINE_LOOP, PBX_LINE_RING) to the pins wired (docs/analog.md)")
    return device, hook, loop


def test_off_hook_gives_loop_current_and_dial_tone(adapter):
    from gpiozero import DigitalInputDevice, OutputDevice

    from appliance.analog.audio import LineAudio

    device, hook_pin, loop_pin = adapter
    frames: list[np.ndarray] = []
    hook = OutputDevice(hook_pin, initial_value=False)
    loop = DigitalInputDevice(loop_pin, pull_up=True) if loop_pin is not None else None
    audio = LineAudio(device, frames.append)
    try:
        hook.on()
        audio.open()
        assert audio.opened.wait(5) and not audio.error, audio.error
        deadline = time.monotonic() + 3
        while len(frames) < 100 and time.monotonic() < deadline:   # two seconds of the line
            time.sleep(0.05)
        if loop is not None:
            assert loop.is_active, "no loop current while off-hook: check the relay and the line"
        heard = np.concatenate(frames[25:]) if len(frames) > 25 else np.zeros(0, dtype=np.int16)
        assert len(heard) >= 8000, f"only {len(frames)} frames from {device} in 3 s"
        print(f"\nline level {tones.level_dbfs(heard):.1f} dBFS, 425 Hz share {tones.relative_power(heard, 425):.2f}")
        assert tones.relative_power(heard, 425) > 0.5, "no dial tone (425 Hz) on the line"
    finally:
        audio.close()
        hook.off()
        hook.close()
        if loop is not None:
            loop.close()
