"""A control socket with night mode behind it, on an event loop in a thread: what `Hardware` talks to."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from appliance.control import ControlServer
from appliance.night.service import NightService


class Appliance:
    """The parts of `pbx run` the hardware sees: `status`, the night commands and the event stream."""

    def __init__(self, store, clock: Callable):
        self.store = store
        self.dir = Path(tempfile.mkdtemp(prefix="hw", dir="/tmp"))  # a Unix socket path is short
        self.path = self.dir / "control.sock"
        self.engine_running = True
        self.missed_open: int | None = None  # what status says of open missed calls (None: the store's rows)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stub-loop", daemon=True)
        self.thread.start()
        self.control = ControlServer(self.path)
        self.night = NightService(store, self.control.publish, clock=clock)
        self.night.register(self.control)
        self.control.command("status", self.status)
        asyncio.run_coroutine_threadsafe(self.control.start(), self.loop).result(5)
        self.on_loop(lambda: self.night.start(self.loop))

    def status(self, args: dict) -> dict:
        missed = len(self.store.open_missed()) if self.missed_open is None else self.missed_open
        return {"engine": {"running": self.engine_running}, "missed_open": missed,
                "night": self.night.status_or_none()}

    def on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the loop (where the control server and night mode live) and wait for it."""
        async def call():
            return fn()
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(5)

    def publish(self, event: dict) -> None:
        self.on_loop(lambda: self.control.publish(event))

    def close(self) -> None:
        self.on_loop(self.night.stop)
        asyncio.run_coroutine_threadsafe(self.control.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        self.dir.rmdir()


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Wait for check() to be true (another thread makes it so); its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "not within the time"
            return value
        time.sleep(0.01)
