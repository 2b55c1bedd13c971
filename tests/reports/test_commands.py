"""`pbx report`, `pbx report lost` and `pbx bench reports` (with a small count: it works, not how fast)."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from appliance.cli import _register_parts, cli
from appliance.store import Store
from tests.web.test_reports import seed

RANGE = ["--from", "2025-03-11", "--to", "2025-03-11"]


def run(*args: str):
    _register_parts()
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_report_summary_json_and_a_table_as_csv(data_dir):
    with Store(data_dir) as store:
        store.seed_defaults()
    seed(data_dir)
    out = run("report", "--data", str(data_dir), *RANGE)
    assert out.exit_code == 0, out.output
    assert "offered 4: answered 3, missed 1" in out.output and "short abandons apart: 1" in out.output
    data = json.loads(run("report", "--data", str(data_dir), *RANGE, "--json").output)
    assert (data["calls_in"], data["calls_out"], data["service_level"], data["p90_wait"]) == (5, 1, 0.5, 30)
    rows = list(csv.DictReader(io.StringIO(run("report", "--data", str(data_dir), *RANGE, "--by", "person",
                                               "--csv").output)))
    assert {r["key"]: r["answered"] for r in rows} == {"101": "2", "102": "1", "103": "0"}
    lost = json.loads(run("report", "--data", str(data_dir), *RANGE, "--json", "lost").output)
    assert [(c["id"], c["where"], c["short"]) for c in lost] == [("m1", "ringing", False), ("s1", "ringing", True)]
    bad = run("report", "--data", str(data_dir), "--from", "2025-03-12", "--to", "2025-03-11")
    assert bad.exit_code == 2 and "the last day comes before the first" in bad.output


def test_bench_reports_runs_and_prints_each_report():
    out = run("bench", "reports", "--records", "2000", "--days", "40")
    assert out.exit_code == 0, out.output
    for name in ("summary", "hour", "weekday", "day", "person", "group", "number", "menu", "lost", "staffing"):
        assert any(line.startswith(name) for line in out.output.splitlines()), name
    assert "goal 200 ms per report" in out.output
