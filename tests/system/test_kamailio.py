"""Kamailio in front of two appliances: the configuration in docs/examples/kamailio, tested.

A provider user agent sends every customer call to Kamailio's one address;
its dispatcher spreads them round robin over two `pbx run` appliances' trunk
ports.  One appliance is killed: the next calls all go to the other.  Every
call has its record on the appliance that took it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from appliance.configfile import import_config
from appliance.store import Store
from tests.conftest import free_port
from tests.engine import harness
from tests.system.running import Running

CFG = Path(__file__).resolve().parents[2] / "docs" / "examples" / "kamailio" / "kamailio.cfg"
SHOP = "0441234567"
SPREAD, AFTER_KILL = 20, 5

pytestmark = pytest.mark.skipif(shutil.which("kamailio") is None,
                                reason="kamailio is not installed (scripts/setup --test installs it)")


def config(provider_port: int) -> str:
    return textwrap.dedent(f"""\
        version: 1
        trunks:
          - {{name: provider, kind: ip, host: 127.0.0.1, port: {provider_port}, addresses: [127.0.0.1],
              numbers: ["{SHOP}"]}}
        routing:
          routes:
            - {{name: Shop, numbers: ["{SHOP}"], to: announcement:welcome}}
          announcements:
            welcome: {{name: Welcome, prompt: welcome, then: hangup}}
          unmatched: hangup
        """)


def kamailio_answers(port: int, timeout: float = 10.0) -> None:
    """Until Kamailio answers an OPTIONS on its port (it is up and routing)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        me = s.getsockname()[1]
        while time.monotonic() < deadline:
            s.sendto((f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
                      f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKtest{time.monotonic_ns()}\r\n"
                      "Max-Forwards: 70\r\nFrom: <sip:test@127.0.0.1>;tag=t\r\nTo: <sip:127.0.0.1>\r\n"
                      f"Call-ID: kam-up-{me}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(),
                     ("127.0.0.1", port))
            try:
                if s.recv(2048).startswith(b"SIP/2.0 200"):
                    return
            except OSError:
                pass
    raise AssertionError(f"kamailio did not answer on port {port} within {timeout} s")


def ended_calls(data) -> int:
    with Store(data) as store:
        return sum(1 for r in store.recent_calls(100) if r["outcome"] not in ("in progress",))


def until_records(data, count: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while (n := ended_calls(data)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


@pytest.fixture
def farm(tmp_path):
    provider_port, kam_port = free_port(), free_port()
    datas = [tmp_path / "a", tmp_path / "b"]
    for d in datas:
        with Store(d) as store:
            import_config(store, config(provider_port))
    apps, procs, kam = [], [], None
    try:
        for d in datas:
            apps.append(Running(d))
        listing = tmp_path / "dispatcher.list"
        listing.write_text("".join(f"1 sip:127.0.0.1:{a.trunk}\n" for a in apps))
        kam = subprocess.Popen(["kamailio", "-DD", "-E", "-m", "32", "-M", "4", "-f", str(CFG),
                                "-A", f"LISTEN=udp:127.0.0.1:{kam_port}", "-A", f'DS_LIST="{listing}"'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        kamailio_answers(kam_port)
        provider = harness.agent(provider_port, "provider")
        provider.port = provider_port
        procs.append(provider)
        yield apps, datas, provider, kam_port
    finally:
        for p in procs:
            p.stop()
        if kam is not None:
            kam.terminate()
            try:
                kam.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kam.kill()
                kam.wait(timeout=5)
        for a in apps:
            if a.proc.poll() is None:
                a.stop()


def one_call(provider, kam_port: int, n: int) -> None:
    """A customer's call through Kamailio: answered (by the appliance's announcement), then hung up."""
    provider.send(cmd="call", uri=f"sip:{SHOP}@127.0.0.1:{kam_port}",
                  **{"from": f"<sip:+38050123{n:04d}@127.0.0.1:{provider.port}>"})
    cid = provider.expect(ev="calling")["id"]
    provider.expect(timeout=10, ev="state", id=cid, state="confirmed")
    provider.send(cmd="hangup", id=cid)
    provider.expect(timeout=10, ev="state", id=cid, state="disconnected")


@pytest.mark.sip
def test_kamailio_spreads_customer_calls_and_fails_over_when_an_appliance_dies(farm):
    apps, datas, provider, kam_port = farm
    for n in range(SPREAD):
        one_call(provider, kam_port, n)
    a, b = until_records(datas[0], 1), until_records(datas[1], 1)
    a, b = until_records(datas[0], SPREAD - b), until_records(datas[1], SPREAD - a)
    assert a + b == SPREAD and a >= SPREAD // 4 and b >= SPREAD // 4, (a, b)

    apps[1].proc.kill()  # no goodbye: Kamailio finds out from the silence
    apps[1].proc.wait(timeout=10)
    t0 = time.monotonic()
    for n in range(SPREAD, SPREAD + AFTER_KILL):
        one_call(provider, kam_port, n)
    took = time.monotonic() - t0
    assert until_records(datas[0], a + AFTER_KILL) == a + AFTER_KILL, "a call after the kill has no record"
    assert ended_calls(datas[1]) == b
    assert took < 15, took
    print(f"spread {a}/{b}; {AFTER_KILL} calls after the kill took {took:.2f} s")
