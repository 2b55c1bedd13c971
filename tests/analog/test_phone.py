"""An analog phone (FXS) as extension 201, end to end: real sounddevice on ALSA's `file` plugin, gpiozero's
mock pins, the edge (in this process, on its own loop), the engine and a registered pjsua2 desk phone 101.

The phone's user agent runs in the test process, so the test lifts and hangs up its handset (the hook
pin), reads its ring pin, writes what the handset sends (the capture file: DTMF, a 1 kHz voice) and
reads what the phone was sent (the playback file: dial tone, caller ID, the far end's voice).
"""

from __future__ import annotations

import queue
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.analog import callerid as cid
from appliance.analog.bench import file_device
from appliance.analog import tones
from appliance.analog.config import PhoneConfig
from appliance.store import Store
from tests.conftest import free_port
from tests.edge.conftest import RunningEdge
from tests.engine import harness

pytestmark = [pytest.mark.sip, pytest.mark.slow]

RING, HOOK = 20, 21


def write_raw(path: Path, *parts: np.ndarray) -> None:
    np.concatenate(parts).astype("<i2").tofile(path)


def read_raw(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<i2")


def share_in_windows(x: np.ndarray, freq: float, seconds: float = 0.5) -> float:
    n = int(seconds * 8000)
    return max((tones.relative_power(x[i:i + n], freq) for i in range(0, max(1, len(x) - n), n // 2)), default=0.0)


def wait_for_bindings(data: Path, extensions: set[str], timeout: float = 10.0) -> None:
    """Until the edge has stored these extensions' bindings: the engine finds a phone to ring there."""
    deadline = time.monotonic() + timeout
    with Store(data) as store:
        while not extensions <= {b["extension"] for b in store.bindings()}:
            assert time.monotonic() < deadline, f"the edge did not store the bindings of {extensions}"
            time.sleep(0.05)


class Phone:
    """The analog phone under test: its events, its pins and its files."""

    def __init__(self, folder: Path, data: Path, edge_port: int, **settings):
        from gpiozero.pins.mock import MockFactory

        from appliance.analog.fxs import FxsPhone

        self.capture, self.play = folder / "capture.raw", folder / "play.raw"
        write_raw(self.capture, tones.silence(1))
        self.factory = MockFactory()
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.seen: list[dict] = []
        self.history: list[str] = []     # every event's kind, in the order the phone reported them

        def new_secret() -> str:
            with Store(data) as store:
                return store.set_password("201")

        cfg = PhoneConfig("201", free_port(), device="line", ring=RING, hook=HOOK, digit_timeout=3, **settings)
        self.fxs = FxsPhone(cfg, ("127.0.0.1", edge_port), new_secret, pin_factory=self.factory, data_dir=folder,
                            on_event=self.events.put)
        self.fxs.start()

    def expect(self, kind: str, timeout: float = 10.0, **match) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.seen):
                if ev["kind"] == kind and all(ev.get(k) == v for k, v in match.items()):
                    return self.seen.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"phone: no {kind} {match} within {timeout} s; saw {self.seen[-10:]}")
            try:
                ev = self.events.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            self.seen.append(ev)
            self.history.append(ev["kind"])

    def hook(self, off: bool) -> None:
        pin = self.factory.pin(HOOK)
        pin.drive_low() if off else pin.drive_high()   # the off-hook detector pulls the pin low


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fxs")
    file_device(folder)
    data = folder / "data"
    with Store(data) as store:
        store.add_extension("101", "Desk", "desk-password-101")
        store.add_extension("201", "Analog phone", None)      # its phone sets its own secret
    sip_port, trunk_port = free_port(), free_port()
    edge = RunningEdge(data, ("127.0.0.1", sip_port), link_key=harness.LINK_KEY)
    procs: dict = {}
    phone = None
    try:
        edge_port = edge.start()
        procs["engine"] = harness.Proc(   # as harness.engine, with the edge as its way to the phones
            [sys.executable, "-m", "appliance.engine.runner", "--data", str(data), "--sip-port", str(sip_port),
             "--trunk-port", str(trunk_port), "--link-key", harness.LINK_KEY, "--router", "tests.analog.routes:office",
             "--edge", f"127.0.0.1:{edge_port}"], "engine")
        procs["engine"].expect(timeout=15, kind="ready")
        desk = procs["101"] = harness.Proc(
            [sys.executable, str(harness.AGENT), "--port", str(free_port()), "--name", "101",
             "--register", f"127.0.0.1:{edge_port}", "--password", "desk-password-101"], "101")
        desk.expect(timeout=15, ev="ready")
        desk.expect(timeout=15, ev="reg", code=200)
        phone = Phone(folder, data, edge_port)
        phone.expect("PhoneRegistration", code=200)
        wait_for_bindings(data, {"101", "201"})
        yield {"phone": phone, "desk": desk, "engine": procs["engine"], "folder": folder, "edge_port": edge_port}
    finally:
        if phone is not None:
            phone.fxs.stop()
        for p in procs.values():
            p.stop()
        edge.close()


@pytest.fixture
def world(office):
    phone, desk = office["phone"], office["desk"]
    desk.send(cmd="hangup", id="all")
    desk.mode(mode="ring")
    if phone.fxs.thread.call(lambda: phone.fxs.state) != "idle":
        phone.hook(False)
        phone.expect("PhoneIdle")
    desk.clear()
    office["engine"].clear()
    phone.seen.clear()
    phone.history.clear()
    phone.factory.pin(RING).clear_states()
    yield office


def test_off_hook_and_digits_call_a_desk_phone_and_talk_both_ways(world):
    phone, desk = world["phone"], world["desk"]
    write_raw(phone.capture, tones.silence(0.6), tones.dtmf("101#"), tones.silence(0.3), tones.tone(1000, 40, 0.3))
    desk.mode(mode="answer", delay=0.3)
    phone.hook(True)
    phone.expect("PhoneDialTone")
    assert phone.expect("PhoneDialled")["number"] == "101"
    incoming = desk.expect(ev="incoming")
    assert "201" in incoming["remote"]
    phone.expect("PhoneAnswered", direction="out")
    heard = world["folder"] / "desk-heard.wav"
    desk.send(cmd="tone", id=incoming["id"], freq=600)
    desk.send(cmd="record", id=incoming["id"], path=str(heard))
    time.sleep(2.0)                       # two seconds of talk in both directions
    desk.send(cmd="stoprecord")
    desk.expect(ev="ok", cmd="stoprecord")
    phone.hook(False)                     # on-hook ends the call
    phone.expect("PhoneIdle")
    desk.expect(ev="state", id=incoming["id"], state="disconnected")
    played = read_raw(phone.play)
    assert share_in_windows(played, 425) > 0.8            # the dial tone
    assert share_in_windows(played, 600) > 0.5            # the desk phone's voice reached the handset
    assert harness.goertzel(heard, 1000) > 0.3            # the handset's reached the desk phone


def test_an_incoming_call_rings_with_caller_id_between_the_rings(world):
    phone, desk = world["phone"], world["desk"]
    write_raw(phone.capture, tones.silence(40))
    desk.send(cmd="call", uri=f"sip:201@127.0.0.1:{world['edge_port']}")
    call = desk.expect(ev="calling")["id"]
    assert phone.expect("PhoneRinging")["number"] == "101"
    phone.expect("PhoneRing", ring=1)
    phone.expect("PhoneRingEnded", ring=1, timeout=5)
    sent = phone.expect("PhoneCallerIdSent", timeout=5)
    assert (sent["number"], sent["name"]) == ("101", "Desk")
    phone.expect("PhoneRing", ring=2, timeout=10)
    # The phone reports in the order it acts: the burst was sent after ring 1 ended and before ring 2.
    assert [k for k in phone.history if k in ("PhoneRing", "PhoneRingEnded", "PhoneCallerIdSent")][:4] == \
        ["PhoneRing", "PhoneRingEnded", "PhoneCallerIdSent", "PhoneRing"]
    states = [s.state for s in phone.factory.pin(RING).states]
    assert states[:4] == [False, True, False, True]       # the cadence on the ring pin: on, off, on
    phone.hook(True)                                      # lift the handset: answered
    phone.expect("PhoneAnswered", direction="in")
    desk.expect(ev="state", id=call, state="confirmed")
    assert not phone.factory.pin(RING).state              # no ringing once answered
    phone.hook(False)
    phone.expect("PhoneIdle")
    desk.expect(ev="state", id=call, state="disconnected")
    caller = cid.decode_fsk(read_raw(phone.play))
    assert (caller.number, caller.name, caller.status) == ("101", "Desk", "number")


def test_the_caller_giving_up_stops_the_ringing(world):
    phone, desk = world["phone"], world["desk"]
    write_raw(phone.capture, tones.silence(10))
    desk.send(cmd="call", uri=f"sip:201@127.0.0.1:{world['edge_port']}")
    call = desk.expect(ev="calling")["id"]
    phone.expect("PhoneRing", ring=1)
    desk.send(cmd="hangup", id=call)
    phone.expect("PhoneIdle")
    assert not phone.factory.pin(RING).state
    assert phone.fxs.thread.call(phone.fxs.status)["state"] == "idle"
