"""sipp (sip-tester) registers through the edge with digest auth; bindings land in the store."""

import time

import pytest
from click.testing import CliRunner

from appliance.edge.commands import phones
from appliance.edge.sipp import run_register, sipp_path
from appliance.store import Store

pytestmark = pytest.mark.sip


def test_sipp_register_scenario_with_digest(running, tmp_path):
    assert sipp_path(), "sipp is part of the test setup (apt-get install sip-tester)"
    users = [("201", "secret"), ("202", "hunter22")]
    run = run_register(running.edge.port, tmp_path, users, calls=20, rate=200)
    assert (run.successful, run.failed, run.returncode) == (20, 0, 0), run.output
    assert {b.extension for b in running.edge.bindings()} == {"201", "202"}
    # A wrong password in the scenario fails the same way for every call.
    bad = run_register(running.edge.port, tmp_path / ".." / tmp_path.name, [("201", "nope")], calls=1, rate=10, timeout=10)
    assert bad.successful == 0 and bad.failed == 1


def test_pbx_phones_lists_bindings(running, tmp_path):
    run = run_register(running.edge.port, tmp_path, [("201", "secret")], calls=1, rate=10)
    assert run.successful == 1
    time.sleep(0.4)
    result = CliRunner().invoke(phones, ["--data", str(running.data_dir)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["EXTENSION", "CONTACT", "SOURCE", "USER", "AGENT", "EXPIRES", "IN"]
    assert lines[1].startswith("201 ") and "udp:127.0.0.1:" in lines[1] and "sipp-bench" in lines[1]
    assert lines[1].rstrip().endswith(" s")


def test_pbx_phones_with_none(tmp_path):
    Store(tmp_path).close()
    result = CliRunner().invoke(phones, ["--data", str(tmp_path)])
    assert result.output.strip() == "No phones registered."
