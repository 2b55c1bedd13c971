"""Missed customer calls become cases, handled to the end, with real user agents through `pbx run`.

A provider user agent brings the customer's calls over an IP trunk; desk
phones register through the edge.  Nobody answers: a case opens, assigned to
the customer's personal manager, and the missed LED lights.  The same number
again joins that case.  A call another member answers makes none.  The
manager's desk phone calls the customer back over the trunk and they talk
12 s: the case closes as called back by that extension and the LED goes out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from appliance.cli import cli
from tests.conftest import free_port
from tests.system.running import Running, desk_phones_and_provider

pytestmark = pytest.mark.sip

PASSWORDS = {"101": "desk-101-pass", "102": "desk-102-pass"}
SHOP = "0441234567"
CUSTOMER = "+380501110001"


def office_yaml(provider_port: int) -> str:
    exts = "".join(f"  - {{number: \"{n}\", name: Desk {n}, password: {p}}}\n" for n, p in PASSWORDS.items())
    return (
        "version: 1\ntimezone: Europe/Kyiv\nextensions:\n" + exts +
        f"trunks:\n  - {{name: provider, kind: ip, host: 127.0.0.1, port: {provider_port}, "
        f"addresses: [127.0.0.1], numbers: [\"{SHOP}\"]}}\n"
        f"contacts:\n  - {{number: \"{CUSTOMER}\", name: Hardware store, manager: 102}}\n"
        "routing:\n"
        f"  routes:\n    - {{name: Shop, numbers: [\"{SHOP}\"], to: \"group:sales\"}}\n"
        "  groups:\n    sales: {name: Sales, strategy: ringall, members: [\"101\", \"102\"], ring_time: 4, "
        "on_fail: hangup}\n"
        "  unmatched: hangup\n")


def pbx(data, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "appliance", *args, "--data", str(data)],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stderr
    return res.stdout


def cases(data, *flags: str) -> list[dict]:
    return json.loads(pbx(data, "missed", *flags, "--json"))


def until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def missed_led(data) -> str:
    return json.loads(pbx(data, "status", "--json"))["leds"]["missed"]["state"]


def customer_calls(app, provider, number: str) -> int:
    provider.send(cmd="call", uri=f"sip:{SHOP}@127.0.0.1:{app.trunk}",
                  **{"from": f"<sip:{number}@127.0.0.1:{provider.port}>"})
    return provider.expect(ev="calling")["id"]


def test_a_missed_customer_call_is_a_case_until_the_manager_calls_back(tmp_path):
    provider_port = free_port()
    (tmp_path / "office.yaml").write_text(office_yaml(provider_port))
    data = tmp_path / "data"
    res = CliRunner().invoke(cli, ["config", "import", str(tmp_path / "office.yaml"), "--data", str(data)])
    assert res.exit_code == 0, res.output
    app = Running(data)
    procs = []
    try:
        phones, provider = desk_phones_and_provider(app, data, PASSWORDS, provider_port, procs)
        assert missed_led(data) == "off"

        # Nobody answers: a case, assigned to the customer's manager; the LED lights.
        pid = customer_calls(app, provider, CUSTOMER)
        provider.expect(timeout=10, ev="state", id=pid, state="disconnected")
        opened = until(lambda: cases(data))
        assert len(opened) == 1, opened
        case = opened[0]
        assert case["caller"] == CUSTOMER and case["assigned_to"] == "102" and case["count"] == 1
        assert until(lambda: missed_led(data) == "on")

        # The same number again, nobody answers: the same case, count 2.
        pid = customer_calls(app, provider, CUSTOMER)
        provider.expect(timeout=10, ev="state", id=pid, state="disconnected")
        assert until(lambda: cases(data)[0]["count"] == 2), cases(data)
        assert len(cases(data)) == 1

        # Another customer's call answered by 101: no case for it.
        for p in phones.values():
            p.clear()
        pid = customer_calls(app, provider, "+380501110002")
        inc = phones["101"].expect(timeout=10, ev="incoming")
        phones["101"].send(cmd="answer", id=inc["id"])
        provider.expect(timeout=10, ev="state", id=pid, state="confirmed")
        provider.send(cmd="hangup", id=pid)
        phones["101"].expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
        time.sleep(1.0)
        assert [c["caller"] for c in cases(data)] == [CUSTOMER]

        # The manager calls the customer back over the trunk; they talk 12 s.
        provider.clear()
        phones["102"].send(cmd="call", uri=f"sip:0501110001@127.0.0.1:{app.sip}")
        back = phones["102"].expect(ev="calling")["id"]
        inc = provider.expect(timeout=10, ev="incoming")
        provider.send(cmd="answer", id=inc["id"])
        phones["102"].expect(timeout=10, ev="state", id=back, state="confirmed")
        time.sleep(12)
        phones["102"].send(cmd="hangup", id=back)
        provider.expect(timeout=10, ev="state", id=inc["id"], state="disconnected")
        assert until(lambda: not cases(data)), cases(data)
        closed = [c for c in cases(data, "--all") if c["caller"] == CUSTOMER]
        assert closed[0]["status"] == "closed" and closed[0]["closed_by"] == "102", closed
        assert closed[0]["ended_how"] == "called back", closed
        assert until(lambda: missed_led(data) == "off")
    finally:
        for p in procs:
            p.stop()
        app.stop()
