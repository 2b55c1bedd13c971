"""Processes for the engine's integration tests: the engine runner and pjsua2 agents.

Each runs in its own process (one pjsua2 Endpoint per process) and speaks
JSON lines; `Proc.expect()` waits for a line that matches.
"""

from __future__ import annotations

import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "tests" / "peers" / "agent.py"


class Proc:
    def __init__(self, args: list[str], name: str):
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env, cwd=str(ROOT))
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        self.seen: list[dict] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            line = line.strip()
            if line.startswith("{"):
                try:
                    self.lines.put(json.loads(line))
                except ValueError:
                    pass

    def _read_err(self) -> None:
        for line in self.p.stderr:
            self.stderr.append(line)

    def send(self, **cmd) -> None:
        try:
            self.p.stdin.write(json.dumps(cmd) + "\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            self.p.wait(timeout=5)
            raise AssertionError(f"{self.name} is gone (exit code {self.p.returncode}); its last words:\n"
                                 + "".join(self.stderr[-30:])) from None

    def mode(self, **settings) -> None:
        """Set how the agent answers, and wait until it has: a call arriving
        meanwhile would otherwise meet the old mode."""
        self.send(cmd="mode", **settings)
        self.expect(ev="ok", cmd="mode")

    def do(self, timeout: float = 10.0, **cmd) -> None:
        """Send a command and wait until the agent has carried it out; its error fails the test."""
        self.send(**cmd)
        deadline = time.monotonic() + timeout
        while True:
            for i, obj in enumerate(self.seen):
                if obj.get("cmd") == cmd["cmd"] and obj.get("ev") == "ok":
                    self.seen.pop(i)
                    return
                if obj.get("where") == cmd["cmd"] and obj.get("ev") == "error":
                    raise AssertionError(f"{self.name}: {cmd} failed: {obj.get('error')}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: {cmd} not done within {timeout} s; saw {self.seen[-15:]}")
            try:
                self.seen.append(self.lines.get(timeout=min(left, 0.2)))
            except queue.Empty:
                pass

    def drain(self) -> list[dict]:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen

    def expect(self, timeout: float = 10.0, **match) -> dict:
        """The first line (seen before or arriving) with these fields; it is consumed."""
        deadline = time.monotonic() + timeout
        while True:
            for i, obj in enumerate(self.seen):
                if all(obj.get(k) == v for k, v in match.items()):
                    return self.seen.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {match} within {timeout} s; saw {self.seen[-15:]}\n"
                                     f"stderr: {''.join(self.stderr[-20:])}")
            try:
                self.seen.append(self.lines.get(timeout=min(left, 0.2)))
            except queue.Empty:
                pass

    def all(self, **match) -> list[dict]:
        self.drain()
        return [o for o in self.seen if all(o.get(k) == v for k, v in match.items())]

    def clear(self) -> None:
        self.drain()
        self.seen.clear()

    def stop(self) -> None:
        try:
            self.send(cmd="quit")
            self.p.wait(timeout=8)
        except Exception:  # noqa: BLE001
            self.p.kill()
            self.p.wait(timeout=5)


def agent(port: int, name: str) -> Proc:
    p = Proc([sys.executable, str(AGENT), "--port", str(port), "--name", name], name)
    p.expect(timeout=15, ev="ready")
    return p


# The edge's secret the test engines are started with: a test that stands in
# for the edge adds it (`edge_headers`), as the real edge does.
LINK_KEY = "test-link-key"


def edge_headers(ext: str) -> dict[str, str]:
    """The headers the edge adds to a phone's INVITE it relays to the engine."""
    return {"X-PBX-Extension": ext, "X-PBX-Link": LINK_KEY}


def engine(data: Path, sip_port: int, trunk_port: int, router: str = "") -> Proc:
    args = [sys.executable, "-m", "appliance.engine.runner", "--data", str(data), "--sip-port", str(sip_port),
            "--trunk-port", str(trunk_port), "--link-key", LINK_KEY]
    if router:
        args += ["--router", router]
    p = Proc(args, "engine")
    p.expect(timeout=15, kind="ready")
    return p


def exchange_tones(a: "Proc", a_call: int, b: "Proc", b_call: int, folder: Path,
                   a_freq: int = 600, b_freq: int = 1400, seconds: float = 1.5) -> tuple[Path, Path]:
    """Each end of a bridged call plays its own tone and records the other; (what a heard, what b heard)."""
    a_wav, b_wav = folder / f"{a.name}-heard.wav", folder / f"{b.name}-heard.wav"
    a.send(cmd="tone", id=a_call, freq=a_freq)
    b.send(cmd="tone", id=b_call, freq=b_freq)
    a.send(cmd="record", id=a_call, path=str(a_wav))
    b.send(cmd="record", id=b_call, path=str(b_wav))
    time.sleep(seconds)
    a.send(cmd="stoprecord")
    b.send(cmd="stoprecord")
    # The recorder writes the file's header when pjsua lets it go, a moment after the command.
    return finished_recording(a_wav), finished_recording(b_wav)


def goertzel(path: str | Path, freq: float, skip: float = 0.3) -> float:
    """Relative power of `freq` in a 16-bit mono WAV (0..1 of the signal's power)."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    import array

    samples = array.array("h", raw)[int(skip * rate):]
    if len(samples) < rate // 10:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + k * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    energy = sum(x * x for x in samples) or 1
    return power / (energy * len(samples) / 2)


def finished_recording(path: Path, timeout: float = 5.0) -> Path:
    """The recording once its writer has closed it (pjsua closes a dropped recorder a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with wave.open(str(path)):
                return path
        except (wave.Error, EOFError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
