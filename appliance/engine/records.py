"""Writing what calls did: call records, missed calls, events and strategy state.

The engine thread never waits on the disk: it hands writes to `Recorder`,
a thread with its own `Store` connection (a sqlite connection belongs to one
thread).  Each write is its own transaction, committed before the next one
is taken (WAL, synchronous=NORMAL: an application crash loses nothing that
was committed).  `flush()` waits until everything queued so far is written.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from appliance.store import Store

log = logging.getLogger("appliance.engine.records")

_STOP = object()


class Recorder:
    def __init__(self, path: str | Path):
        self.path = path
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="engine-records", daemon=True)
        self._ready: Future = Future()

    def start(self) -> None:
        self._thread.start()
        self._ready.result(10)

    def submit(self, fn: Callable[[Store], Any]) -> None:
        self._q.put(fn)

    def flush(self, timeout: float = 5.0) -> None:
        fut: Future = Future()
        self._q.put(fut)
        fut.result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join(timeout)

    def _main(self) -> None:
        store = Store(self.path)
        self._ready.set_result(True)
        try:
            while True:
                item = self._q.get()
                if item is _STOP:
                    return
                if isinstance(item, Future):
                    item.set_result(True)
                    continue
                try:
                    item(store)
                except Exception:  # noqa: BLE001 - one bad row must not stop the records
                    log.exception("could not write a record")
        finally:
            store.close()
