"""The box's face: LEDs that follow the appliance and a night button, as a client of the control socket.

`Hardware` opens the pins (a configured pin that cannot be opened stops the
start with an `HwError` naming it), subscribes to the control socket's
events, and reads `status` once and then every `refresh` seconds (for what
no event reports: open missed calls handled in the panel, the engine's
health).  Button presses become `night.press` commands; it never touches
the engine or the store.

Threads: one reads the event stream; one worker sends commands and the
periodic status request; gpiozero's own threads call the button's
callbacks.  `Box` changes under one lock, and every change relights the LEDs.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

from appliance.control import ControlClient, ControlError
from appliance.hw.button import NightButton
from appliance.hw.config import LEDS, HwConfig
from appliance.hw.leds import OFF, Leds
from appliance.hw.lights import Box, fold, from_status, lights
from appliance.hw.pins import HwError, describe, pin_factory

log = logging.getLogger("appliance.hw")

BY = "button"


class Hardware:
    def __init__(self, config: HwConfig, control_path: str | Path, *, factory: Any = None, refresh: float = 10.0):
        self.config = config
        self.control_path = Path(control_path)
        self.factory = factory
        self.refresh = refresh
        self.box = Box(night_switch=config.night_switch)
        self.leds_out: Leds | None = None
        self.button: NightButton | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._events: ControlClient | None = None
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_setting(cls, setting: Mapping | None, control_path: str | Path, **kwargs: Any) -> "Hardware":
        return cls(HwConfig.from_setting(setting), control_path, **kwargs)

    # -- start and stop ---------------------------------------------------------

    def start(self) -> None:
        """Open the pins, subscribe, read the state once, start the threads.

        Blocking: call it from a thread, not from the event loop that serves the control socket."""
        if self.factory is None:
            self.factory = pin_factory()
        c = self.config
        try:
            self.leds_out = Leds({n: c.pins.get(n) for n in LEDS}, active_high=c.leds_active_high,
                                 factory=self.factory)
            if c.pins.get("button") is not None:
                self.button = NightButton(
                    c.pins["button"], active_high=c.button_active_high, hold=c.hold_seconds,
                    bounce=c.bounce_ms / 1000, factory=self.factory, on_down=lambda: self._button("down"),
                    on_up=lambda: self._button(None), on_short=lambda: self._jobs.put(lambda: self._press(False)),
                    on_long=self._long)
        except HwError:
            self.stop()
            raise
        self._relight()
        self._events = ControlClient(self.control_path)
        stream = self._events.subscribe()
        self._read_status()
        self._threads = [threading.Thread(target=self._follow, args=(stream,), name="hw-events", daemon=True),
                         threading.Thread(target=self._work, name="hw-commands", daemon=True)]
        for t in self._threads:
            t.start()
        # Pins only: `pbx run`'s callers wait for the word "ready", which an LED's name must not print early.
        log.info("status LEDs on %s, night button on %s (%s)",
                 ", ".join(f"GPIO{p}" for p in self.leds_out.pins.values()) or "no pins",
                 f"GPIO{c.pins['button']}" if self.button else "no pin", describe(self.factory))

    def stop(self) -> None:
        """Stop the threads, put the LEDs out and free the pins."""
        self._jobs.put(None)
        if self._events is not None:
            self._events.shutdown()
        for t in self._threads:
            t.join(timeout=2)
        if self._events is not None:
            self._events.close()
            self._events = None
        if self.button is not None:
            self.button.close()
            self.button = None
        if self.leds_out is not None:
            for name in LEDS:
                self.leds_out.show(name, OFF)
            self.leds_out.close()
            self.leds_out = None

    # -- what the LEDs show ------------------------------------------------------

    def leds(self) -> dict[str, dict]:
        """Each LED's state (on, off, blinking), pattern, meaning and pin, for `pbx status --json`."""
        with self._lock:
            shown = lights(self.box)
        return {name: {"state": p.state, "pattern": p.name, "means": means,
                       "pin": f"GPIO{self.config.pins[name]}" if self.config.pins.get(name) is not None else None}
                for name, (p, means) in shown.items()}

    def _update(self, change: Callable[[Box], Box]) -> None:
        with self._lock:
            self.box = change(self.box)
            self._relight_locked()

    def _relight(self) -> None:
        with self._lock:
            self._relight_locked()

    def _relight_locked(self) -> None:
        if self.leds_out is None:
            return
        for name, (pattern, _means) in lights(self.box).items():
            self.leds_out.show(name, pattern)

    # -- threads -------------------------------------------------------------------

    def _follow(self, stream) -> None:
        try:
            for event in stream:
                self._update(lambda box: fold(box, event))
        except (OSError, ValueError) as e:
            log.debug("event stream ended: %s", e)

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.refresh)
            except queue.Empty:
                job = self._read_status
            if job is None:
                return
            try:
                job()
            except (ControlError, OSError, ValueError) as e:
                self.last_error = str(e)
                log.warning("control request failed: %s", e)

    def _read_status(self) -> None:
        with ControlClient(self.control_path) as client:
            status = client.request("status")
        self._update(lambda box: from_status(box, status))

    # -- the button ------------------------------------------------------------------

    def _button(self, state: str | None) -> None:
        self._update(lambda box: replace(box, button=state))

    def _long(self) -> None:
        self._button("held")
        self._jobs.put(lambda: self._press(True))

    def _press(self, long: bool) -> None:
        args: dict[str, Any] = {"long": long, "by": BY}
        if self.config.night_switch:
            args["switch"] = self.config.night_switch
        try:
            with ControlClient(self.control_path) as client:
                result = client.request("night.press", **args)
        except ControlError as e:
            self.last_error = str(e)
            log.warning("night button: %s", e)
            return
        night = {k: {"mode": v["mode"], "how": v["how"]} for k, v in result["switches"].items()}
        self._update(lambda box: replace(box, night={**box.night, **night}))
