"""Two shops' appliances linked by a branch trunk, each a real `pbx run` on loopback.

Shop 1 has desk phones 101 and 102 and a provider; shop 2 has desk phone 201.
Each appliance's branch trunk points at the other's trunk port with the same
shared secret; shop 1 knows 200-299 are shop 2's, shop 2 knows 100-199 are
shop 1's.  Calls between them carry the signed X-PBX-Branch header, and each
side pings the other with OPTIONS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from appliance.store import Store
from tests.conftest import free_port
from tests.engine import harness
from tests.system.running import Running
from tests.system.test_auto_callback import Events
from tests.system.test_office import wait_for_bindings

SHOP = "0441234567"          # shop 1's number: its sales group, with 201 in shop 2 as a member
DIRECT = "0441234500"        # shop 1's number for extension 201 in shop 2
SECRET = "shared-branch-secret-1234"
PASSWORDS = {"101": "desk-101-pass", "102": "desk-102-pass", "201": "desk-201-pass"}


def shop1_config(shop2_trunk: int, provider_port: int) -> str:
    return textwrap.dedent(f"""\
        version: 1
        extensions:
          - {{number: 101, name: Desk 101, password: {PASSWORDS['101']}}}
          - {{number: 102, name: Desk 102, password: {PASSWORDS['102']}}}
        trunks:
          - {{name: provider, kind: ip, host: 127.0.0.1, port: {provider_port}, addresses: [127.0.0.1],
              numbers: ["{SHOP}", "{DIRECT}"]}}
          - {{name: shop2, kind: branch, host: 127.0.0.1, port: {shop2_trunk}, secret: {SECRET},
              extensions: "200-299"}}
        routing:
          routes:
            - {{name: Shop, numbers: ["{SHOP}"], to: group:sales}}
            - {{name: Direct, numbers: ["{DIRECT}"], to: branch:shop2/201}}
          groups:
            sales: {{name: Sales, strategy: ringall, members: [101, shop2/201], ring_time: 20, on_fail: hangup}}
          branches:
            shop2: {{name: Shop 2, ring_time: 20, on_fail: 102}}
          unmatched: hangup
        """)


def shop2_config(shop1_trunk: int) -> str:
    return textwrap.dedent(f"""\
        version: 1
        extensions:
          - {{number: 201, name: Desk 201, password: {PASSWORDS['201']}}}
        trunks:
          - {{name: shop1, kind: branch, host: 127.0.0.1, port: {shop1_trunk}, secret: {SECRET},
              extensions: "100-199"}}
        routing:
          unmatched: hangup
        """)


def pbx(data, *args: str, stdin: str = "") -> str:
    res = subprocess.run([sys.executable, "-m", "appliance", *args, "--data", str(data)], input=stdin,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout


def phone(app: Running, ext: str) -> harness.Proc:
    return harness.Proc([sys.executable, str(harness.AGENT), "--port", str(free_port()), "--name", ext,
                         "--register", f"127.0.0.1:{app.sip}", "--password", PASSWORDS[ext]], ext)


def record_of(data, call_id: str, timeout: float = 5.0) -> dict:
    """The call's record once it is complete (the recorder writes it behind the call)."""
    deadline = time.monotonic() + timeout
    with Store(data) as store:
        while True:
            rows = [r for r in store.recent_calls(20) if r["id"] == call_id and r["outcome"] != "in progress"]
            if rows:
                return rows[0]
            assert time.monotonic() < deadline, f"no record of call {call_id}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def shops(tmp_path_factory):
    data1, data2 = tmp_path_factory.mktemp("shop1") / "data", tmp_path_factory.mktemp("shop2") / "data"
    provider_port = free_port()
    apps, procs, events = [], [], []
    try:
        app1 = Running(data1)
        apps.append(app1)
        app2 = Running(data2)
        apps.append(app2)
        ev1, ev2 = Events(data1), Events(data2)
        events += [ev1, ev2]
        # The configuration names the other shop's trunk port, known once both run.
        pbx(data2, "config", "import", "-", stdin=shop2_config(app1.trunk))
        pbx(data1, "config", "import", "-", stdin=shop1_config(app2.trunk, provider_port))
        ev1.expect(kind="TrunkRegistered", trunk="shop2", timeout=10)
        ev2.expect(kind="TrunkRegistered", trunk="shop1", timeout=10)
        phones = {"101": phone(app1, "101"), "102": phone(app1, "102"), "201": phone(app2, "201")}
        procs += phones.values()
        provider = harness.agent(provider_port, "provider")
        provider.port = provider_port
        procs.append(provider)
        for p in phones.values():
            p.expect(timeout=15, ev="reg", code=200)
        wait_for_bindings(data1, {"101", "102"})
        wait_for_bindings(data2, {"201"})
        yield app1, app2, data1, data2, ev1, ev2, phones, provider
    finally:
        for e in events:
            e.close()
        for p in procs:
            p.stop()
        for a in apps:
            if a.proc.poll() is None:
                a.stop()


