"""`pbx bench calls` itself: a small bench through real peers measures every call, the RTP both ways
and the engine's loop, and prints them as a table or as one JSON object."""

from __future__ import annotations

import json
import random
import threading

import pytest
from click.testing import CliRunner

from appliance.engine import bench
from appliance.engine.commands import bench_calls
from appliance.engine.bench import growth_interval

CALLS, HOLD = 4, 2.0


@pytest.mark.sip
def test_a_small_bench_measures_every_call_its_rtp_and_the_loop_as_json():
    result = CliRunner().invoke(bench_calls, ["--sizes", str(CALLS), "--hold", str(HOLD), "--rounds", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)  # the whole output is the one object
    json.dumps(report, allow_nan=False)  # strict JSON: a missing figure is null, never NaN
    assert set(report["machine"]) >= {"cores", "arch", "python", "pjsua2"} and report["machine"]["pjsua2"]
    (row,) = report["sizes"]
    assert row["calls"] == row["bridged"] == CALLS and not row["errors"] and not row["not_ended"]
    assert row["samples"] == {"pdd": 2 * CALLS, "direct": 2 * CALLS, "inside": 2 * CALLS}
    assert 0 < row["direct_p50_ms"] <= row["direct_p99_ms"] and 0 < row["pdd_p50_ms"] <= row["pdd_p99_ms"]
    assert (row["live_after"], row["leaked"]) == (0, 0)
    assert 0 <= row["turn_p99_ms"] <= row["turn_max_ms"] and 0 <= row["turn_max_cpu_ms"]
    # The engine thread's collections, by generation: the longest is one of them.
    assert len(row["gc_counts"]) == len(row["gc_ms"]) == 3
    assert 0 <= row["gc_longest_ms"] <= sum(row["gc_ms"]) + 0.1
    assert row["cpu_percent"] > 0 and row["rss_mb"] > 0
    for way in ("caller_to_phone", "phone_to_caller"):
        w = row[way]
        assert w["streams"] == 2 * CALLS, (way, w)
        # Both ends talked the whole hold (50 packets a second), through the
        # engine, and nothing is lost on loopback, neither into it nor out.
        least = w["streams"] * 50 * HOLD * 0.8
        assert min(w["sent"], w["engine_received"], w["received"]) >= least, (way, w)
        assert w["lost"] == w["lost_in"] == w["lost_out"] == 0, (way, w)
        assert 0 <= w["jitter_mean_ms"] <= w["jitter_max_ms"], (way, w)
        assert 0 <= w["jitter_in_mean_ms"] <= w["jitter_in_max_ms"], (way, w)


def test_the_table_shows_a_row_per_size_with_its_loss_jitter_and_turns():
    way = {"streams": 8, "sent": 1000, "engine_received": 1000, "lost_in": 0, "jitter_in_mean_ms": 0.2,
           "jitter_in_max_ms": 0.9, "received": 990, "lost_out": 1, "lost": 1, "jitter_mean_ms": 0.5,
           "jitter_max_ms": 2.0}
    row = {"calls": 4, "bridged": 4, "cpu_percent": 5.0, "cpu_system_percent": 2.0, "rss_mb": 70.0,
           "pdd_p50_ms": 6.0, "pdd_p99_ms": 8.0, "direct_p50_ms": 2.0, "direct_p99_ms": 3.0,
           "added_p50_ms": 4.0, "added_p99_ms": 5.0, "inside_p50_ms": 3.0, "inside_p99_ms": 4.0,
           "caller_to_phone": way, "phone_to_caller": {**way, "lost_in": 1, "lost": 2, "jitter_max_ms": 3.0},
           "turn_p99_ms": 6.1, "turn_max_ms": 9.5, "turn_max_cpu_ms": 2.5, "errors": [], "not_ended": 0,
           "live_after": 0, "leaked": 0, "gc_counts": [12, 1, 0], "gc_ms": [6.5, 1.2, 0.0], "gc_longest_ms": 1.2}
    lines: list[str] = []
    bench._echo_row(lines.append, row)
    cells = lines[0].split()
    assert len(cells) == 15, lines[0]
    assert cells[:2] == ["4", "4"] and cells[-5:] == ["3", "0.50", "3.00", "6.1", "9.5"]
    assert lines[2].endswith("(young, middle, full): 12, 1, 0; 6.5, 1.2, 0.0 ms in all; the longest 1.20 ms")
    assert "caller to phone: 8 streams" in lines[3] and "into the engine 1000, 1 lost" in lines[4]


def test_rounds_pool_their_streams_counts_added_maxima_kept_jitter_weighted_by_packets():
    def way(received: int, mean: float, peak: float) -> dict:
        return {"streams": 4, "sent": received, "engine_received": received, "lost_in": 0, "jitter_in_mean_ms": mean,
                "jitter_in_max_ms": peak, "received": received, "lost_out": 1, "lost": 1,
                "jitter_mean_ms": mean, "jitter_max_ms": peak}

    total: dict = {}
    for received, mean, peak in ((100, 1.0, 2.0), (300, 2.0, 5.0)):
        bench._pool_media(total, {w: way(received, mean, peak) for w in bench.DIRECTIONS})
    w = total["caller_to_phone"]
    assert (w["streams"], w["received"], w["engine_received"], w["lost"]) == (8, 400, 400, 2)
    assert w["jitter_mean_ms"] == w["jitter_in_mean_ms"] == 1.75 and w["jitter_max_ms"] == w["jitter_in_max_ms"] == 5.0


def test_loop_turns_give_their_percentile_and_longest_and_the_turn_that_reset_them_counts_for_neither():
    from appliance.engine.core import TurnStats

    turns = TurnStats()
    turns.add(0.001)  # the turn in progress when the figures were (re)started: not counted
    for ms in [5.0] * 98 + [12.0, 40.0]:
        turns.add(ms / 1000, cpu=0.002)
    assert turns.n == 100 and turns.longest == 0.040 and turns.longest_cpu == 0.002
    assert abs(turns.percentile(99) - 0.0121) < 1e-9  # the 99th turn, to its 0.1 ms bucket
    assert abs(turns.percentile(50) - 0.0051) < 1e-9
    turns.reset()
    turns.add(0.090)  # the stats command's own turn
    turns.add(0.006)
    assert (turns.n, turns.longest) == (1, 0.006)
    turns.add(0.5)  # beyond the histogram: the last bucket, and the longest exactly
    assert turns.longest == 0.5 and turns.percentile(99) == 0.5


@pytest.mark.sip
def test_the_bench_with_a_monitor_subscribed_prints_both_rows_and_what_the_monitor_delivered():
    result = CliRunner().invoke(bench_calls, ["--sizes", "2", "--hold", "1", "--rounds", "1", "--monitor"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "without the monitor:" in lines and "with the monitor subscribed:" in lines
    growth = next(line for line in lines if line.startswith("monitor: pdd p50"))
    assert " p99 " in growth and "inside the engine p99" in growth
    interval = next(line for line in lines if line.startswith("monitor: post-dial delay p99 grows"))
    assert "90 % bootstrap interval" in interval
    delivered = next(line for line in lines if "LiveCall events delivered" in line)
    # Each call: arriving, ringing (routed, then the phone's leg), talking, ended.
    assert "10 LiveCall events delivered of 10 published" in delivered, delivered
    assert "seen for 2 of 2 calls; 0 left in the model" in delivered, delivered


def test_the_monitor_check_counts_what_arrived_against_what_was_published():
    stream = bench.Stream.__new__(bench.Stream)
    stream.arrived = threading.Condition()
    stream.events = [{"kind": "LiveCallChanged", "seq": s, "call_id": c, "call": {"stage": st}}
                     for s, c, st in ((4, "a", "arriving"), (5, "a", "ringing"), (6, "a", "talking"),
                                      (7, "b", "arriving"))]
    stream.events.append({"kind": "LiveCallEnded", "seq": 8, "call_id": "a"})
    stream.snapshot = lambda: {"seq": 9, "calls": [{"id": "b"}]}
    got = stream.check(since=3, calls=2, timeout=0.1)
    assert (got["published"], got["delivered"], got["complete"], got["left"]) == (6, 5, 1, 1)


def test_the_growth_interval_holds_the_true_shift_and_no_shift_when_there_is_none():
    rng = random.Random(7)
    off = [rng.expovariate(1 / 8) for _ in range(500)]
    same = growth_interval(off, [rng.expovariate(1 / 8) for _ in range(500)])
    assert same["low_ms"] < 0 < same["high_ms"]
    shifted = growth_interval(off, [x + 5 for x in off])
    assert shifted["growth_ms"] == 5
    assert shifted["low_ms"] <= 5 <= shifted["high_ms"]
    assert growth_interval([], [1.0]) == {"growth_ms": None, "low_ms": None, "high_ms": None}
