"""The calls LED follows the wallboard's thresholds: a red tile makes it blink fast.

The fold (pure), then the whole way on gpiozero's MockFactory: the appliance's
`WallboardWatch` sees a caller waiting past a red threshold, publishes
WallboardAlert on a control socket, and `Hardware` makes the calls LED's pin
go up and down.
"""

from __future__ import annotations

import time

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.hw import Hardware
from appliance.hw.config import HwConfig
from appliance.hw.lights import Box, fold, from_status, lights
from appliance.store import Store
from appliance.wallboard import ALERT, WallboardWatch
from tests.hw.stub import Appliance, eventually
from tests.night.office import kyiv
from tests.night.test_service import Clock, office

NOW = kyiv(2025, 3, 10, 11, 0)


def calls_led(box: Box) -> tuple[str, str]:
    pattern, means = lights(box)["calls"]
    return pattern.name, means


def test_a_red_tile_blinks_the_calls_led_fast_and_amber_or_ok_do_not():
    box = fold(Box(), {"kind": "ApplianceStarted"})
    red = fold(box, {"kind": ALERT, "level": "red", "tiles": {"missed_open": "red", "waiting": "amber"}})
    assert calls_led(red) == ("fast", "a wallboard tile is red: missed_open")
    assert calls_led(fold(box, {"kind": ALERT, "level": "amber", "tiles": {"waiting": "amber"}}))[0] == "off"
    assert calls_led(fold(red, {"kind": ALERT, "level": "ok", "tiles": {}})) == ("off", "no calls")
    # With calls up and none red, the LED says what it always said.
    talking = fold(fold(red, {"kind": "CallStarted", "call_id": "1"}), {"kind": ALERT, "level": "ok", "tiles": {}})
    assert calls_led(talking) == ("on", "1 in progress")


def test_status_tells_a_red_level_that_began_before_the_leds_subscribed():
    box = from_status(Box(), {"engine": {"running": True}, "wallboard": {"level": "red", "tiles": {"waiting": "red"}}})
    assert calls_led(box) == ("fast", "a wallboard tile is red: waiting")
    assert calls_led(from_status(box, {"engine": {"running": True}, "wallboard": {"level": "ok", "tiles": {}}}))[0] == "off"


def waiting_call(seconds: float) -> dict:
    return {"id": "c1", "direction": "inbound", "stage": "queue", "call_s": seconds,
            "started_at": "2025-03-10T08:59:00.000+00:00", "ringing": [], "with": "", "extension": ""}


@pytest.fixture
def box(tmp_path):
    with office(tmp_path / "office") as store:
        app = Appliance(store, Clock(NOW))
        hw = Hardware(HwConfig(), app.path, factory=MockFactory(), refresh=0.2)
        hw.start()
        try:
            yield app, hw
        finally:
            hw.stop()
            app.close()


def test_the_watch_turns_a_red_tile_into_a_fast_blinking_calls_led(tmp_path, box):
    app, hw = box
    (tmp_path / "board").mkdir()
    live: list[dict] = []
    published: list[dict] = []
    with Store(tmp_path / "board") as store:
        store.set_setting("wallboard", {"longest_wait": {"amber": 30, "red": 60}})

        def publish(event: dict) -> None:
            published.append(event)
            app.publish(event)

        watch = WallboardWatch(store, publish, lambda: live, lambda: 0, clock=lambda: NOW)
        assert watch.evaluate() == "ok" and published == []          # nothing waits: nothing to say
        assert hw.leds()["calls"]["pattern"] == "off"

        live.append(waiting_call(45))
        assert watch.evaluate() == "amber"
        live[0] = waiting_call(75)
        assert watch.evaluate() == "red"
        assert [e["level"] for e in published] == ["amber", "red"]
        assert published[-1]["tiles"] == {"longest_wait": "red"}
        eventually(lambda: hw.leds()["calls"]["pattern"] == "fast")
        assert hw.leds()["calls"]["means"] == "a wallboard tile is red: longest_wait"

        # The pin itself goes up and down, every 0.15 s.
        pin = hw.leds_out.devices["calls"].pin
        pin.clear_states()
        time.sleep(0.8)
        assert {s.state for s in pin.states} >= {True, False}

        live.clear()                                                  # the caller was answered
        assert watch.evaluate() == "ok"
        eventually(lambda: hw.leds()["calls"]["pattern"] == "off")
        assert pin.state == 0

        # With `led: false` the watch reports ok whatever the tiles say.
        store.set_setting("wallboard", {"longest_wait": {"red": 60}, "led": False})
        live.append(waiting_call(90))
        assert watch.evaluate() == "ok" and watch.tiles["longest_wait"] == "red"
        assert [e["level"] for e in published] == ["amber", "red", "ok"]
