"""`pbx bench edge`: authenticated REGISTERs per second through the edge, driven by sipp, and memory per binding.

The edge runs in this process on loopback with a temporary store; sipp runs
beside it.  Both share the machine's cores, as they would not in production
(where sipp's work is done by the phones), so the figure is a floor.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import click


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@click.command("edge")
@click.option("--registrations", default=20000, show_default=True, help="Authenticated REGISTERs to time.")
@click.option("--bindings", "binding_count", default=1000, show_default=True, help="Distinct extensions registered for the memory figure.")
@click.option("--rate", default=20000, show_default=True, help="sipp's target rate (registrations per second).")
def edge(registrations: int, binding_count: int, rate: int) -> None:
    """Time authenticated REGISTERs through the edge with sipp; report memory with N bindings.

    Example: pbx bench edge --registrations 20000 --bindings 1000
    """
    from appliance.edge import Edge, GuardPolicy
    from appliance.edge.sipp import run_register, sipp_path
    from appliance.store import Store

    if sipp_path() is None:
        raise click.ClickException("sipp not found: install the sip-tester package")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = Store(work / "data")
        users = [(str(1000 + i), f"pw{i:04d}") for i in range(binding_count)]
        store.add_extensions((user, f"Bench {user}", password) for user, password in users)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        # No flood limit: every REGISTER comes from one sipp address.
        policy = GuardPolicy(flood_requests=10**9)
        server = Edge(store, "127.0.0.1", 0, ("127.0.0.1", 9), policy=policy)
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        try:
            gc.collect()
            rss_before = _rss_kib()
            tracemalloc.start()
            heap_before = tracemalloc.get_traced_memory()[0]
            first = run_register(server.port, work, users, calls=binding_count, rate=min(rate, 2000))
            time.sleep(1.5)  # let the write-behind flush finish
            heap_after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            rss_after = _rss_kib()
            held = len(server.table)
            click.echo(f"bindings: {held} held ({first.successful} registrations ok, {first.failed} failed)")
            click.echo(f"memory with {held} bindings: process RSS {rss_after / 1024:.1f} MiB "
                       f"(+{(rss_after - rss_before) / 1024:.1f} MiB), Python heap +{(heap_after - heap_before) / 1024:.0f} KiB "
                       f"({(heap_after - heap_before) / max(held, 1):.0f} bytes a binding)")
            run = run_register(server.port, work, users, calls=registrations, rate=rate, limit=400)
            per_s = run.successful / run.seconds if run.seconds else 0.0
            click.echo(f"REGISTER with digest auth: {run.successful} ok, {run.failed} failed in {run.seconds:.2f} s "
                       f"= {per_s:,.0f} registrations/s (each is REGISTER, 401, REGISTER, 200)")
            if run.failed or run.returncode not in (0,):
                click.echo(f"sipp exit code {run.returncode}; tail of its output:\n{run.output[-800:]}")
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            store.close()
