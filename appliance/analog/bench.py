"""`pbx bench line`: does a busy analog line process disturb the other calls?  Jitter and loss, printed.
`pbx bench echo`: what the line's echo canceller costs per 20 ms frame (`canceller_cost`, at the end).

The scene (all on loopback, one pjsua2 library per process): the engine (runner), two desk phones
(101, 102: `appliance.engine.benchpeer answer`, a tone each), a provider on an IP trunk
(`benchpeer call`), and one FXO line (`FxoLine`) in this process, its audio through sounddevice
on ALSA's `file` plugin (capture from a file written here: an FSK caller ID burst, then 1 kHz) and
its pins on gpiozero's MockFactory.

The provider's call is bridged to 102, the line's (rung on the mock ring pin) to 101.  Then a thread
of this process, the line's, holds the GIL for `--hold` seconds (`sum(range(20_000_000))`, one C call
at a time, never yielding), and the RTP statistics (RFC 3550 interarrival jitter, packets lost) are
read: at 102 and at the provider for the other call; at 101, at the line, and into the engine from
the callers (provider and line pooled: the engine keeps them by role) for the line's call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from appliance.engine.bench import _free_port, _proc, _send, _stop, _until
from appliance.store import Store

LINE_NUMBER = "+380443330000"
PROVIDER_NUMBER = "+380441234567"
RING, HOOK, LOOP = 5, 6, 13
ENGINE_RTP_PORT = 47000
ASOUNDRC = """pcm.line {{
    type file
    slave.pcm "null"
    file "{play}"
    infile "{capture}"
    format "raw"
}}
"""


def file_device(folder: Path) -> tuple[Path, Path]:
    """ALSA's `file` plugin as the PCM `line`: its capture reads folder/capture.raw, its playback
    writes folder/play.raw (raw 16-bit), for the benches and the tests; returns (capture, play).

    PortAudio lists ALSA's devices once, when sounddevice is imported, and ALSA reads its
    configuration then: a process that already imported it (a test file run after another in the
    same worker) starts PortAudio again, or its `line` would still be the earlier folder's files.
    Call it with no stream open.
    """
    capture, play = folder / "capture.raw", folder / "play.raw"
    (folder / "asound.conf").write_text(ASOUNDRC.format(play=play, capture=capture))
    # PortAudio lists a device only if it opens; the file plugin opens only with its infile there.
    capture.touch()
    os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{folder / 'asound.conf'}"
    # ALSA keeps the configuration it read first for the whole process, and something else may have
    # read it already (pjmedia's ALSA device, when a pjsua2 library ran in this process): drop it,
    # so that the next reader takes the files named above.
    ctypes.CDLL(ctypes.util.find_library("asound") or "libasound.so.2").snd_config_update_free_global()
    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd._terminate()      # sounddevice's own way to scan the devices again
        sd._initialize()
    return capture, play


def router(store: Store) -> Any:
    """The line's number rings 101, the provider's rings 102."""
    from appliance.routing.model import Route, RoutingConfig
    from appliance.routing.router import Router

    return Router(RoutingConfig(routes=(Route("line", "ext:101", numbers=(LINE_NUMBER,)),
                                        Route("provider", "ext:102", numbers=(PROVIDER_NUMBER,))),
                                known_extensions={"101": "Line's phone", "102": "Other phone"}))


def hold_the_gil(seconds: float) -> None:
    """Keep the interpreter busy: each sum() is one C call that never lets the GIL go (about 0.3 s here)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(20_000_000))


def _prepare(data: Path, phones: dict[str, int], line_port: int, provider_port: int) -> None:
    with Store(data) as store:
        for ext in phones:
            store.add_extension(ext, f"Desk {ext}", f"bench-pw-{ext}")
        # The desk phones are benchpeers that do not register: their bindings are written as the edge writes them.
        store.save_bindings([{"extension": ext, "contact": f"sip:{ext}@127.0.0.1:{port}", "source_host": "127.0.0.1",
                              "source_port": port, "transport": "udp", "q": 1.0, "expires_at": time.time() + 86400,
                              "registered_at": time.time()} for ext, port in phones.items()], [])
        store.put_trunk({"name": "line", "kind": "analog", "host": "127.0.0.1", "port": line_port,
                         "addresses": ["127.0.0.1"], "numbers": [LINE_NUMBER]})
        store.put_trunk({"name": "provider", "kind": "ip", "host": "127.0.0.1", "port": provider_port,
                         "addresses": ["127.0.0.1"], "numbers": [PROVIDER_NUMBER]})
        store.set_setting("engine", {"rtp_port": ENGINE_RTP_PORT, "rtp_ports": 200})


