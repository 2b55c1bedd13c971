"""`pbx bench calls`: bridged PCMU calls through the engine, and what they cost.

Three processes on loopback (pjsua2 allows one Endpoint per process): a
provider placing calls over an IP trunk, the engine (runner) routing each
call to extension 101, and a phone answering it.  For each size the provider
places N calls, all are bridged, and while they are held the engine's CPU
(from /proc, user + system) and resident memory are sampled.

Post-dial delay is the provider's INVITE to the 180 it gets back.  The
engine adds its part (INVITE in, INVITE out to the phone, 180 back, 180 out).
Between its calls the provider also calls the phone straight, with no
engine, and hangs those up once answered: the same delay under the same load
(the peers and the engine's media share the machine's two cores), which is
subtracted, percentile by percentile, to show what the engine adds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from appliance.store import Store

SIZES = (10, 25, 50, 100)
NUMBER = "+380440000000"
ENGINE_RTP_PORT = 46000


def router(store: Store) -> Any:
    """Every call to extension 101."""
    from appliance.routing.model import RoutingConfig, Route
    from appliance.routing.router import Router

    return Router(RoutingConfig(routes=(Route("all", "ext:101"),), known_extensions={"101": "Bench"}))


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc(args: list[str], name: str) -> subprocess.Popen:
    """A bench process; with PBX_BENCH_LOG=PATH its stderr goes to PATH.NAME (one file per process)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = os.environ.get("PBX_BENCH_LOG")
    with open(f"{log}.{name}" if log else os.devnull, "a") as err:
        return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env)


