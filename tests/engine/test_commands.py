"""`pbx calls` reads the call records the engine writes."""

from __future__ import annotations

from click.testing import CliRunner

from appliance.engine.commands import bench_calls, calls
from appliance.store import Store


def test_calls_lists_recent_calls(data_dir):
    with Store(data_dir) as st:
        st.record_call({"id": "c1", "started_at": "2025-05-01T09:00:00+00:00", "direction": "inbound",
                        "caller": "+380501234567", "dialled": "+380441234567", "outcome": "missed",
                        "wait_s": 20.0, "talk_s": 0.0,
                        "path": [{"t": 0, "kind": "trace", "what": "group", "text": "group 'Sales' rings 101"}]})
    out = CliRunner().invoke(calls, ["--data", str(data_dir), "--path"])
    assert out.exit_code == 0, out.output
    assert "+380501234567" in out.output and "missed" in out.output
    assert "group 'Sales' rings 101" in out.output


def test_no_calls(data_dir):
    out = CliRunner().invoke(calls, ["--data", str(data_dir)])
    assert out.exit_code == 0 and "no calls yet" in out.output


def test_commands_are_documented():
    for cmd in (calls, bench_calls):
        assert cmd.name == "calls" and "Example:" in (cmd.help or "")
