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

Both ends talk for the whole hold (a tone each way, see benchpeer), and at its
end each, and the engine, read pjsua2's statistics of the bridged streams:
the packets one end's voice arrived in at the engine and at the other end,
those lost on each hop, and their jitter (the engine re-sends what it
receives on its own clock, so a loss into it would not show at the far end).
Calls end at the pace they were placed.  The engine reports its loop turns
(the longest, and the 99th percentile) for each round.

With `monitor` (`pbx bench calls --monitor`) the engine runs with the live
monitor beside it as `pbx run` has it (appliance.monitor.MonitorLoop: its
events handed to a loop thread that publishes them and keeps `LiveCalls`),
and a subscriber here reads the stream as an open panel page would.  Each size
runs rounds without the monitor fed and with it, interleaved, and prints both
rows, the post-dial delay it adds, and whether every call's stages reached the
subscriber (the monitor's `seq` against the events that arrived).
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from appliance.store import Store

SIZES = (10, 25, 50, 100, 200)
NUMBER = "+380440000000"
ENGINE_RTP_PORT = 46000
DIRECTIONS = ("caller_to_phone", "phone_to_caller")


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


def _send(p: subprocess.Popen, line: str) -> None:
    p.stdin.write(line + "\n")
    p.stdin.flush()


def _until(p: subprocess.Popen, test: Callable[[str], bool], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("a bench process ended early")
        if test(line.strip()):
            return line.strip()
    raise RuntimeError("a bench process did not answer in time")


def _reply(p: subprocess.Popen, key: str, timeout: float = 60) -> dict:
    """The next JSON line of p that starts with {"key": ...}."""
    return json.loads(_until(p, lambda s: s.startswith(f'{{"{key}"'), timeout))


def _cpu_times(pid: int) -> tuple[float, float]:
    """Seconds of CPU the process has used: (user, system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _cpu_seconds(pid: int) -> float:
    return sum(_cpu_times(pid))


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


def _engine_stats(engine: subprocess.Popen, media: bool = False) -> dict:
    """The engine's figures since it was last asked (it resets them); with media, the RTP its legs received."""
    _send(engine, json.dumps({"cmd": "stats", "media": media}))
    return json.loads(_until(engine, lambda s: '"stats"' in s))


def _sample_cpu(pid: int, hold: float) -> dict:
    """The engine's CPU (% of one core; all, and in the kernel) and RSS while the calls are held,
    settled after the last answer."""
    time.sleep(min(0.5, hold / 4))
    (u0, s0), t0 = _cpu_times(pid), time.monotonic()
    time.sleep(max(0.5, hold - 1.0))
    (u1, s1), t1 = _cpu_times(pid), time.monotonic()
    return {"cpu": (u1 - u0 + s1 - s0) / (t1 - t0) * 100, "cpu_system": (s1 - s0) / (t1 - t0) * 100,
            "rss": _rss_mb(pid)}


def _round(caller: subprocess.Popen, phone: subprocess.Popen, engine: subprocess.Popen, n: int, hold: float,
           pid: int) -> dict:
    """n calls held for `hold` seconds: their delays, the RTP both ways, the engine's CPU and its
    figures for the calls' start and hold ("talk") and for their end ("end"); then hung up."""
    _send(caller, f"{n} {hold} media paced")
    held = _reply(caller, "held")
    cpu = _sample_cpu(pid, hold)
    talked = _reply(caller, "talked", timeout=hold + 60)["talked"]  # the caller's end, its calls still up
    _send(phone, "media")
    heard = _reply(phone, "media")["media"]
    talk = _engine_stats(engine, media=True)
    _send(caller, "hangup")
    summary = _reply(caller, "placed", timeout=n * 0.1 + 60)
    summary.update(held=held["held"], media=_directions(talked, talk["media"], heard), talk=talk,
                   end=_engine_stats(engine), **cpu)
    return summary


def _directions(caller: dict, engine: dict, phone: dict) -> dict:
    """Both ends' and the engine's statistics as two directions: what one end said, as the engine
    received it (its "a" legs hear the caller, its "b" legs the phone) and as the other end heard it."""
    def way(talker: dict, into_engine: dict, listener: dict) -> dict:
        return {"streams": listener["streams"], "sent": talker["sent"],
                "engine_received": into_engine["received"], "lost_in": into_engine["lost"],
                "jitter_in_mean_ms": into_engine["jitter_mean_ms"], "jitter_in_max_ms": into_engine["jitter_max_ms"],
                "received": listener["received"], "lost_out": listener["lost"],
                "lost": into_engine["lost"] + listener["lost"],
                "jitter_mean_ms": listener["jitter_mean_ms"], "jitter_max_ms": listener["jitter_max_ms"]}

    return {"caller_to_phone": way(caller, engine["a"], phone), "phone_to_caller": way(phone, engine["b"], caller)}


# A direction's jitter means, each weighted by the packets it was measured on.
WEIGHTS = {"jitter_mean_ms": "received", "jitter_in_mean_ms": "engine_received"}


def _pool_media(total: dict, add: dict) -> None:
    """Sum one round's streams into the size's: counts added, maxima kept, means weighted."""
    for way in DIRECTIONS:
        t, a = total.setdefault(way, dict.fromkeys(add[way], 0)), add[way]
        for key, weight in WEIGHTS.items():
            packets = t[weight] + a[weight]
            t[key] = round((t[key] * t[weight] + a[key] * a[weight]) / packets, 3) if packets else 0.0
        for key in a:
            if key.endswith("_max_ms"):
                t[key] = max(t[key], a[key])
            elif key not in WEIGHTS:
                t[key] += a[key]


def _pool_engine(out: dict, st: dict) -> None:
    """The engine's figures for part of a round into the size's: post-dial delays, turns."""
    out["inside_ms"] += st["post_dial_ms"]
    if st["longest_turn_ms"] > out["turn"]:
        out["turn"], out["turn_cpu"] = st["longest_turn_ms"], st["longest_turn_cpu_ms"]
    out["turn99"] = max(out["turn99"], st["turn_p99_ms"])  # the worst part's
    out["slow"] += st["slow_turns"]
    for g in range(3):
        out["gc_counts"][g] += st.get("gc_counts", [0, 0, 0])[g]
        out["gc_ms"][g] += st.get("gc_ms", [0.0, 0.0, 0.0])[g]
    out["gc_longest"] = max(out["gc_longest"], st.get("gc_longest_ms", 0.0))


def _pool() -> dict[str, Any]:
    return {"delays_ms": [], "direct_ms": [], "inside_ms": [], "errors": [], "not_ended": 0, "cpus": [],
            "cpus_system": [], "rss": 0.0, "still_up": None, "turn": 0.0, "turn_cpu": 0.0, "turn99": 0.0, "slow": 0,
            "media": {}, "gc_counts": [0, 0, 0], "gc_ms": [0.0, 0.0, 0.0], "gc_longest": 0.0}


def _pool_round(out: dict, r: dict) -> None:
    """One round's figures into its size's."""
    out["delays_ms"] += r["delays_ms"]
    out["direct_ms"] += r["direct_ms"]
    out["errors"] += r["errors"]
    out["not_ended"] += r.get("not_ended", 0)
    out["cpus"].append(r["cpu"])
    out["cpus_system"].append(r["cpu_system"])
    out["rss"] = max(out["rss"], r["rss"])
    out["still_up"] = r["still_up"] if out["still_up"] is None else min(out["still_up"], r["still_up"])
    for st in (r["talk"], r["end"]):
        _pool_engine(out, st)
    _pool_media(out["media"], r["media"])
    out["live"], out["leaked"] = r["end"]["live"], r["end"].get("leaked", 0)
    out["cpu"] = sum(out["cpus"]) / len(out["cpus"])
    out["cpu_system"] = sum(out["cpus_system"]) / len(out["cpus_system"])


def _rounds(caller: subprocess.Popen, phone: subprocess.Popen, engine: subprocess.Popen, n: int, hold: float,
            pid: int, rounds: int) -> dict:
    """`rounds` rounds of n calls, their delays pooled (a p99 of 100 calls is nearly their maximum)."""
    out = _pool()
    for _ in range(rounds):
        _pool_round(out, _round(caller, phone, engine, n, hold, pid))
        time.sleep(1.0)
    return out


class Stream:
    """A subscriber to the live monitor beside the engine (`runner --monitor`), as an open panel page is one.

    It subscribes on the control socket before the first call and reads every
    event in a thread of its own, keeping the monitor's (LiveCallChanged,
    LiveCallEnded); `check` compares them with what the monitor published.
    """

    def __init__(self, path: str | Path):
        from appliance.control import ControlClient

        self.path = Path(path)
        self.client = ControlClient(self.path, timeout=10)
        self.events: list[dict] = []
        # ms from a stage's start (the engine's event for it) to its LiveCallChanged reaching this subscriber
        self.lags: list[float] = []
        self.arrived = threading.Condition()
        from appliance.monitor import CHANGED, ENDED

        # As a panel page subscribes (appliance.monitor.Following): to the monitor's events only.
        stream = self.client.subscribe([CHANGED, ENDED])  # subscribed when it returns: no later event is missed
        self.thread = threading.Thread(target=self._read, args=(stream,), name="bench-monitor", daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        from appliance.monitor import CHANGED, ENDED

        try:
            for event in stream:
                if event.get("kind") in (CHANGED, ENDED):
                    lag = _lag_ms(event)
                    with self.arrived:
                        self.events.append(event)
                        if lag is not None:
                            self.lags.append(lag)
                        self.arrived.notify_all()
        except (OSError, ValueError):
            pass  # closed

    def snapshot(self) -> dict:
        from appliance.control import ControlClient

        with ControlClient(self.path, timeout=10) as client:
            return client.request("monitor.snapshot")

    def check(self, since: int, calls: int, timeout: float = 10.0) -> dict:
        """What the monitor published after seq `since` against what reached this subscriber, for a round
        of `calls` calls: events published and delivered, the calls seen at every stage, and those the
        model still holds (none, once all have ended)."""
        snap = self.snapshot()
        with self.arrived:
            self.arrived.wait_for(lambda: bool(self.events) and self.events[-1]["seq"] >= snap["seq"], timeout)
            got = [e for e in self.events if since < e["seq"] <= snap["seq"]]
        stages: dict[str, set[str]] = {}
        for e in got:
            stages.setdefault(e["call_id"], set()).add(e["call"]["stage"] if "call" in e else "ended")
        complete = sum(1 for seen in stages.values() if seen >= STAGES)
        return {"published": snap["seq"] - since, "delivered": len(got), "calls": calls, "complete": complete,
                "left": len(snap["calls"]), "seq": snap["seq"]}

    def close(self) -> None:
        self.client.shutdown()
        self.thread.join(5)
        self.client.close()


def _lag_ms(event: dict) -> float | None:
    """How long after the engine's event that began the call's stage the change reached the subscriber.

    A view's `since` is the `at` of the engine event that moved the call to
    its stage (stamped on the engine thread as the SIP message was handled);
    both clocks are this machine's."""
    from datetime import datetime, timezone

    since = (event.get("call") or {}).get("since")
    if not since or (event.get("call") or {}).get("stage_s", 1) > 1:
        return None  # not a change of stage (a stage's own detail changed later)
    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(since)).total_seconds() * 1000.0
    except ValueError:
        return None


# The stages every bench call goes through: routed, ringing the phone, bridged, ended.
STAGES = frozenset({"arriving", "ringing", "talking", "ended"})


def _feed(engine: subprocess.Popen, on: bool) -> None:
    """Switch the engine's feed of the monitor on or off (between rounds, no call up)."""
    _send(engine, json.dumps({"cmd": "monitor", "on": on}))
    _until(engine, lambda s: '"cmd": "monitor"' in s)


def _compare(caller: subprocess.Popen, phone: subprocess.Popen, engine: subprocess.Popen, n: int, hold: float,
             pid: int, rounds: int, stream: Stream) -> dict:
    """`rounds` rounds of n calls without the monitor and as many with it, interleaved (off-on, on-off, ...)
    so that the machine's other work weighs on both alike; the monitor's delivery checked every round."""
    without, with_ = _pool(), _pool()
    seen = {"published": 0, "delivered": 0, "calls": 0, "complete": 0, "left": 0}
    for i in range(rounds):
        for monitored in ((False, True) if i % 2 == 0 else (True, False)):
            _feed(engine, monitored)
            since = stream.snapshot()["seq"]
            _pool_round(with_ if monitored else without, _round(caller, phone, engine, n, hold, pid))
            if monitored:
                got = stream.check(since, n)
                for k in seen:
                    seen[k] += got[k]
            time.sleep(1.0)
    _feed(engine, False)
    with stream.arrived:
        lags, stream.lags[:] = list(stream.lags), []
    seen["lag_p50_ms"], seen["lag_p99_ms"] = (round(percentile(lags, p), 2) for p in (50, 99))
    seen["lag_max_ms"] = round(max(lags), 2) if lags else None
    return {"without": _row(n, without), "with": _row(n, with_), "monitor": seen,
            "interval": {key: growth_interval(without[key], with_[key]) for key in ("delays_ms", "inside_ms")}}


def growth_interval(off: list[float], on: list[float], p: float = 99, draws: int = 2000,
                    seed: int = 1) -> dict:
    """How far the p-th percentile grows from `off` to `on`, with a 90 % bootstrap interval.

    A p99 of a few hundred delays rests on its few largest, so one run's
    difference says little (runs of the same code moved it by several ms
    both ways).  Resampling each pool with replacement `draws` times and
    taking the 5th and 95th percentile of the differences gives the range
    the growth lies in, on this run's evidence.
    """
    if not off or not on:
        return {"growth_ms": None, "low_ms": None, "high_ms": None}
    rng = random.Random(seed)
    diffs = sorted(percentile(rng.choices(on, k=len(on)), p) - percentile(rng.choices(off, k=len(off)), p)
                   for _ in range(draws))
    return {"growth_ms": round(percentile(on, p) - percentile(off, p), 2),
            "low_ms": round(percentile(diffs, 5), 2), "high_ms": round(percentile(diffs, 95), 2)}


def _row(n: int, r: dict) -> dict:
    """One size's figures, as `--json` prints them."""
    d, base, inside = r["delays_ms"], r["direct_ms"], r["inside_ms"]
    pdd = {p: percentile(d, p) for p in (50, 99)}
    direct = {p: percentile(base, p) for p in (50, 99)}
    figures = {
        "calls": n, "bridged": r["still_up"], "cpu_percent": r["cpu"], "cpu_system_percent": r["cpu_system"],
        "rss_mb": r["rss"],
        "pdd_p50_ms": pdd[50], "pdd_p99_ms": pdd[99], "direct_p50_ms": direct[50], "direct_p99_ms": direct[99],
        "added_p50_ms": pdd[50] - direct[50], "added_p99_ms": pdd[99] - direct[99],
        "inside_p50_ms": percentile(inside, 50), "inside_p99_ms": percentile(inside, 99),
        **r["media"],
        "turn_p99_ms": r["turn99"], "turn_max_ms": r["turn"], "turn_max_cpu_ms": r["turn_cpu"],
        "slow_turns": r["slow"],
        "gc_counts": r["gc_counts"], "gc_ms": [round(ms, 1) for ms in r["gc_ms"]], "gc_longest_ms": r["gc_longest"],
        "samples": {"pdd": len(d), "direct": len(base), "inside": len(inside)},
        "errors": r["errors"], "not_ended": r["not_ended"], "live_after": r["live"], "leaked": r["leaked"],
    }
    # NaN (no sample) is not JSON: null instead.
    return {k: (round(v, 2) if v == v else None) if isinstance(v, float) else v for k, v in figures.items()}


def machine(pjsua2: str) -> dict:
    return {"cores": os.cpu_count(), "arch": platform.machine(), "python": platform.python_version(),
            "pjsua2": pjsua2, "loadavg_1min": round(os.getloadavg()[0], 2)}


HEADER = (f"{'calls':>6} {'bridged':>8} {'cpu %':>6} {'rss MB':>7} {'pdd p50':>8} {'pdd p99':>8}"
          f" {'direct p50':>10} {'direct p99':>10} {'added p50':>10} {'added p99':>10} {'lost':>6}"
          f" {'jitter':>7} {'max':>6} {'turn p99':>8} {'max':>6}")


def _explain(echo: Callable[[str], None], rounds: int) -> None:
    echo("cpu: the engine process, % of one core while the calls are held (user + system)")
    echo("pdd: post-dial delay, the caller's INVITE to its 180 through the engine;"
         " direct: the same straight to the phone, under the same load; added: pdd minus direct")
    echo("lost: RTP packets lost on the bridged calls, both ways, into the engine and out of it;"
         " jitter (mean, max; ms): as the receiving end measured it, the worse direction")
    echo(f"turn: the engine loop's turns (about 5 ms when idle), p99 and longest, ms; each size:"
         f" {rounds} rounds, their delays pooled")
    echo(HEADER)


def _echo_row(echo: Callable[[str], None], row: dict) -> None:
    ways = [row[w] for w in DIRECTIONS]
    echo(f"{row['calls']:>6} {row['bridged']:>8} {row['cpu_percent']:>6.1f} {row['rss_mb']:>7.0f}"
         f" {row['pdd_p50_ms']:>8.2f} {row['pdd_p99_ms']:>8.2f} {row['direct_p50_ms']:>10.2f}"
         f" {row['direct_p99_ms']:>10.2f} {row['added_p50_ms']:>10.2f} {row['added_p99_ms']:>10.2f}"
         f" {sum(w['lost'] for w in ways):>6} {max(w['jitter_mean_ms'] for w in ways):>7.2f}"
         f" {max(w['jitter_max_ms'] for w in ways):>6.2f} {row['turn_p99_ms']:>8.1f} {row['turn_max_ms']:>6.1f}")
    echo(f"       inside the engine (INVITE handled to 180 sent): p50 {row['inside_p50_ms']:.2f} ms,"
         f" p99 {row['inside_p99_ms']:.2f} ms; cpu in the kernel {row['cpu_system_percent']:.1f} %;"
         f" longest turn {row['turn_max_ms']:.1f} ms, {row['turn_max_cpu_ms']:.1f} ms of it on a core")
    counts, ms = row["gc_counts"], row["gc_ms"]
    echo(f"       collections on the engine thread (young, middle, full): {counts[0]}, {counts[1]}, {counts[2]};"
         f" {ms[0]:.1f}, {ms[1]:.1f}, {ms[2]:.1f} ms in all; the longest {row['gc_longest_ms']:.2f} ms")
    for way in DIRECTIONS:
        w = row[way]
        echo(f"       {way.replace('_to_', ' to ')}: {w['streams']} streams, {w['sent']} packets sent;"
             f" into the engine {w['engine_received']}, {w['lost_in']} lost, jitter mean"
             f" {w['jitter_in_mean_ms']:.2f} ms, max {w['jitter_in_max_ms']:.2f} ms; out of it {w['received']},"
             f" {w['lost_out']} lost, jitter mean {w['jitter_mean_ms']:.2f} ms, max {w['jitter_max_ms']:.2f} ms")
    problems = []
    if row["errors"]:
        problems.append(f"errors: {row['errors']}")
    if row["not_ended"]:
        problems.append(f"{row['not_ended']} calls did not end")
    if row["live_after"] or row["leaked"]:
        problems.append(f"after hang-up the engine still holds {row['live_after']} legs, {row['leaked']} leaked")
    if problems:
        echo("       " + "; ".join(problems))


def _prepare(data: Path, phone_port: int, caller_port: int) -> None:
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


def _start(data: Path, procs: list[subprocess.Popen], monitor: bool = False) -> tuple[subprocess.Popen, ...]:
    """The phone, the caller and the engine, each ready; appended to procs as they start."""
    py = sys.executable
    sip_port, trunk_port, phone_port, caller_port = (_free_port() for _ in range(4))
    _prepare(data, phone_port, caller_port)
    phone = _proc([py, "-m", "appliance.engine.benchpeer", "answer", str(phone_port)], "phone")
    procs.append(phone)
    _until(phone, lambda s: s == "ready")
    caller = _proc([py, "-m", "appliance.engine.benchpeer", "call", str(caller_port),
                    f"sip:{NUMBER}@127.0.0.1:{trunk_port}", "20000", f"sip:101@127.0.0.1:{phone_port}"], "caller")
    procs.append(caller)
    _until(caller, lambda s: s == "ready")
    runner = os.environ.get("PBX_BENCH_ENGINE", "-m appliance.engine.runner").split()
    engine = _proc([py, *runner, "--data", str(data), "--sip-port", str(sip_port), "--trunk-port", str(trunk_port),
                    "--router", "appliance.engine.bench:router", "--quiet",
                    "--pj-log-level", os.environ.get("PBX_BENCH_PJLOG", "2"), *(["--monitor"] if monitor else [])],
                   "engine")
    procs.append(engine)
    return phone, caller, engine


def _idle(pid: int) -> dict:
    time.sleep(1.0)
    idle0 = _cpu_seconds(pid)
    time.sleep(2.0)
    return {"cpu_percent": round((_cpu_seconds(pid) - idle0) / 2 * 100, 1), "rss_mb": round(_rss_mb(pid))}


def _stop(procs: list[subprocess.Popen]) -> None:
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


def _echo_monitor(echo: Callable[[str], None], size: dict) -> None:
    """A size measured with and without the monitor: both rows, what the monitor adds, what it delivered."""
    off, on, seen = size["without"], size["with"], size["monitor"]
    echo("without the monitor:")
    _echo_row(echo, off)
    echo("with the monitor subscribed:")
    _echo_row(echo, on)
    echo(f"monitor: pdd p50 {off['pdd_p50_ms']:.2f} -> {on['pdd_p50_ms']:.2f} ms ({size['pdd_p50_growth_ms']:+.2f}),"
         f" p99 {off['pdd_p99_ms']:.2f} -> {on['pdd_p99_ms']:.2f} ms ({size['pdd_p99_growth_ms']:+.2f});"
         f" inside the engine p99 {off['inside_p99_ms']:.2f} -> {on['inside_p99_ms']:.2f} ms;"
         f" cpu {off['cpu_percent']:.1f} -> {on['cpu_percent']:.1f} %")
    for key, what in (("delays_ms", "post-dial delay"), ("inside_ms", "inside the engine")):
        g = size["interval"][key]
        echo(f"monitor: {what} p99 grows {g['growth_ms']:+.2f} ms; 90 % bootstrap interval"
             f" {g['low_ms']:+.2f} to {g['high_ms']:+.2f} ms")
    echo(f"monitor: {seen['delivered']} LiveCall events delivered of {seen['published']} published;"
         f" every stage (arriving, ringing, talking, ended) seen for {seen['complete']} of {seen['calls']} calls;"
         f" {seen['left']} left in the model after the calls ended")
    echo(f"monitor: from the engine's event of a stage to the subscriber: p50 {seen['lag_p50_ms']} ms,"
         f" p99 {seen['lag_p99_ms']} ms, longest {seen['lag_max_ms']} ms")


def _monitor_size(n: int, compared: dict) -> dict:
    off, on = compared["without"], compared["with"]
    growth = {f"pdd_p{p}_growth_ms": round(on[f"pdd_p{p}_ms"] - off[f"pdd_p{p}_ms"], 2) for p in (50, 99)}
    return {"calls": n, **compared, **growth}


def run(sizes: tuple[int, ...] = SIZES, hold: float = 5.0, echo: Callable[[str], None] = print,
        rounds: int = 3, monitor: bool = False) -> dict:
    """Measure every size; echo the table as it goes, and return it as one object (what `--json` prints).

    With `monitor`, the live monitor runs beside the engine as in `pbx run` and a subscriber reads
    its stream; each size runs `rounds` rounds without it and as many with it, interleaved."""
    report: dict[str, Any] = {"sizes": []}
    with tempfile.TemporaryDirectory(prefix="pbx-bench-") as tmp:
        procs: list[subprocess.Popen] = []
        stream: Stream | None = None
        try:
            phone, caller, engine = _start(Path(tmp) / "data", procs, monitor)
            ready = json.loads(_until(engine, lambda s: '"ready"' in s))
            pid = ready["pid"]
            report["machine"] = machine(ready.get("pjsua2", ""))
            report["idle"] = _idle(pid)
            echo(f"engine idle: {report['idle']['cpu_percent']:.1f} % of a core, {report['idle']['rss_mb']} MB")
            if monitor:
                stream = Stream(ready["monitor"])
                echo(f"monitor: the live monitor beside the engine, one subscriber; each size {rounds} rounds"
                     f" without it and {rounds} with it, interleaved")
            _explain(echo, rounds)
            _engine_stats(engine)  # the start's turns (the B2BUA's start takes about 150 ms) are not a call's
            for n in sizes:
                if stream is not None:
                    size = _monitor_size(n, _compare(caller, phone, engine, n, hold, pid, rounds, stream))
                    report["sizes"].append(size)
                    _echo_monitor(echo, size)
                    continue
                row = _row(n, _rounds(caller, phone, engine, n, hold, pid, rounds))
                report["sizes"].append(row)
                _echo_row(echo, row)
            _send(engine, '{"cmd": "quit"}')
            engine.wait(10)
        finally:
            if stream is not None:
                stream.close()
            _stop(procs)
    report["hold_s"], report["rounds"] = hold, rounds
    report["machine"]["loadavg_1min_end"] = round(os.getloadavg()[0], 2)  # others' work on the same cores
    return report


if __name__ == "__main__":
    run()
