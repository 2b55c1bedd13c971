"""`*28` on a real desk phone: the night switch changes, the phone hears it said, the lights follow.

The appliance runs as `pbx run`; a pjsua2 desk phone registers through the
edge with digest auth, dials `*28` and records what it hears.  The spoken
confirmation is detected in that recording (speech, not silence), and
`pbx night status` and the night LED in `pbx status` show the change made
by that extension.
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from datetime import datetime

import pytest
from click.testing import CliRunner

from appliance.cli import cli
from tests.conftest import free_port
from tests.engine import harness
from tests.night.office import YAML
from tests.system.running import Running
from tests.system.test_office import loudness, wait_for_bindings

pytestmark = pytest.mark.sip


def night_status(data) -> dict:
    res = subprocess.run([sys.executable, "-m", "appliance", "night", "status", "--json", "--data", str(data)],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["kyiv"]


def test_star28_from_a_desk_phone_switches_night_mode_and_says_so(tmp_path):
    (tmp_path / "office.yaml").write_text(YAML)
    data = tmp_path / "data"
    res = CliRunner().invoke(cli, ["config", "import", str(tmp_path / "office.yaml"), "--data", str(data)])
    assert res.exit_code == 0, res.output
    app = Running(data)
    phone = None
    try:
        phone = harness.Proc([sys.executable, str(harness.AGENT), "--port", str(free_port()), "--name", "102",
                              "--register", f"127.0.0.1:{app.sip}", "--password", "manager-pass-2"], "102")
        phone.expect(timeout=15, ev="ready")
        phone.expect(timeout=15, ev="reg", code=200)
        wait_for_bindings(data, {"102"})
        before = night_status(data)
        heard = tmp_path / "heard.wav"
        phone.send(cmd="call", uri=f"sip:*28@127.0.0.1:{app.sip}", record=str(heard))
        cid = phone.expect(ev="calling")["id"]
        phone.expect(timeout=10, ev="state", id=cid, state="confirmed")
        # The engine says what it did, then hangs up.
        phone.expect(timeout=20, ev="state", id=cid, state="disconnected")
        after = night_status(data)
        assert after["mode"] != before["mode"] and after["how"] == "temporary"
        assert after["by"] == "extension 102"
        status = subprocess.run([sys.executable, "-m", "appliance", "status", "--json", "--data", str(data)],
                                capture_output=True, text=True, timeout=20)
        leds = json.loads(status.stdout)["leds"]
        assert leds["night"]["state"] == "blinking"  # a manual override is in force
        # What was said is the sentence spoken for this call, and the phone heard it
        # through: as long as the spoken prompt, loud where silence would be.
        said = data / "prompts" / "said" / "night-1.wav"
        with wave.open(str(said)) as w:
            said_seconds = w.getnframes() / w.getframerate()
        assert said_seconds > 1.0
        assert loudness(harness.finished_recording(heard), skip=0.3) > 300, "the phone heard no confirmation"
        with wave.open(str(heard)) as w:
            assert w.getnframes() / w.getframerate() >= said_seconds * 0.9
        assert not [line for line in app.output if "Traceback" in line]
        until = datetime.fromisoformat(after["until"])
        assert until > datetime.fromisoformat(after["since"])  # until the schedule's next boundary
    finally:
        if phone is not None:
            phone.stop()
        app.stop()
