"""`pbx trace` on the example configuration shipped for owners, and `pbx bench routing`."""

import json
import re

import pytest
from click.testing import CliRunner

from appliance.tracecmd import bench_routing, trace

from .helpers import EXAMPLES

OFFICE = str(EXAMPLES / "office.yaml")


def run(*args):
    result = CliRunner().invoke(trace, ["--config", OFFICE, *args])
    assert result.exit_code == 0, result.output
    return result.output


def run_json(*args):
    return json.loads(run(*args, "--json"))


def test_after_hours_known_customer_then_duty_mobile():
    out = run("--caller", "0671234567", "--dialled", "0441234567", "--at", "2025-03-10T20:15")
    lines = out.splitlines()
    assert lines[0] == "Call from +380671234567 to +380441234567, Mon 2025-03-10 20:15 Europe/Kyiv"
    assert "personal manager of Hardware store Obolon is extension 102 (Sales 2)" in out
    assert ("→ Mon 20:15 Europe/Kyiv is outside 'Office hours': night switch 'Office' is night "
            "→ duty roster 'After hours'") in lines
    assert "→ duty mobile +380671110001 ('After hours', 2025-03-10) for 30 s, confirm with a key" in lines
    assert lines[-1] == "Result: voicemail (voicemail box 'Sales')"


def test_json_has_steps_with_kinds():
    doc = run_json("--caller", "0671234567", "--dialled", "0441234567", "--at", "2025-03-10T20:15")
    kinds = [s["kind"] for s in doc["steps"]]
    assert kinds == ["route", "manager", "outcome", "night", "duty", "outcome", "voicemail"]
    assert doc["steps"][4]["number"] == "+380671110001"
    assert doc["result"] == {"kind": "voicemail", "box": "sales", "text": "voicemail box 'Sales'"}
    assert doc["at"] == "2025-03-10T20:15:00+02:00"


def test_day_menu_tiers_with_busy_and_unregistered():
    doc = run_json("--caller", "0509999999", "--dialled", "0441234567", "--at", "2025-03-10T11:00",
                   "--press", "1", "--busy", "101", "--unregistered", "102")
    group = next(s for s in doc["steps"] if s["kind"] == "group")
    assert group["skipped"] == {"101": "busy", "102": "unregistered"}
    assert [(l["target"], l["start"]) for l in group["legs"]] == [("103", 0), ("+380501112233", 15)]


def test_answer_ends_the_trace():
    doc = run_json("--caller", "0509999999", "--dialled", "0441234567", "--at", "2025-03-10T11:00",
                   "--press", "2", "--answer", "202")
    assert doc["result"]["kind"] == "answered" and doc["result"]["by"] == "202"
    assert any(s["kind"] == "queue" for s in doc["steps"])


def test_night_switch_by_hand_and_holiday():
    doc = run_json("--caller", "0509999999", "--dialled", "0441234567", "--at", "2025-03-10T11:00", "--night", "on")
    night = next(s for s in doc["steps"] if s["kind"] == "night")
    assert night["night"] is True and night["why"] == "switched by hand"
    doc = run_json("--caller", "0509999999", "--dialled", "0441234567", "--at", "2026-01-01T11:00")
    assert next(s for s in doc["steps"] if s["kind"] == "night")["night"] is True


def test_saturday_hours_and_sunday_duty_with_changeover():
    sat = run_json("--caller", "0509999999", "--dialled", "0441234567", "--at", "2025-03-15T13:59")
    assert any(s["kind"] == "menu" for s in sat["steps"])
    sun = run_json("--caller", "0509999999", "--dialled", "0441234567", "--at", "2025-03-17T07:00")
    duty = next(s for s in sun["steps"] if s["kind"] == "duty")
    assert duty["day"] == "2025-03-16" and duty["number"] == "+380671110003"   # Monday 07:00: Sunday's duty


def test_webhook_line():
    timeout = run_json("--caller", "0509999999", "--dialled", "0322345678", "--at", "2025-03-10T11:00")
    hook = [s for s in timeout["steps"] if s["kind"] == "webhook"]
    assert hook[0]["request"]["dialled"] == "+380322345678" and hook[1]["ok"] is False
    chose = run_json("--caller", "0509999999", "--dialled", "0322345678", "--at", "2025-03-10T11:00",
                     "--webhook-answer", '{"extension": "103"}', "--answer", "103")
    assert chose["result"] == {"kind": "answered", "by": "103", "text": "answered by 103"}


def test_unknown_number_hangs_up():
    doc = run_json("--caller", "0509999999", "--dialled", "0440000000", "--at", "2025-03-10T11:00")
    assert doc["steps"][0]["route"] is None and doc["result"]["kind"] == "hangup"


def test_trace_without_a_database_explains(tmp_path):
    result = CliRunner().invoke(trace, ["--caller", "1", "--dialled", "2", "--data", str(tmp_path)])
    assert result.exit_code != 0 and "--config" in result.output


def test_trace_reads_the_store(tmp_path):
    from appliance.configfile import import_config
    from appliance.store import Store
    with Store(tmp_path) as store:
        import_config(store, (EXAMPLES / "office.yaml").read_text())
    result = CliRunner().invoke(trace, ["--data", str(tmp_path), "--caller", "+380939876543",
                                        "--dialled", "0441234567", "--at", "2025-03-10T11:00", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["steps"][1]["manager"] == "101"     # contact from the database


def test_bench_prints_decisions_per_second():
    result = CliRunner().invoke(bench_routing, ["--calls", "300"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ decisions/s", last)
    assert int(last.split()[0]) > 0


def test_a_config_file_that_is_not_text_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "office.yaml"
    bad.write_bytes(b"version: 1\n\xe9\xff\n")
    result = CliRunner().invoke(trace, ["--config", str(bad), "--caller", "1", "--dialled", "2"])
    assert result.exit_code == 1
    assert "not UTF-8 text" in result.output and len(result.output.strip().splitlines()) == 1


def test_pbx_duty_shows_each_rosters_mobile_today_and_the_next(tmp_path):
    import json as _json
    from datetime import datetime as _dt, timezone as _tz

    from appliance.cli import cli
    from appliance.routing.config import parse
    from appliance.routing.router import on_duty

    data = tmp_path / "data"
    res = CliRunner().invoke(cli, ["config", "import", OFFICE, "--data", str(data)])
    assert res.exit_code == 0, res.output
    from appliance.tracecmd import duty
    res = CliRunner().invoke(duty, ["--json", "--data", str(data)])
    assert res.exit_code == 0, res.output
    out = _json.loads(res.output)["after_hours"]
    # The same answer routing gives a call now.
    from appliance.configfile import load_text
    cfg = load_text(open(OFFICE).read())
    roster = parse(cfg.routing, {e["number"]: e["name"] for e in cfg.extensions}, timezone=cfg.timezone).duty["after_hours"]
    day, number = on_duty(roster, _dt.now(_tz.utc))
    assert (out["day"], out["number"]) == (day.isoformat(), number)
    assert out["next"] is None or out["next"]["number"] != number
