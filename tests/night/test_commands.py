"""`pbx night`: on the store when the appliance is not running, through its control socket when it is."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest
from click.testing import CliRunner

from appliance.cli import cli
from appliance.night.commands import night
from tests.night.office import YAML
from tests.system.running import Running


@pytest.fixture
def office_dir(tmp_path):
    """An appliance's data with the office's configuration imported (one night switch, kyiv)."""
    (tmp_path / "office.yaml").write_text(YAML)
    data = tmp_path / "data"
    res = CliRunner().invoke(cli, ["config", "import", str(tmp_path / "office.yaml"), "--data", str(data)])
    assert res.exit_code == 0, res.output
    return data


def pbx_night(data, *args: str) -> dict:
    res = CliRunner().invoke(night, [*args, "--json", "--data", str(data)])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_night_on_off_auto_on_the_store(office_dir):
    status = pbx_night(office_dir, "status")["kyiv"]
    assert status["how"] == "auto" and status["by"] == "schedule"
    other = "day" if status["mode"] == "night" else "night"
    verb = "on" if other == "night" else "off"
    changed = pbx_night(office_dir, verb, "--permanent")["kyiv"]
    assert (changed["mode"], changed["how"], changed["by"], changed["until"]) == (other, "permanent", "command line", None)
    assert pbx_night(office_dir, "status", "--switch", "kyiv")["kyiv"]["mode"] == other
    back = pbx_night(office_dir, "auto")["kyiv"]
    assert (back["mode"], back["how"]) == (status["mode"], "auto")


def test_night_status_in_words_and_refusals(office_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(night, ["status", "--data", str(office_dir)])
    assert res.exit_code == 0
    assert res.output.startswith("kyiv (Kyiv shop): ") and "automatic (schedule 'hours') until " in res.output
    res = runner.invoke(night, ["on", "--switch", "lviv", "--data", str(office_dir)])
    assert res.exit_code == 1 and "no night switch 'lviv' (switches: kyiv)" in res.output
    res = runner.invoke(night, ["status", "--data", str(tmp_path / "fresh")])
    assert res.exit_code == 1 and "the routing has no night switch" in res.output


@pytest.mark.sip
def test_night_commands_reach_the_running_appliance_and_status_shows_the_leds(office_dir):
    app = Running(office_dir)
    try:
        before = pbx_night(office_dir, "status")["kyiv"]
        verb = "off" if before["mode"] == "night" else "on"
        after = pbx_night(office_dir, verb)["kyiv"]
        assert after["how"] == "temporary" and after["by"] == "command line"
        assert datetime.fromisoformat(after["until"]) == datetime.fromisoformat(before["until"])  # the next boundary
        status = subprocess.run([sys.executable, "-m", "appliance", "status", "--json", "--data", str(office_dir)],
                                capture_output=True, text=True, timeout=10)
        assert status.returncode == 0, status.stderr
        st = json.loads(status.stdout)
        assert st["night"]["kyiv"]["how"] == "temporary"
        assert set(st["leds"]) == {"ready", "trunk", "calls", "night", "missed"}
        assert st["leds"]["night"]["state"] == "blinking"
        assert st["leds"]["ready"]["state"] == "on"
        assert st["leds"]["night"]["pin"] == "GPIO23"
    finally:
        app.stop()
    assert app.proc.returncode == 0
    # The state outlives the appliance: the store says the same without it.
    again = pbx_night(office_dir, "status")["kyiv"]
    assert (again["mode"], again["how"], again["since"]) == (after["mode"], "temporary", after["since"])
