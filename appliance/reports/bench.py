"""`pbx bench reports`: generated call records in a temporary store, and how long each report takes."""

from __future__ import annotations

import os
import platform
import random
import statistics
import tempfile
import time
from datetime import date, datetime, time as dtime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from appliance.reports import BY, build_report
from appliance.reports import sample
from appliance.reports.periods import Period
from appliance.store import Store
from appliance.store.reports import ReportTables

REPORTS = ("summary", *BY, "lost", "staffing")
ROUNDS = 3


def run(records: int, days: int, goal_ms: float, echo: Callable[[str], None]) -> dict:
    rng = random.Random(2025)
    last = date.today() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    with tempfile.TemporaryDirectory(prefix="pbx-bench-reports-") as tmp, Store(tmp) as store:
        tz = store.timezone
        start = datetime.combine(first, dtime(0), ZoneInfo(tz))
        t0 = time.perf_counter()
        rows = list(sample.calls(rng, start, days, records))
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        ReportTables(store).add_calls(rows)
        cases, links = sample.cases(rng, rows)
        ReportTables(store).add_cases(cases, links)
        wrote = time.perf_counter() - t0
        del rows
        echo(f"{records:,} call records over {days} days ({len(cases):,} missed-call cases): generated in "
             f"{made:.1f} s, written in {wrote:.1f} s")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        echo(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
             f"{platform.python_version()}, load average {load:.2f}; best of {ROUNDS} runs, ms")
        ranges = {"30 days": Period(last - timedelta(days=29), last, tz), f"{days} days": Period(first, last, tz)}
        figures: dict = {}
        echo(f"{'report':10} " + " ".join(f"{name:>12}" for name in ranges) + "   goal")
        for name in REPORTS:
            only = (name,)
            times = []
            for period in ranges.values():
                runs = []
                for _ in range(ROUNDS):
                    t = time.perf_counter()
                    build_report(store, period, only=only)
                    runs.append((time.perf_counter() - t) * 1000)
                times.append(min(runs))
            figures[name] = times
            verdict = "met" if all(t <= goal_ms for t in times) else (
                "met for 30 days only" if times[0] <= goal_ms else "missed")
            echo(f"{name:10} " + " ".join(f"{t:>12.1f}" for t in times) + f"   {verdict}")
        over = [max(t) for t in figures.values()]
        echo(f"slowest {max(over):.0f} ms, median {statistics.median(over):.0f} ms; goal {goal_ms:.0f} ms per report")
        return figures