def _until(p: subprocess.Popen, test: Callable[[str], bool], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("a bench process ended early")
        if test(line.strip()):
            return line.strip()
    raise RuntimeError("a bench process did not answer in time")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def _round(caller: subprocess.Popen, n: int, hold: float, engine_pid: int | None) -> dict:
    caller.stdin.write(f"{n} {hold}\n")
    caller.stdin.flush()
    held = json.loads(_until(caller, lambda s: s.startswith('{"held"')))
    cpu = rss = None
    if engine_pid:
        time.sleep(min(0.5, hold / 4))
        c0, t0 = _cpu_seconds(engine_pid), time.monotonic()
        time.sleep(max(0.5, hold - 1.0))
        cpu = (_cpu_seconds(engine_pid) - c0) / (time.monotonic() - t0) * 100
        rss = _rss_mb(engine_pid)
    summary = json.loads(_until(caller, lambda s: s.startswith('{"placed"'), timeout=hold + 60))
    summary.update(held=held["held"], cpu=cpu, rss=rss)
    return summary


def _rounds(caller: subprocess.Popen, engine: subprocess.Popen, n: int, hold: float, pid: int,
            rounds: int) -> dict:
    """`rounds` rounds of n calls, their delays pooled (a p99 of 100 calls is nearly their maximum)."""
    out: dict[str, Any] = {"delays_ms": [], "direct_ms": [], "inside_ms": [], "errors": [], "not_ended": 0,
                           "cpus": [], "rss": 0.0, "still_up": n, "turn": 0.0}
    for _ in range(rounds):
        r = _round(caller, n, hold, pid)
        engine.stdin.write('{"cmd": "stats"}\n')
        engine.stdin.flush()
        st = json.loads(_until(engine, lambda s: '"stats"' in s))
        out["delays_ms"] += r["delays_ms"]
        out["direct_ms"] += r["direct_ms"]
        out["inside_ms"] += st["post_dial_ms"]
        out["errors"] += r["errors"]
        out["not_ended"] += r.get("not_ended", 0)
        out["cpus"].append(r["cpu"])
        out["rss"] = max(out["rss"], r["rss"])
        out["still_up"] = min(out["still_up"], r["still_up"])
        out["turn"] = max(out["turn"], st.get("longest_turn_ms", float("nan")))
        out["live"], out["leaked"] = st["live"], st.get("leaked", 0)
        time.sleep(1.0)
    out["cpu"] = sum(out["cpus"]) / len(out["cpus"])
    return out


def run(sizes: tuple[int, ...] = SIZES, hold: float = 5.0, echo: Callable[[str], None] = print,
        rounds: int = 3) -> list[dict]:
    py = sys.executable
    results = []
    with tempfile.TemporaryDirectory(prefix="pbx-bench-") as tmp:
        data = Path(tmp) / "data"
        sip_port, trunk_port, phone_port, caller_port = (_free_port() for _ in range(4))
        with Store(data) as store:
            store.add_extension("101", "Bench", "bench-password")
            store.db["bindings"].insert({
                "extension": "101", "contact": f"sip:101@127.0.0.1:{phone_port}", "source_host": "127.0.0.1",
                "source_port": phone_port, "transport": "udp", "q": 1.0, "expires_at": time.time() + 86400,
                "registered_at": time.time()})
            store.put_trunk({"name": "bench", "kind": "ip", "host": "127.0.0.1", "port": caller_port,
                             "addresses": ["127.0.0.1"], "numbers": [NUMBER]})
            # RTP apart from the peers' (20000, 30000, 40000 up) and from an engine
            # another test run may have on the default 10000.
            store.set_setting("engine", {"rtp_port": ENGINE_RTP_PORT, "rtp_ports": 1000})
        procs: list[subprocess.Popen] = []
        try:
            phone = _proc([py, "-m", "appliance.engine.benchpeer", "answer", str(phone_port)], "phone")
            procs.append(phone)
            _until(phone, lambda s: s == "ready")
            caller = _proc([py, "-m", "appliance.engine.benchpeer", "call", str(caller_port),
                            f"sip:{NUMBER}@127.0.0.1:{trunk_port}", "20000", f"sip:101@127.0.0.1:{phone_port}"],
                           "caller")
            procs.append(caller)
            _until(caller, lambda s: s == "ready")
            engine = _proc([py, *(os.environ.get("PBX_BENCH_ENGINE", "-m appliance.engine.runner").split()), "--data", str(data), "--sip-port", str(sip_port),
                            "--trunk-port", str(trunk_port), "--router", "appliance.engine.bench:router", "--quiet",
                            "--pj-log-level", os.environ.get("PBX_BENCH_PJLOG", "2")], "engine")
            procs.append(engine)
            ready = json.loads(_until(engine, lambda s: '"ready"' in s))
            pid = ready["pid"]
            time.sleep(1.0)
            idle0 = _cpu_seconds(pid)
            time.sleep(2.0)
            echo(f"engine idle: {(_cpu_seconds(pid) - idle0) / 2 * 100:.1f} % of a core, {_rss_mb(pid):.0f} MB")
            echo("cpu: the engine process, % of one core while the calls are held (user + system)")
            echo("pdd: post-dial delay, the caller's INVITE to its 180 through the engine;"
                 " direct: the same straight to the phone, under the same load; added: pdd minus direct")
            echo(f"each size: {rounds} rounds, their delays pooled; turn: the engine loop's longest turn"
                 " (about 5 ms when idle)")
            echo(f"{'calls':>6} {'bridged':>8} {'cpu %':>6} {'rss MB':>7} {'pdd p50':>8} {'pdd p99':>8}"
                 f" {'direct p50':>10} {'direct p99':>10} {'added p50':>10} {'added p99':>10} {'turn ms':>8}")
            for n in sizes:
                r = _rounds(caller, engine, n, hold, pid, rounds)
                d, base, inside = r["delays_ms"], r["direct_ms"], r["inside_ms"]
                r.update(n=n, p50=percentile(d, 50), p99=percentile(d, 99),
                         direct50=percentile(base, 50), direct99=percentile(base, 99),
                         inside50=percentile(inside, 50), inside99=percentile(inside, 99))
                r.update(added50=r["p50"] - r["direct50"], added99=r["p99"] - r["direct99"])
                results.append(r)
                echo(f"{n:>6} {r['still_up']:>8} {r['cpu']:>6.1f} {r['rss']:>7.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}"
                     f" {r['direct50']:>10.2f} {r['direct99']:>10.2f} {r['added50']:>10.2f} {r['added99']:>10.2f}"
                     f" {r['turn']:>8.1f}")
                echo(f"       inside the engine (INVITE handled to 180 sent): p50 {r['inside50']:.2f} ms,"
                     f" p99 {r['inside99']:.2f} ms")
                problems = []
                if r["errors"]:
                    problems.append(f"errors: {r['errors']}")
                if r.get("not_ended"):
                    problems.append(f"{r['not_ended']} calls did not end")
                if r["live"] or r["leaked"]:
                    problems.append(f"after hang-up the engine still holds {r['live']} legs, {r['leaked']} leaked")
                if problems:
                    echo("       " + "; ".join(problems))
            engine.stdin.write('{"cmd": "quit"}\n')
            engine.stdin.flush()
            engine.wait(10)
        finally:
            for p in procs:
                try:
                    if p.stdin and not p.stdin.closed:
                        p.stdin.close()
                    p.wait(10)
                except Exception:  # noqa: BLE001 - a process that would not stop is killed
                    p.kill()
                    p.wait(5)
                if p.stdout:
                    p.stdout.close()
    return results


if __name__ == "__main__":
    run()
