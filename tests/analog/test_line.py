"""The analog line (FXO) end to end: real sounddevice on ALSA's `file` plugin, gpiozero's mock pins,
the engine and pjsua2 desk phones in their own processes.

The line's capture is a file the test writes before each call (the plugin reads it from the start
whenever the line opens its audio); what the line plays goes to another file.  The line itself runs
in the test process, so the test drives its ring pin and reads its hook pin.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.analog import callerid as cid
from appliance.analog import tones
from appliance.analog.bench import file_device
from appliance.analog.config import LineConfig
from appliance.routing.numbers import normalise
from appliance.store import Store
from tests.conftest import free_port
from tests.engine import harness
from tests.analog.routes import LINE_NUMBER, PROVIDER_NUMBER

pytestmark = [pytest.mark.sip, pytest.mark.slow]

RING, HOOK, LOOP = 5, 6, 13


def write_raw(path: Path, *parts: np.ndarray) -> None:
    np.concatenate(parts).astype("<i2").tofile(path)


def read_raw(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<i2")


def share_in_windows(x: np.ndarray, freq: float, seconds: float = 0.5) -> float:
    """The largest share of power at `freq` in any window of the recording."""
    n = int(seconds * 8000)
    return max((tones.relative_power(x[i:i + n], freq) for i in range(0, max(1, len(x) - n), n // 2)), default=0.0)


class Line:
    """The line under test, its events, its pins and its files."""

    def __init__(self, folder: Path, trunk_port: int, line_port: int):
        from gpiozero.pins.mock import MockFactory

        from appliance.analog.fxo import FxoLine

        self.capture, self.play = folder / "capture.raw", folder / "play.raw"
        write_raw(self.capture, tones.silence(1))
        self.factory = MockFactory()
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.seen: list[dict] = []
        cfg = LineConfig("line", LINE_NUMBER, line_port, device="line", ring=RING, hook=HOOK, loop=LOOP,
                         caller_id_wait=4, ring_gap=2.5, dial_delay=0.4, silence_seconds=0)
        self.fxo = FxoLine(cfg, ("127.0.0.1", trunk_port), pin_factory=self.factory, data_dir=folder,
                           on_event=self.events.put)
        self.fxo.start()
        self.factory.pin(LOOP).drive_low()   # loop current flows (active low; after the pull-up is set)

    def expect(self, kind: str, timeout: float = 10.0, **match) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.seen):
                if ev["kind"] == kind and all(ev.get(k) == v for k, v in match.items()):
                    return self.seen.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"line: no {kind} {match} within {timeout} s; saw {self.seen[-10:]}")
            try:
                self.seen.append(self.events.get(timeout=min(left, 0.2)))
            except queue.Empty:
                pass

    def ring(self, on: bool) -> None:
        pin = self.factory.pin(RING)
        pin.drive_low() if on else pin.drive_high()   # the opto-coupler pulls the pin low while ringing

    @property
    def off_hook(self) -> bool:
        return bool(self.factory.pin(HOOK).state)


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analog")
    file_device(folder)
    data = folder / "data"
    sip_port, trunk_port, line_port, provider_port = (free_port() for _ in range(4))
    phone_ports = {"101": free_port(), "102": free_port()}
    with Store(data) as store:
        for ext, port in phone_ports.items():
            store.add_extension(ext, f"Desk {ext}", "pw" + ext)
            store.db["bindings"].insert({
                "extension": ext, "contact": f"sip:{ext}@127.0.0.1:{port}", "source_host": "127.0.0.1",
                "source_port": port, "transport": "udp", "q": 1.0, "expires_at": time.time() + 86400,
                "registered_at": time.time()})
        store.put_trunk({"name": "line", "kind": "analog", "host": "127.0.0.1", "port": line_port,
                         "addresses": ["127.0.0.1"], "numbers": [LINE_NUMBER]})
        store.put_trunk({"name": "provider", "kind": "ip", "host": "127.0.0.1", "port": provider_port,
                         "addresses": ["127.0.0.1"], "numbers": [PROVIDER_NUMBER]})
    procs = {}
    line = None
    try:
        for ext in ("101", "102"):
            procs[ext] = harness.agent(phone_ports[ext], ext)
        procs["provider"] = harness.agent(provider_port, "provider")
        procs["engine"] = harness.engine(data, sip_port, trunk_port, "tests.analog.routes:office")
        line = Line(folder, trunk_port, line_port)
        yield {"line": line, **procs, "folder": folder, "sip_port": sip_port, "trunk_port": trunk_port,
               "provider_port": provider_port, "data": data}
    finally:
        if line is not None:
            line.fxo.stop()
        for p in procs.values():
            p.stop()


@pytest.fixture
def world(office):
    line = office["line"]
    for name in ("101", "102", "provider"):
        office[name].send(cmd="hangup", id="all")
        office[name].mode(mode="ring")
    line.ring(False)
    assert line.fxo.thread.call(lambda: line.fxo.state) == "idle"
    for name in ("101", "102", "provider", "engine"):
        office[name].clear()
    line.seen.clear()
    yield office


def test_incoming_call_with_fsk_caller_id_is_answered_and_talks_both_ways(world):
    line, phone, engine = world["line"], world["101"], world["engine"]
    write_raw(line.capture, tones.silence(0.6),
              cid.fsk_burst(cid.mdmf_message("0671234567", "Petrenko", "12011030"), "v23"),
              tones.silence(0.3), tones.tone(1000, 30, 0.3))
    phone.mode(mode="answer", delay=0.3)
    line.ring(True)
    line.expect("LineRinging")
    line.ring(False)                       # the first ring ends; the burst follows in the capture
    assert line.expect("LineCallerId")["number"] == "0671234567"
    started = engine.expect(kind="CallStarted", timeout=10)
    assert (normalise(started["caller"]), started["trunk"]) == (normalise("0671234567"), "line")
    assert started["caller_name"] == "Petrenko"
    incoming = phone.expect(ev="incoming")
    line.expect("LineAnswered", direction="in")
    assert line.off_hook
    heard = world["folder"] / "101-heard.wav"
    phone.send(cmd="tone", id=incoming["id"], freq=600)
    phone.send(cmd="record", id=incoming["id"], path=str(heard))
    time.sleep(2.0)                        # two seconds of talk in both directions
    phone.send(cmd="stoprecord")
    phone.expect(ev="ok", cmd="stoprecord")
    phone.send(cmd="hangup", id=incoming["id"])
    line.expect("LineIdle")
    assert not line.off_hook
    assert harness.goertzel(heard, 1000) > 0.3          # the line's audio reached the phone
    assert share_in_windows(read_raw(line.play), 600) > 0.5   # the phone's reached the line
    status = line.fxo.thread.call(line.fxo.status)
    assert status["last_caller"]["number"] == "0671234567" and status["hook"] == "on"


def test_dtmf_caller_id(world):
    line, engine = world["line"], world["engine"]
    write_raw(line.capture, tones.silence(0.5), cid.dtmf_callerid("0501112233"), tones.silence(10))
    line.ring(True)
    line.expect("LineRinging")
    line.ring(False)
    got = line.expect("LineCallerId")
    assert (got["number"], got["source"]) == ("0501112233", "dtmf")
    assert normalise(engine.expect(kind="CallStarted")["caller"]) == normalise("0501112233")
    world["101"].expect(ev="incoming")
    line.expect("LineCallerGone", timeout=8)      # no second ring: the caller gave up
    line.expect("LineIdle")
    assert not line.off_hook


def test_a_corrupted_burst_gives_an_unknown_caller(world):
    line, engine = world["line"], world["engine"]
    burst = cid.fsk_burst(cid.mdmf_message("0671234567", "Petrenko")).copy()
    burst[len(burst) - 600:len(burst) - 500] = 0
    write_raw(line.capture, tones.silence(0.6), burst, tones.silence(10))
    line.ring(True)
    line.expect("LineRinging")
    line.ring(False)
    line.expect("RingEnded")
    line.ring(True)                                   # the second ring: no caller ID came
    got = line.expect("LineCallerId")
    assert (got["number"], got["status"]) == ("", "unknown")
    assert engine.expect(kind="CallStarted")["caller"] in ("anonymous", "")
    world["101"].expect(ev="incoming")
    line.ring(False)
    line.expect("LineCallerGone", timeout=8)
    line.expect("LineIdle")


def test_outgoing_call_dials_and_ends_on_busy_tone(world):
    line, phone = world["line"], world["101"]
    write_raw(line.capture, tones.silence(3.5), tones.cadence(0.35, 0.35, 10), tones.silence(5))
    phone.send(cmd="call", uri=f"sip:0671234567@127.0.0.1:{world['sip_port']}",
               headers=harness.edge_headers("101"))
    call = phone.expect(ev="calling")["id"]
    assert line.expect("LineSeized")["number"] == "0671234567"
    assert line.off_hook
    line.expect("LineAnswered", direction="out")
    phone.expect(ev="state", id=call, state="confirmed")
    assert line.expect("LineFarEndGone", timeout=15)["by"] == "busy"
    phone.expect(ev="state", id=call, state="disconnected")
    line.expect("LineIdle")
    assert not line.off_hook
    assert tones.detect_dtmf(read_raw(line.play)) == "0671234567"


def test_loop_current_loss_ends_a_call_and_a_busy_line_refuses_another(world):
    line, phone = world["line"], world["101"]
    write_raw(line.capture, tones.silence(30))
    phone.send(cmd="call", uri=f"sip:0671234567@127.0.0.1:{world['sip_port']}", headers=harness.edge_headers("101"))
    call = phone.expect(ev="calling")["id"]
    line.expect("LineAnswered", direction="out")
    world["102"].send(cmd="call", uri=f"sip:0509998877@127.0.0.1:{world['sip_port']}",
                      headers=harness.edge_headers("102"))
    other = world["102"].expect(ev="calling")["id"]
    assert world["102"].expect(ev="state", id=other, state="disconnected")["code"] >= 400
    line.factory.pin(LOOP).drive_high()                # the far end's exchange drops the loop
    try:
        assert line.expect("LineFarEndGone")["by"] == "loop"
        phone.expect(ev="state", id=call, state="disconnected")
    finally:
        line.factory.pin(LOOP).drive_low()
    line.expect("LineIdle")


def test_line_test_and_status_through_the_socket(world):
    from click.testing import CliRunner

    from appliance.analogcmd import line as line_cmd

    write_raw(world["line"].capture, tones.silence(0.2), tones.tone(1000, 5, 0.1))   # the hybrid's echo
    runner = CliRunner()
    out = runner.invoke(line_cmd, ["test", "--data", str(world["folder"]), "--json"])
    assert out.exit_code == 0, out.output
    import json

    result = json.loads(out.output)["line"]
    assert result["hook_relay"] == "ok" and result["loop_current"] is True and result["tone_returned"]
    # The tone goes out at 0.3 of full scale and the capture holds 1 kHz at 0.1: an echo return loss of
    # 20*log10(3), 9.5 dB; the canceller (64 ms by default) takes the steady echo further down within the
    # tone's second (11-14 dB here; the bound leaves room for where the tone starts in the capture).
    assert result["erl_db"] == pytest.approx(9.5, abs=0.5)
    assert result["echo_tail_ms"] == 64 and result["erle_db"] >= 6
    assert not world["line"].off_hook
    out = runner.invoke(line_cmd, ["status", "--data", str(world["folder"])])
    assert out.exit_code == 0, out.output
    assert "line" in out.output and "on-hook" in out.output and "echo canceller 64 ms" in out.output
    out = runner.invoke(line_cmd, ["test", "--data", str(world["folder"])])
    assert out.exit_code == 0, out.output
    assert "echo return loss" in out.output and "ERLE" in out.output

