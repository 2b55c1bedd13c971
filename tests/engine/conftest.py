"""A small office on loopback: the engine, three desk phones, a provider, a mobile.

One set of processes per test module (starting a pjsua2 process costs about a
second); tests switch routing with the runner's "router" command and put
every peer back in its default mode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.store import Store
from tests.conftest import free_port
from tests.engine import harness, routes
from tests.peers.registrar import Registrar

PHONES = ("101", "102", "103")


@dataclass
class Office:
    data: Path
    engine: harness.Proc
    phones: dict[str, harness.Proc]
    provider: harness.Proc
    mobile: harness.Proc
    sip_port: int
    trunk_port: int
    provider_port: int
    mobile_port: int
    registrar: Registrar

    def route(self, name: str) -> None:
        self.engine.send(cmd="router", factory=f"tests.engine.routes:{name}")
        self.engine.expect(kind="done", cmd="router")

    def reset(self) -> None:
        for p in (*self.phones.values(), self.provider, self.mobile):
            p.send(cmd="hangup", id="all")
            p.send(cmd="mode", mode="ring")
        # The engine lets go of its calls first; the agents hear their ends a moment after.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.engine.send(cmd="stats")
            if self.engine.expect(kind="stats")["sessions"] == 0:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        for p in (self.engine, *self.phones.values(), self.provider, self.mobile):
            p.clear()

    def ip_call(self, number: str = routes.SALES_NUMBER, caller: str = "+380501234567") -> int:
        """The provider calls `number` over the IP trunk; returns the provider's call id."""
        self.provider.send(cmd="call", uri=f"sip:{number}@127.0.0.1:{self.trunk_port}",
                           **{"from": f'"Customer" <sip:{caller}@127.0.0.1:{self.provider_port}>'})
        return self.provider.expect(ev="calling")["id"]

    def phone_call(self, ext: str, number: str) -> int:
        """A desk phone dials `number`, relayed as the edge would (X-PBX-Extension)."""
        p = self.phones[ext]
        p.send(cmd="call", uri=f"sip:{number}@127.0.0.1:{self.sip_port}", headers=harness.edge_headers(ext))
        return p.expect(ev="calling")["id"]

    def store(self) -> Store:
        return Store(self.data)

    def flush(self) -> None:
        self.engine.send(cmd="flush")
        self.engine.expect(kind="done", cmd="flush")


def make_office(tmp: Path, engine_settings: dict | None = None) -> Office:
    data = tmp / "data"
    sip_port, trunk_port, provider_port, mobile_port, reg_port = (free_port() for _ in range(5))
    phone_ports = {ext: free_port() for ext in PHONES}
    registrar = Registrar(reg_port, "pbxuser", "s3cret")
    with Store(data) as store:
        for ext in PHONES:
            store.add_extension(ext, f"Desk {ext}", "pw" + ext)
            store.db["bindings"].insert({
                "extension": ext, "contact": f"sip:{ext}@127.0.0.1:{phone_ports[ext]}",
                "source_host": "127.0.0.1", "source_port": phone_ports[ext], "transport": "udp",
                "q": 1.0, "expires_at": time.time() + 86400, "registered_at": time.time()})
        store.set_setting("engine", {"confirm_seconds": 3, **(engine_settings or {})})
        store.db["extensions"].update("101", {"dial_rules": '["local", "mobile", "international"]'})
        store.put_trunk({"name": "ipprov", "kind": "ip", "host": "127.0.0.1", "port": mobile_port,
                         "addresses": ["127.0.0.1"], "numbers": [routes.SALES_NUMBER],
                         "caller_id": "+380441234567", "pass_caller_id": 1})
        store.put_trunk({"name": "regprov", "kind": "register", "host": "127.0.0.1", "port": reg_port,
                         "username": "pbxuser", "password": "s3cret", "numbers": [routes.OFFICE_NUMBER],
                         "register_expires": 120})
    phones = {}
    procs: list[harness.Proc] = []
    try:
        for ext in PHONES:
            phones[ext] = harness.agent(phone_ports[ext], ext)
            procs.append(phones[ext])
        provider = harness.agent(provider_port, "provider")
        procs.append(provider)
        mobile = harness.agent(mobile_port, "mobile")
        procs.append(mobile)
        engine = harness.engine(data, sip_port, trunk_port, "tests.engine.routes:ringall")
    except BaseException:
        for p in procs:
            p.p.kill()
        registrar.stop()
        raise
    return Office(data, engine, phones, provider, mobile, sip_port, trunk_port, provider_port, mobile_port,
                  registrar)


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    o = make_office(tmp_path_factory.mktemp("office"))
    yield o
    for p in (o.engine, *o.phones.values(), o.provider, o.mobile):
        p.stop()
    o.registrar.stop()


@pytest.fixture
def world(office):
    office.reset()
    yield office
    office.reset()