def _json(p: subprocess.Popen, key: str, timeout: float = 30) -> dict:
    return json.loads(_until(p, lambda s: s.startswith("{") and f'"{key}"' in s, timeout))


def _line_rtp(line: Any) -> dict:
    """The line's thread: RTP the line's call received from the engine."""
    from appliance.engine.benchpeer import rtp_figures, stream_stat

    st = stream_stat(line.call) if line.call is not None else None
    return rtp_figures([st] if st is not None else [])


class _Events:
    def __init__(self) -> None:
        self.q: queue.SimpleQueue = queue.SimpleQueue()

    def wait(self, kind: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ev = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            if ev["kind"] == kind:
                return ev
        raise RuntimeError(f"the line did not report {kind} within {timeout} s")


def run(hold: float = 4.0, echo: Callable[[str], None] = print) -> dict:
    with tempfile.TemporaryDirectory(prefix="pbx-bench-line-") as tmp:
        folder = Path(tmp)
        capture, play = file_device(folder)
        import numpy as np
        from gpiozero.pins.mock import MockFactory

        from . import callerid, tones
        from .config import LineConfig
        from .fxo import FxoLine

        np.concatenate([tones.silence(0.6), callerid.fsk_burst(callerid.mdmf_message("0671234567")),
                        tones.silence(0.3), tones.tone(1000, 60, 0.3)]).astype("<i2").tofile(capture)
        sip_port, trunk_port, line_port, provider_port = (_free_port() for _ in range(4))
        phones = {"101": _free_port(), "102": _free_port()}
        _prepare(folder / "data", phones, line_port, provider_port)
        py = sys.executable
        procs: list[subprocess.Popen] = []
        line = None
        try:
            for ext, port in phones.items():
                procs.append(_proc([py, "-m", "appliance.engine.benchpeer", "answer", str(port)], f"phone{ext}"))
                _until(procs[-1], lambda s: s == "ready")
            phone101, phone102 = procs
            provider = _proc([py, "-m", "appliance.engine.benchpeer", "call", str(provider_port),
                              f"sip:{PROVIDER_NUMBER}@127.0.0.1:{trunk_port}", "20000"], "provider")
            procs.append(provider)
            _until(provider, lambda s: s == "ready")
            engine = _proc([py, "-m", "appliance.engine.runner", "--data", str(folder / "data"),
                            "--sip-port", str(sip_port), "--trunk-port", str(trunk_port),
                            "--router", "appliance.analog.bench:router", "--quiet"], "engine")
            procs.append(engine)
            _json(engine, "ready")
            factory, events = MockFactory(), _Events()
            cfg = LineConfig("line", LINE_NUMBER, line_port, device="line", ring=RING, hook=HOOK, loop=LOOP,
                             caller_id_wait=4, ring_gap=60, silence_seconds=0)
            line = FxoLine(cfg, ("127.0.0.1", trunk_port), pin_factory=factory, on_event=events.q.put)
            line.start()
            factory.pin(LOOP).drive_low()

            _send(provider, "1 1 media")              # one call, held until told to hang up
            if _json(provider, "held")["held"] != 1:
                raise RuntimeError("the provider's call was not answered")
            _json(provider, "talked")
            factory.pin(RING).drive_low()             # one ring; the caller ID burst follows it
            events.wait("LineRinging")
            factory.pin(RING).drive_high()
            events.wait("LineAnswered")
            time.sleep(1.0)                           # both calls settled
            t = threading.Thread(target=hold_the_gil, args=(hold,), name="gil-holder")
            t0 = time.monotonic()
            t.start()
            t.join()
            held = time.monotonic() - t0
            time.sleep(1.0)                           # the stalled stream catches up
            figures: dict[str, Any] = {}
            _send(phone102, "media")
            figures["other_call_at_102"] = _json(phone102, "media")["media"]
            _send(phone101, "media")
            figures["line_call_at_101"] = _json(phone101, "media")["media"]
            figures["line_call_at_the_line"] = line.thread.call(_line_rtp, line)
            _send(engine, json.dumps({"cmd": "stats", "media": True}))
            figures["into_engine_from_provider_and_line"] = _json(engine, "stats")["media"]["a"]
            _send(phone101, "hangup")
            events.wait("LineIdle")
            _send(provider, "hangup")
            _json(provider, "placed")
            _send(engine, '{"cmd": "quit"}')
            engine.wait(10)
        finally:
            if line is not None:
                line.stop()
            _stop(procs)
    report = {"machine": {"cores": os.cpu_count(), "arch": platform.machine(), "python": platform.python_version(),
                          "loadavg_1min": round(os.getloadavg()[0], 2)},
              "gil_held_s": round(held, 2), **figures}
    _echo(echo, report)
    return report


def _echo(echo: Callable[[str], None], r: dict) -> None:
    m = r["machine"]
    echo(f"machine: {m['cores']} cores {m['arch']}, Python {m['python']}, load average {m['loadavg_1min']}")
    echo(f"the line's process held the GIL for {r['gil_held_s']} s; RTP as each end received it"
         " over the whole call (jitter: RFC 3550, ms)")
    echo(f"{'':46} {'sent':>5} {'received':>8} {'lost':>5} {'jitter mean':>11} {'max':>7}")
    for key, text in (("other_call_at_102", "other call (provider -> 102), at 102"),
                      ("line_call_at_101", "line's call, at 101 (the engine's clock)"),
                      ("line_call_at_the_line", "line's call, at the line (from the engine)"),
                      ("into_engine_from_provider_and_line", "engine's caller legs (provider, line pooled)")):
        f = r[key]
        echo(f"{text:46} {f['sent']:>5} {f['received']:>8} {f['lost']:>5} {f['jitter_mean_ms']:>11.2f}"
             f" {f['jitter_max_ms']:>7.1f}")
    echo("sent: packets that end sent on that call in the same time; the line sends none while its GIL is held")


def canceller_cost(tails: tuple[int, ...] = (64, 128), seconds: float = 200.0,
                   echo: Callable[[str], None] = print) -> dict:
    """CPU time of the line's canceller per 20 ms frame, for each tail (ms), fed as the audio thread feeds it.

    The far end is white noise and the line returns it 10 dB down, 20 ms after it was played, so the
    canceller works on every frame.  `seconds` of audio per tail, as fast as the machine goes; the
    thread's CPU time per frame, and the wall time of the median and the slowest 1 % of frames."""
    import numpy as np

    from .audio import FRAME, RATE
    from .echo import LineCanceller

    n = int(seconds * RATE) // FRAME
    rng = np.random.default_rng(1)
    far = np.clip(rng.standard_normal(n * FRAME) * 3000, -32768, 32767).astype(np.int16)
    played = np.concatenate([np.zeros(FRAME, dtype=np.int16), far[:-FRAME]])   # frame i: the one played before it
    back = np.concatenate([np.zeros(2 * FRAME, dtype=np.int16), (far[:-2 * FRAME] * 0.316).astype(np.int16)])
    figures = {}
    for tail in tails:
        lc = LineCanceller(FRAME, tail * RATE // 1000, RATE)
        walls = []
        try:
            cpu0 = time.thread_time()
            for i in range(n):
                t = time.perf_counter()
                lc.process(back[i * FRAME:(i + 1) * FRAME], played[i * FRAME:(i + 1) * FRAME])
                walls.append(time.perf_counter() - t)
            cpu = (time.thread_time() - cpu0) / n
        finally:
            lc.close()
        walls.sort()
        figures[str(tail)] = {"frames": n, "cpu_us_per_frame": round(cpu * 1e6, 1),
                              "share_of_a_core_pct": round(100 * cpu / (FRAME / RATE), 2),
                              "wall_p50_us": round(walls[n // 2] * 1e6, 1),
                              "wall_p99_us": round(walls[int(n * 0.99)] * 1e6, 1)}
    report = {"machine": {"cores": os.cpu_count(), "arch": platform.machine(), "python": platform.python_version(),
                          "loadavg_1min": round(os.getloadavg()[0], 2)}, "tails_ms": figures}
    m = report["machine"]
    echo(f"machine: {m['cores']} cores {m['arch']}, Python {m['python']}, load average {m['loadavg_1min']}")
    echo(f"{'tail':>6} {'frames':>7} {'CPU per frame':>14} {'of one core':>12} {'wall p50':>9} {'p99':>8}")
    for tail, f in figures.items():
        echo(f"{tail + ' ms':>6} {f['frames']:>7} {f['cpu_us_per_frame']:>11.1f} us {f['share_of_a_core_pct']:>10.2f} %"
             f" {f['wall_p50_us']:>6.1f} us {f['wall_p99_us']:>5.1f} us")
    echo("a frame is 20 ms of audio: the share of one core is what a line or phone with the canceller adds")
    return report


if __name__ == "__main__":
    run()
