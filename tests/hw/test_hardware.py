"""The LEDs and the night button on gpiozero's MockFactory, against a control socket with night mode behind it.

As gpiozero's own tests do: drive the button's mock pin, and read the LEDs'
pins.  The night state's time is injected; only the long press waits (for a
hold time of 0.2 s).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory

from appliance.hw import Hardware, HwError
from appliance.hw.config import HwConfig
from appliance.store import Store
from tests.hw.stub import Appliance, eventually
from tests.night.office import kyiv
from tests.night.test_service import Clock, office, saved_state

MON_2015 = kyiv(2025, 3, 10, 20, 15)     # night by the schedule
TUE_0900 = kyiv(2025, 3, 11, 9, 0)       # its next boundary
PINS = {"ready": 17, "trunk": 27, "calls": 22, "night": 23, "missed": 24, "button": 25}


@pytest.fixture
def clock():
    return Clock(MON_2015)


@pytest.fixture
def box(tmp_path, clock):
    with office(tmp_path) as store:
        app = Appliance(store, clock)
        hw = Hardware(HwConfig(hold_seconds=0.2, bounce_ms=20), app.path, factory=MockFactory(), refresh=0.2)
        hw.start()
        try:
            yield app, hw
        finally:
            hw.stop()
            app.close()


def night_led(hw: Hardware) -> str:
    return hw.leds()["night"]["pattern"]


def kyiv_state(app: Appliance) -> tuple[str, str, str]:
    s = app.on_loop(lambda: saved_state(app.store, "kyiv"))
    return s.mode, s.how, s.by


def press(hw: Hardware, hold: float = 0.0) -> None:
    """A press by a person: not within the bounce time of the last release, held `hold` seconds."""
    pin = hw.button.device.pin
    time.sleep(0.05)
    pin.drive_low()
    time.sleep(hold)
    pin.drive_high()


def test_the_leds_start_from_the_state_and_the_ready_led_waits_for_the_appliance(box):
    app, hw = box
    lit = hw.leds()
    assert {k: v["state"] for k, v in lit.items()} == \
        {"ready": "blinking", "trunk": "off", "calls": "off", "night": "on", "missed": "off"}
    assert lit["night"]["pin"] == "GPIO23" and lit["night"]["means"] == "kyiv: night by the schedule"
    assert hw.leds_out.devices["night"].pin.state == 1          # active high: the pin drives the LED
    app.publish({"kind": "ApplianceStarted"})
    eventually(lambda: hw.leds()["ready"]["state"] == "on")
    assert hw.leds_out.devices["ready"].pin.state == 1
    app.engine_running = False
    eventually(lambda: hw.leds()["ready"]["pattern"] == "fast")   # the next status read sees the fault


def test_a_short_press_switches_to_day_until_the_boundary_and_the_night_led_follows(box, clock):
    app, hw = box
    pin = hw.button.device.pin
    pin.drive_low()
    assert night_led(hw) == "fast"               # acknowledged at once, before any reply
    time.sleep(0.05)
    pin.drive_high()
    eventually(lambda: kyiv_state(app) == ("day", "temporary", "button"))
    eventually(lambda: night_led(hw) == "wink")   # day set by hand
    # At the schedule's boundary the override ends and the schedule (day) takes over.
    clock.now = TUE_0900
    app.on_loop(app.night.tick)
    eventually(lambda: kyiv_state(app) == ("day", "auto", "schedule"))
    eventually(lambda: night_led(hw) == "off")


def test_a_long_press_keeps_the_mode_and_another_returns_to_the_schedule(box):
    app, hw = box
    pin = hw.button.device.pin
    pin.drive_low()
    eventually(lambda: night_led(hw) == "on" and hw.box.button == "held")   # "let go"
    eventually(lambda: kyiv_state(app) == ("night", "permanent", "button"))
    pin.drive_high()
    eventually(lambda: night_led(hw) == "long")   # night set by hand
    assert hw.leds()["night"]["state"] == "blinking"
    press(hw, hold=0.4)
    eventually(lambda: kyiv_state(app) == ("night", "auto", "button"))
    eventually(lambda: night_led(hw) == "on")


def test_contact_bounce_is_one_press(box):
    app, hw = box
    pin = hw.button.device.pin
    pin.drive_low()
    pin.drive_high()          # a glitch: released within the bounce time
    pin.drive_low()
    time.sleep(0.05)
    pin.drive_high()          # the press
    pin.drive_low()           # the contacts settling after the release
    pin.drive_high()
    eventually(lambda: kyiv_state(app)[1] == "temporary")
    time.sleep(0.2)
    events = app.on_loop(lambda: [e for e in app.store.events() if e["kind"] == "NightModeChanged"])
    assert len(events) == 1


def test_the_other_leds_follow_events(box):
    app, hw = box
    for event in ({"kind": "TrunkConfigured", "trunk": "provider", "type": "register"},
                  {"kind": "CallStarted", "call_id": "c1"}, {"kind": "QueueJoined", "call_id": "c1"}):
        app.publish(event)
    eventually(lambda: hw.leds()["calls"]["pattern"] == "fast")
    assert hw.leds()["trunk"]["pattern"] == "slow"
    app.publish({"kind": "TrunkRegistered", "trunk": "provider"})
    app.publish({"kind": "QueueLeft", "call_id": "c1"})
    eventually(lambda: hw.leds()["calls"]["pattern"] == "on" and hw.leds()["trunk"]["pattern"] == "on")
    app.publish({"kind": "CallEnded", "call_id": "c1"})
    app.missed_open = 1  # what the appliance's status says from now on, as its cases do
    app.publish({"kind": "MissedCaseOpened", "call_id": "c1", "case": {"id": 1, "status": "open"}})
    eventually(lambda: hw.leds()["calls"]["pattern"] == "off" and hw.leds()["missed"]["pattern"] == "on")
    assert hw.leds_out.devices["missed"].pin.state == 1
    # Its case closed (called back): the LED goes out.
    app.missed_open = 0
    app.publish({"kind": "MissedCaseClosed", "call_id": "c2", "case": {"id": 1, "status": "closed"}})
    eventually(lambda: hw.leds()["missed"]["pattern"] == "off")


def test_a_restart_keeps_the_state_and_the_night_led_shows_it(tmp_path, clock):
    factory = MockFactory()
    for run in range(2):
        with Store(tmp_path) if run else office(tmp_path) as store:
            app = Appliance(store, clock)
            hw = Hardware(HwConfig(hold_seconds=0.2), app.path, factory=factory, refresh=60)
            hw.start()
            try:
                if run == 0:
                    press(hw, hold=0.4)
                    eventually(lambda: night_led(hw) == "long")
                else:
                    clock.now = MON_2015 + timedelta(days=3)      # past every boundary: still permanent
                    assert night_led(hw) == "long"
                    assert kyiv_state(app) == ("night", "permanent", "button")
            finally:
                hw.stop()
                app.close()


def test_a_pin_that_cannot_be_opened_stops_the_start_and_names_it(tmp_path, clock):
    factory = MockFactory()
    taken = LED(23, pin_factory=factory)      # something else holds the night LED's pin
    with office(tmp_path) as store:
        app = Appliance(store, clock)
        try:
            hw = Hardware(HwConfig(), app.path, factory=factory)
            with pytest.raises(HwError, match=r"the night LED on GPIO23 cannot be opened: GPIOPinInUse"):
                hw.start()
            LED(17, pin_factory=factory).close()   # what it had opened is free again
        finally:
            app.close()
            taken.close()


def test_active_low_leds_and_an_active_high_button(box, tmp_path, clock):
    app, _ = box
    factory = MockFactory()
    pins = {**PINS, "button": 5, "ready": 6, "trunk": 12, "calls": 13, "night": 16, "missed": 19}
    hw = Hardware(HwConfig(pins, leds_active_high=False, button_active_high=True, hold_seconds=0.2), app.path,
                  factory=factory)
    hw.start()
    try:
        assert hw.leds()["night"]["pattern"] == "on"
        assert hw.leds_out.devices["night"].pin.state == 0      # lit by pulling the pin low
        assert hw.leds_out.devices["missed"].pin.state == 1     # dark
        pin = hw.button.device.pin
        pin.drive_high()
        time.sleep(0.05)
        pin.drive_low()
        eventually(lambda: kyiv_state(app)[1] == "temporary")
    finally:
        hw.stop()
