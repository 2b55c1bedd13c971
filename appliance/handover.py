"""Events from the engine thread to the appliance's event loop, a batch per wake-up.

The engine thread runs pjsua2's callbacks and must not wait for anyone; the
loop thread publishes each event (control socket subscribers, the live
monitor, missed calls).  `loop.call_soon_threadsafe` for every event writes
to the loop's self-pipe and wakes the loop once per event, and each wake-up
is a GIL hand-over the engine thread may have to wait for: one incoming call
emits five to ten events within a millisecond.  `Handover.put` appends to a
list and wakes the loop only when the list was empty; the loop then delivers
everything that piled up by the time it runs, in order.

Woken at once, the loop still works beside the engine thread while that
thread is handling the very message that emitted the events (an INVITE:
routing, the outgoing INVITE, each pjsua2 call giving the GIL up and having
to win it back), or the next one: a phone on the LAN answers an INVITE with
180 within a millisecond or two, while the loop is still at the INVITE's
events.  `defer_for(thread, idle)` makes puts from the engine thread wait for
`flush()`, which the engine calls at the end of each loop turn
(`EngineThread.on_turn_end`), and `flush()` hands them over only when
`idle()` says the turn found nothing to do (its poll waited POLL_MS for no
message: the calls are quiet) or the oldest has waited `within` seconds (the
engine is never quiet: the loop must not fall behind).  The loop then works
while the engine waits.  Puts from any other thread wake the loop at once, and
take what is pending along, in order; so does `flush(force=True)`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger("appliance")


class Handover:
    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Any], None]):
        self.loop = loop
        self.deliver = deliver
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self._woken = False       # a drain is scheduled or running and will take what is pending
        self._deferred: threading.Thread | None = None
        self._idle: Callable[[], bool] | None = None
        self._within = 0.0
        self._since = 0.0         # when the oldest pending event was put (time.monotonic)
        self.wakeups = 0          # how many times the loop was woken (figures for `pbx bench calls`)
        self.events = 0

    def defer_for(self, thread: threading.Thread | None, idle: Callable[[], bool] | None = None,
                  within: float = 0.05) -> None:
        """Puts from this thread (started or not yet) wake the loop only at `flush()`; with `idle`, only
        at a flush when idle() is true or the oldest pending event has waited `within` seconds."""
        self._deferred = thread
        self._idle = idle
        self._within = within

    def put(self, event: Any) -> None:
        """Any thread: queue the event; wake the loop unless it is woken already or the put is deferred."""
        with self._lock:
            if not self._pending:
                self._since = time.monotonic()
            self._pending.append(event)
            if self._woken or (self._deferred is not None and self._deferred.ident == threading.get_ident()):
                return
            self._woken = True
        self._wake()

    def flush(self, force: bool = False) -> None:
        """Wake the loop for what deferred puts left pending: at the end of the engine's turn when it is
        idle (or the oldest waited too long), or at once with `force`."""
        with self._lock:
            if self._woken or not self._pending:
                return
            if (not force and self._idle is not None and not self._idle()
                    and time.monotonic() - self._since < self._within):
                return
            self._woken = True
        self._wake()

    def _wake(self) -> None:
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
                    self._woken = False
                    return
            self.events += len(batch)
            for event in batch:
                try:
                    self.deliver(event)
                except Exception:  # noqa: BLE001 - one subscriber's bug must not lose the others' events
                    log.exception("delivering an engine event failed: %r", event)