def customer_calls(app, provider, number: str) -> int:
    provider.send(cmd="call", uri=f"sip:{number}@127.0.0.1:{app.trunk}",
                  **{"from": f"<sip:+380501234567@127.0.0.1:{provider.port}>"})
    return provider.expect(ev="calling")["id"]


@pytest.mark.sip
def test_a_desk_phone_dials_a_colleague_in_the_other_shop_by_extension(shops, tmp_path):
    app1, app2, data1, data2, ev1, ev2, phones, provider = shops
    phones["101"].send(cmd="call", uri=f"sip:201@127.0.0.1:{app1.sip}")
    cid = phones["101"].expect(ev="calling")["id"]
    inc = phones["201"].expect(timeout=10, ev="incoming")
    assert "sip:101@" in inc["remote"], inc  # the caller's own extension, as the other shop shows it
    phones["201"].send(cmd="answer", id=inc["id"])
    phones["101"].expect(timeout=10, ev="state", id=cid, state="confirmed")
    at_101, at_201 = harness.exchange_tones(phones["101"], cid, phones["201"], inc["id"], tmp_path)
    phones["101"].send(cmd="hangup", id=cid)
    phones["201"].expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
    assert harness.goertzel(harness.finished_recording(at_101), 1400) > 0.3 > harness.goertzel(harness.finished_recording(at_101), 600)
    assert harness.goertzel(harness.finished_recording(at_201), 600) > 0.3 > harness.goertzel(harness.finished_recording(at_201), 1400)

    ended1 = ev1.expect(kind="CallEnded", timeout=10)
    ended2 = ev2.expect(kind="CallEnded", timeout=10)
    assert ended1["answered_by"] == "shop2/201" and ended2["answered_by"] == "201"
    mine, theirs = record_of(data1, ended1["call_id"]), record_of(data2, ended2["call_id"])
    assert (mine["direction"], mine["extension"], mine["outcome"]) == ("internal", "101", "answered")
    assert (theirs["direction"], theirs["caller"], theirs["trunk"]) == ("internal", "101", "shop1")


@pytest.mark.sip
def test_a_group_with_members_in_both_shops_rings_both(shops):
    app1, app2, data1, data2, ev1, ev2, phones, provider = shops
    for p in (*phones.values(), provider):
        p.clear()
    cid = customer_calls(app1, provider, SHOP)
    at_101 = phones["101"].expect(timeout=10, ev="incoming")
    at_201 = phones["201"].expect(timeout=10, ev="incoming")
    assert "380501234567" in at_201["remote"], at_201  # the customer's number reaches the other shop
    phones["201"].send(cmd="answer", id=at_201["id"])
    provider.expect(timeout=10, ev="state", id=cid, state="confirmed")
    phones["101"].expect(timeout=10, ev="state", id=at_101["id"], state="disconnected")
    provider.send(cmd="hangup", id=cid)
    phones["201"].expect(timeout=10, ev="state", id=at_201["id"], state="disconnected")
    ended = ev1.expect(kind="CallEnded", answered_by="shop2/201", timeout=10)
    row = record_of(data1, ended["call_id"])
    assert (row["direction"], row["trunk"], row["outcome"]) == ("inbound", "provider", "answered")


@pytest.mark.sip
def test_with_the_other_shop_stopped_its_calls_go_to_the_fallback_within_seconds(shops):
    app1, app2, data1, data2, ev1, ev2, phones, provider = shops
    for p in (*phones.values(), provider):
        p.clear()
    t0 = time.monotonic()
    app2.stop()
    ev1.expect(kind="TrunkRegistrationFailed", trunk="shop2", timeout=15)
    down_after = time.monotonic() - t0
    assert down_after < 8, down_after
    # The trunk LED says so (it follows the trunk events), and so does the trunk's status.
    trunk_led = json.loads(pbx(data1, "status", "--json"))["leds"].get("trunk")
    if trunk_led is not None:
        assert trunk_led["state"] == "blinking" and "shop2" in trunk_led["means"], trunk_led
    # The customer's call for 201 goes to the branch's on_fail: extension 102 in this shop.
    cid = customer_calls(app1, provider, DIRECT)
    inc = phones["102"].expect(timeout=10, ev="incoming")
    phones["102"].send(cmd="answer", id=inc["id"])
    provider.expect(timeout=10, ev="state", id=cid, state="confirmed")
    provider.send(cmd="hangup", id=cid)
    phones["102"].expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
    ended = ev1.expect(kind="CallEnded", answered_by="102", timeout=10)
    path = record_of(data1, ended["call_id"])["path"]
    assert any("unreachable" in (e.get("text") or "") for e in path), path
    # The group rings only this shop's member now.
    cid = customer_calls(app1, provider, SHOP)
    inc = phones["101"].expect(timeout=10, ev="incoming")
    provider.send(cmd="hangup", id=cid)
    phones["101"].expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
