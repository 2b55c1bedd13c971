"""`pbx bench calls` itself: a small round through real peers prints a full table and loses no call."""

from __future__ import annotations

import pytest

from appliance.engine import bench

pytestmark = pytest.mark.sip


def test_a_small_bench_round_measures_every_call_both_ways():
    lines: list[str] = []
    (r,) = bench.run(sizes=(3,), hold=0.5, echo=lines.append, rounds=2)
    assert r["still_up"] == 3 and not r["errors"] and not r["not_ended"]
    assert len(r["delays_ms"]) == 6 and len(r["direct_ms"]) == 6 and len(r["inside_ms"]) == 6
    assert 0 < r["direct50"] <= r["direct99"] and 0 < r["p50"] <= r["p99"]
    assert (r["live"], r["leaked"]) == (0, 0)
    row = next(line for line in lines if line.split()[:2] == ["3", "3"])
    assert len(row.split()) == 11, row
