"""Events from the engine thread to the appliance's event loop, a batch per wake-up.

The engine thread runs pjsua2's callbacks and must not wait for anyone; the
loop thread publishes each event (control socket subscribers, the live
monitor, missed calls).  `loop.call_soon_threadsafe` for every event writes
to the loop's self-pipe and wakes the loop once per event, and each wake-up
is a GIL hand-over the engine thread may have to wait for: one incoming call
emits five to ten events within a millisecond.  `Handover.put` appends to a
list and wakes the loop only when the list was empty; the loop then delivers
everything that piled up by the time it runs, in order.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable

log = logging.getLogger("appliance")


class Handover:
    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Any], None]):
        self.loop = loop
        self.deliver = deliver
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self.wakeups = 0          # how many times the loop was woken (figures for `pbx bench calls`)
        self.events = 0

    def put(self, event: Any) -> None:
        """Any thread: queue the event; wake the loop if nothing was waiting already."""
        with self._lock:
            self._pending.append(event)
            if len(self._pending) > 1:
                return
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:       # the loop closed between the check and the call: the appliance is stopping
            return

    def _drain(self) -> None:
        """Loop thread: deliver the batch, and whatever arrives meanwhile, in order."""
        self.wakeups += 1
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            self.events += len(batch)
            for event in batch:
                try:
                    self.deliver(event)
                except Exception:  # noqa: BLE001 - one subscriber's bug must not lose the others' events
                    log.exception("delivering an engine event failed: %r", event)
