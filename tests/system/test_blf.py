"""Busy lamps on a running appliance: a desk phone's lamp keys follow real calls and night mode, across a restart.

`pbx run` with two pjsua2 desk phones (101 and 102) registered through the
edge; a third phone, a small UDP client (tests/edge/test_blf.py's
`Subscriber`) with 102's credentials, subscribes to 101 and to the night key
`*28`.  102 calls 101: the lamp shows 101 ringing, then in the call, then
idle.  `pbx night on` lights the night key.  After a restart the lamps are
told their state again, without subscribing anew.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from appliance.cli import cli
from tests.conftest import free_port
from tests.edge.test_blf import Notify, Subscriber
from tests.engine import harness
from tests.night.office import YAML
from tests.system.running import Running
from tests.system.test_office import wait_for_bindings

pytestmark = pytest.mark.sip


def lamp_until(phone: Subscriber, call_id: str, lamp: str, most: int = 6) -> Notify:
    """The NOTIFYs of one subscription, in order, until its lamp shows `lamp`; versions only increase."""
    seen, last, others = [], None, []
    try:
        for _ in range(most):
            n = phone.notify(timeout=10)
            if n.request.call_id != call_id:
                others.append(n.request)  # another lamp's: left for its reader
                continue
            assert last is None or n.version > last
            last = n.version
            seen.append(n.lamp)
            if n.lamp == lamp:
                return n
        raise AssertionError(f"the lamp never showed {lamp!r}: {seen}")
    finally:
        phone.inbox[0:0] = others


def night(data, mode: str) -> None:
    res = subprocess.run([sys.executable, "-m", "appliance", "night", mode, "--permanent", "--data", str(data)],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stdout + res.stderr


def test_lamps_follow_a_call_and_night_mode_and_outlive_a_restart(tmp_path):
    (tmp_path / "office.yaml").write_text(YAML)
    data = tmp_path / "data"
    res = CliRunner().invoke(cli, ["config", "import", str(tmp_path / "office.yaml"), "--data", str(data)])
    assert res.exit_code == 0, res.output
    app = Running(data)
    phones: dict[str, harness.Proc] = {}
    lamps = Subscriber(app.sip, user="102", password="manager-pass-2")
    try:
        for ext, pw in (("101", "front-desk-1"), ("102", "manager-pass-2")):
            phones[ext] = harness.Proc([sys.executable, str(harness.AGENT), "--port", str(free_port()), "--name", ext,
                                        "--register", f"127.0.0.1:{app.sip}", "--password", pw], ext)
        for p in phones.values():
            p.expect(timeout=15, ev="reg", code=200)
        wait_for_bindings(data, {"101", "102"})

        # The door: no credentials, a challenge; another package, 489; a fetch (Expires: 0) ends at once.
        assert lamps.subscribe("101", authenticate=False).status == 401
        assert lamps.subscribe("101", event="message-summary").status == 489
        assert lamps.subscribe("101", expires=0).status == 200
        assert lamps.notify().state == "terminated;reason=timeout"

        assert lamps.subscribe("101", expires=3600).status == 200
        desk = lamps.call_id
        assert lamps.notify().lamp == "idle"
        assert lamps.subscribe("*28", expires=3600).status == 200
        key = lamps.call_id
        if lamps.notify().lamp != "idle":  # night by the schedule now
            night(data, "off")
            lamp_until(lamps, key, "idle")

        # 102 calls 101: ringing, answered, hung up.
        phones["102"].send(cmd="call", uri=f"sip:101@127.0.0.1:{app.sip}")
        caller = phones["102"].expect(ev="calling")["id"]
        incoming = phones["101"].expect(timeout=10, ev="incoming")["id"]
        ringing = lamp_until(lamps, desk, "early recipient")
        assert ringing.dialogs[0]["remote"].startswith("sip:102@")
        assert ringing.dialogs[0]["target"].startswith("sip:**101@")
        phones["101"].send(cmd="answer", id=incoming)
        phones["102"].expect(timeout=10, ev="state", id=caller, state="confirmed")
        lamp_until(lamps, desk, "confirmed recipient")
        phones["102"].send(cmd="hangup", id=caller)
        lamp_until(lamps, desk, "terminated")

        # The night key follows `pbx night on`.
        night(data, "on")
        lit = lamp_until(lamps, key, "confirmed")
        assert lit.entity.startswith("sip:*28@")

        # A restart: the subscriptions are kept, and each is told its state.
        app.stop()
        app = Running(data)
        told = {}
        for _ in range(2):
            n = lamps.notify(timeout=15)
            told[n.request.call_id] = n
        assert told[desk].lamp == "idle" and told[key].lamp == "confirmed"
        assert told[key].version > lit.version
        assert told[desk].state.startswith("active;expires=")
        assert not [line for line in app.output if "Traceback" in line]
    finally:
        lamps.close()
        for p in phones.values():
            p.stop()
        app.stop()
