import asyncio
import threading
import time

import pytest

from appliance.edge import Edge, GuardPolicy
from appliance.store import Store
from tests.peers.sipclient import FakeEngine


class RunningEdge:
    """An Edge on its own event loop in a thread, so tests can use blocking sockets."""

    def __init__(self, data_dir, engine_addr, **kwargs):
        self.data_dir = data_dir
        self.engine_addr = engine_addr
        self.kwargs = kwargs
        self.events: list = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.store = None
        self.edge = None

    def call(self, fn, *args):
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def start(self, port=0):
        self.store = Store(self.data_dir)
        self.edge = Edge(self.store, "127.0.0.1", port, self.engine_addr, on_event=self.events.append, flush_interval=0.1, **self.kwargs)
        asyncio.run_coroutine_threadsafe(self.edge.start(), self.loop).result(5)
        return self.edge.port

    def stop(self):
        if self.edge is not None:
            asyncio.run_coroutine_threadsafe(self.edge.stop(), self.loop).result(5)
            self.store.close()
            self.edge = None

    def close(self):
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def engine():
    e = FakeEngine()
    yield e
    e.close()


@pytest.fixture
def data_dir(tmp_path):
    with Store(tmp_path) as store:
        store.add_extension("201", "Front desk", "secret")
        store.add_extension("202", "Sales", "hunter22")
    return tmp_path


@pytest.fixture
def running(data_dir, engine):
    r = RunningEdge(data_dir, engine.addr, policy=GuardPolicy(flood_requests=200))
    r.start()
    yield r
    r.close()


def until(predicate, timeout=5.0, step=0.05):
    """Poll until `predicate()` is truthy; returns its value, or the last falsy one after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)
