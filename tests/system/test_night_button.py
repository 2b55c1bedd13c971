"""The night button, on gpiozero's MockFactory, switches how the next real customer call is routed.

`pbx run` serves the office (desk phones registered through the edge, a
provider on an IP trunk).  The hardware part runs here, in the test process,
as it runs inside the appliance: a control-socket client with a mock pin
factory, so the test can drive the button's pin.  A short press switches the
shop's night switch until the schedule's next boundary, a long press for
good; after each, the provider calls the shop and the call goes where the
night switch now says (day: the office's phones ring; night: voicemail
answers), and the night LED shows the override.
"""

from __future__ import annotations

import subprocess
import sys
import time
import json

import pytest
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory

from appliance.cli import cli
from appliance.control import socket_path
from appliance.hw import Hardware
from appliance.hw.config import HwConfig
from tests.conftest import free_port
from tests.night.office import YAML
from tests.system.running import Running, desk_phones_and_provider

pytestmark = pytest.mark.sip

PASSWORDS = {"101": "front-desk-1", "102": "manager-pass-2"}


def night_of(data) -> dict:
    res = subprocess.run([sys.executable, "-m", "appliance", "night", "status", "--json", "--data", str(data)],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["kyiv"]


def eventually(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def customer_call(app, provider, phones) -> str:
    """The provider calls the shop; "day" if the office's phones rang, "night" if voicemail answered."""
    for p in (provider, *phones.values()):
        p.clear()
    provider.send(cmd="call", uri=f"sip:0441234567@127.0.0.1:{app.trunk}",
                  **{"from": f"<sip:+380501239999@127.0.0.1:{provider.port}>"})
    pid = provider.expect(ev="calling")["id"]
    deadline = time.monotonic() + 8
    where = None
    while where is None and time.monotonic() < deadline:
        if all(p.all(ev="incoming") for p in phones.values()):
            where = "day"
        elif provider.all(ev="state", id=pid, state="confirmed"):
            where = "night"
        time.sleep(0.05)
    provider.send(cmd="hangup", id=pid)
    provider.expect(ev="state", id=pid, state="disconnected")
    for p in phones.values():
        p.send(cmd="hangup", id="all")
    time.sleep(0.3)
    return where


def test_the_button_changes_where_the_next_customer_call_goes(tmp_path):
    provider_port = free_port()
    text = YAML.replace("routing:\n", "trunks:\n  - {name: provider, kind: ip, host: 127.0.0.1, port: %d, "
                                      "addresses: [127.0.0.1], numbers: [\"0441234567\"]}\nrouting:\n" % provider_port, 1)
    (tmp_path / "office.yaml").write_text(text)
    data = tmp_path / "data"
    res = CliRunner().invoke(cli, ["config", "import", str(tmp_path / "office.yaml"), "--data", str(data)])
    assert res.exit_code == 0, res.output
    app = Running(data)
    procs = []
    hw = None
    try:
        phones, provider = desk_phones_and_provider(app, data, PASSWORDS, provider_port, procs)

        hw = Hardware(HwConfig(hold_seconds=0.5, bounce_ms=20), socket_path(data), factory=MockFactory(), refresh=0.2)
        hw.start()
        pin = hw.button.device.pin
        before = night_of(data)["mode"]
        assert customer_call(app, provider, phones) == before

        # A short press: the other mode until the schedule's next boundary.
        pin.drive_low()
        time.sleep(0.1)
        pin.drive_high()
        eventually(lambda: night_of(data)["how"] == "temporary")
        state = night_of(data)
        assert state["mode"] != before and state["by"] == "button"
        assert hw.leds()["night"]["state"] == "blinking"  # a manual override is in force
        assert customer_call(app, provider, phones) == state["mode"]

        # A long press: that mode for good.
        time.sleep(0.1)
        pin.drive_low()
        eventually(lambda: night_of(data)["how"] == "permanent", timeout=5)
        pin.drive_high()
        assert customer_call(app, provider, phones) == state["mode"]
        # Another long press: back to the schedule.
        time.sleep(0.1)
        pin.drive_low()
        eventually(lambda: night_of(data)["how"] == "auto", timeout=5)
        pin.drive_high()
        assert customer_call(app, provider, phones) == before
    finally:
        if hw is not None:
            hw.stop()
        for p in procs:
            p.stop()
        app.stop()
