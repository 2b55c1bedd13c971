"""The hook flash on an analog phone (FXS, extension 201): hold, consultation, attended and blind transfer,
back to the held call, and the recall when the handset is put down with a call on hold.

The scene is tests/analog/test_phone.py's (the real sounddevice on ALSA's `file` plugin, gpiozero's mock
pins, the edge in this process, the engine and pjsua2 desk phones in their own processes), with desk
phones 101 and 102.  What the handset says after the first dialling (the consultation's digits, a voice)
is written into the capture file just ahead of the place the phone's audio thread is reading, once the
phone has shown it is ready for it (`Handset.say`): the plugin reads the file from the stream's opening
at the pace of real time, so a sound written in advance would land early or late on a busy machine.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.analog import tones
from appliance.analog.bench import file_device
from appliance.store import Store
from tests.analog.test_phone import RING, Phone, read_raw, wait_for_bindings, write_raw
from tests.conftest import free_port
from tests.edge.conftest import RunningEdge
from tests.engine import harness
from tests.engine.listen import MUSIC

pytestmark = [pytest.mark.sip, pytest.mark.slow]

FLASH_MAX = 1.0     # s: the phone's flash_max here, wide enough that a busy machine keeps a 0.25 s flash a flash
FLASH = 0.25        # s the handset stays down for a flash
AHEAD = 1.0         # s ahead of the phone's reading place that a sound is written into the capture file
HEARD = 0.5         # the share of a half second's power a tone must hold to count as heard
WAIT = 15.0         # s to wait for a sound to come through (it usually takes a fraction of a second)
pieces = itertools.count()


class Handset:
    """The capture file as the handset's mouth: sounds written where the phone's audio will read them next."""

    def __init__(self, capture: Path):
        self.capture = capture

    def reading_at(self, timeout: float = 10.0) -> int:
        """The byte offset the phone's capture stream has read up to (its open file's position)."""
        deadline = time.monotonic() + timeout
        while True:
            for fd in os.listdir("/proc/self/fd"):
                try:
                    if os.readlink(f"/proc/self/fd/{fd}") != str(self.capture):
                        continue
                    info = dict(line.split(":", 1) for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines())
                except (OSError, ValueError):
                    continue
                if int(info["flags"].strip(), 8) & os.O_ACCMODE == os.O_RDONLY:
                    return int(info["pos"])
            if time.monotonic() > deadline:
                raise AssertionError(f"the phone's audio has not opened {self.capture} within {timeout} s")
            time.sleep(0.02)

    def say(self, sound: np.ndarray) -> int:
        """Write `sound` AHEAD seconds past the reading place; its offset in the file."""
        at = self.reading_at() + int(AHEAD * 8000) * 2
        with open(self.capture, "r+b") as f:
            f.seek(at)
            f.write(np.asarray(sound, dtype="<i2").tobytes())
        assert self.reading_at() <= at, "the phone read past the place before the sound was written there"
        return at

    def wait_read(self, offset: int, timeout: float = 10.0) -> None:
        """Until the phone has read the capture file up to `offset` (a sound written there is being heard)."""
        deadline = time.monotonic() + timeout
        while self.reading_at() < offset:
            if time.monotonic() > deadline:
                raise AssertionError(f"the phone's audio did not reach byte {offset} within {timeout} s")
            time.sleep(0.02)


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flash")
    file_device(folder)
    data = folder / "data"
    with Store(data) as store:
        store.add_extension("101", "Desk", "desk-password-101")
        store.add_extension("102", "Reception", "desk-password-102")
        store.add_extension("201", "Analog phone", None)
    sip_port, trunk_port = free_port(), free_port()
    edge = RunningEdge(data, ("127.0.0.1", sip_port), link_key=harness.LINK_KEY)
    procs: dict = {}
    phone = None
    try:
        edge_port = edge.start()
        procs["engine"] = harness.Proc(
            [sys.executable, "-m", "appliance.engine.runner", "--data", str(data), "--sip-port", str(sip_port),
             "--trunk-port", str(trunk_port), "--link-key", harness.LINK_KEY, "--router", "tests.analog.routes:office",
             "--edge", f"127.0.0.1:{edge_port}"], "engine")
        procs["engine"].expect(timeout=15, kind="ready")
        for ext in ("101", "102"):
            desk = procs[ext] = harness.Proc(
                [sys.executable, str(harness.AGENT), "--port", str(free_port()), "--name", ext,
                 "--register", f"127.0.0.1:{edge_port}", "--password", f"desk-password-{ext}"], ext)
            desk.expect(timeout=15, ev="ready")
            desk.expect(timeout=15, ev="reg", code=200)
        phone = Phone(folder, data, edge_port, flash_max=FLASH_MAX)
        phone.expect("PhoneRegistration", code=200)
        wait_for_bindings(data, {"101", "102", "201"})
        yield {"phone": phone, "handset": Handset(phone.capture), "101": procs["101"], "102": procs["102"],
               "engine": procs["engine"], "folder": folder, "edge_port": edge_port}
    finally:
        if phone is not None:
            phone.fxs.stop()
        for p in procs.values():
            p.stop()
        edge.close()


@pytest.fixture
def world(office):
    phone = office["phone"]
    fxs = phone.fxs
    for ext in ("101", "102"):
        office[ext].send(cmd="hangup", id="all")
        office[ext].mode(mode="ring")
    if fxs.thread.call(lambda: fxs.state) != "idle" or fxs.pins["hook"].is_active:
        phone.hook(False)
        fxs.thread.call(fxs._hang_up)    # whatever an earlier test left: on-hook, every call ended
    fxs.thread.call(lambda: setattr(fxs, "recall_for", 30.0))
    for name in ("101", "102", "engine"):
        office[name].clear()
    phone.seen.clear()
    phone.history.clear()
    phone.factory.pin(RING).clear_states()
    yield office


def state(phone: Phone) -> dict:
    return phone.fxs.thread.call(phone.fxs.status)



def talking_with_101(world) -> int:
    """Lift the handset and dial 101, which answers: the id of 101's call."""
    phone, desk = world["phone"], world["101"]
    write_raw(phone.capture, tones.silence(0.6), tones.dtmf("101#"), tones.silence(120))
    desk.mode(mode="answer", delay=0.3)
    phone.hook(True)
    assert phone.expect("PhoneDialled")["number"] == "101"
    call = desk.expect(ev="incoming")["id"]
    phone.expect("PhoneAnswered", direction="out")
    world["engine"].expect(kind="CallBridged")
    desk.mode(mode="ring")
    return call


def flash(phone: Phone) -> None:
    phone.hook(False)
    time.sleep(FLASH)       # how long the handset is down: the input, not what is checked
    phone.hook(True)
    phone.expect("PhoneFlash")


def dial(world, digits: str) -> None:
    world["handset"].say(tones.dtmf(digits))


def best_share(x: np.ndarray, freqs: tuple[float, ...]) -> float:
    """The largest share of the power that `freqs` together hold in any half second of `x` (8 kHz) louder than -50 dBFS."""
    n, best = 4000, 0.0
    for i in range(0, max(1, len(x) - n + 1), n // 4):
        w = x[i:i + n]
        if len(w) == n and tones.level_dbfs(w) > -50:
            best = max(best, sum(tones.relative_power(w, f) for f in freqs))
    return best


def until_heard(world, desk: harness.Proc, call: int, *freqs: float, share: float = HEARD) -> None:
    """Record what `desk` hears, a second at a time, until a half second of it holds `freqs`.

    Audio takes its time through two jitter buffers and the engine's bridge, more on a busy machine:
    the test waits for it to arrive instead of guessing how long that takes."""
    deadline = time.monotonic() + WAIT
    while True:
        path = world["folder"] / f"{desk.name}-{next(pieces)}.wav"
        desk.send(cmd="record", id=call, path=str(path))
        time.sleep(1.0)                   # the length of a piece, not a condition
        desk.send(cmd="stoprecord", id=call)
        desk.expect(ev="ok", cmd="stoprecord")
        with wave.open(str(harness.finished_recording(path))) as w:
            assert w.getframerate() == 8000
            best = best_share(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), freqs)
        if best >= share:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{desk.name} did not hear {freqs} within {WAIT} s (best share {best:.2f})")


def until_played(phone: Phone, freq: float) -> None:
    """Until the last half second the phone sent to the handset (the playback file) is `freq`."""
    deadline = time.monotonic() + WAIT
    while True:
        x = read_raw(phone.play)[-4000:]
        if len(x) == 4000 and best_share(x, (freq,)) >= HEARD:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the handset did not get {freq} Hz within {WAIT} s")
        time.sleep(0.1)


def talk_both_ways(world, desk: harness.Proc, call: int) -> None:
    """The desk phone plays 600 Hz and the handset says 1 kHz: each reaches the other."""
    desk.send(cmd="tone", id=call, freq=600)
    handset = world["handset"]
    handset.wait_read(handset.say(tones.tone(1000, 3 * WAIT, 0.3)))   # the phone is hearing it now
    until_heard(world, desk, call, 1000)
    until_played(world["phone"], 600)


def hear_each_other(world, a: harness.Proc, call_a: int, b: harness.Proc, call_b: int) -> None:
    """a plays 600 Hz and b 1400 Hz: each hears the other's."""
    a.send(cmd="tone", id=call_a, freq=600)
    b.send(cmd="tone", id=call_b, freq=1400)
    until_heard(world, a, call_a, 1400)
    until_heard(world, b, call_b, 600)


def test_flash_holds_and_putting_down_after_the_consultation_answered_joins_the_two(world):
    phone, a, b, engine = world["phone"], world["101"], world["102"], world["engine"]
    call_a = talking_with_101(world)
    flash(phone)
    assert phone.expect("PhoneHeld")["party"] == "101"
    engine.expect(kind="CallHeld")
    until_heard(world, a, call_a, *MUSIC, share=0.3)   # music on hold: its notes, one at a time

    dial(world, "102#")
    assert phone.expect("PhoneDialled", number="102")["consultation"] is True
    call_b = b.expect(ev="incoming")["id"]
    b.send(cmd="answer", id=call_b)
    phone.expect("PhoneAnswered", consultation=True)
    engine.expect(kind="CallBridged")     # the engine joins only a bridged consultation to the held call
    st = state(phone)
    assert (st["state"], st["held"], st["consulting"]) == ("consulting", "101", "102")

    phone.hook(False)                     # put down while talking to 102: attended transfer
    moved = phone.expect("PhoneTransferred")
    assert (moved["how"], moved["to"], moved["party"]) == ("attended", "102", "101")
    phone.expect("PhoneIdle")
    joined = engine.expect(kind="CallTransferred")
    assert (joined["how"], joined["by"], joined["to"]) == ("attended", "201", "102")
    phone.expect("PhoneTransferDone")
    hear_each_other(world, a, call_a, b, call_b)
    st = state(phone)
    assert (st["state"], st["held"], st["transfers"]) == ("idle", None, 0)
    a.send(cmd="hangup", id=call_a)
    b.expect(ev="state", id=call_b, state="disconnected")


def test_a_call_the_phone_answered_is_transferred_the_same_way(world):
    phone, a, b, engine = world["phone"], world["101"], world["102"], world["engine"]
    write_raw(phone.capture, tones.silence(120))
    a.send(cmd="call", uri=f"sip:201@127.0.0.1:{world['edge_port']}")
    call_a = a.expect(ev="calling")["id"]
    phone.expect("PhoneRinging")
    phone.hook(True)
    phone.expect("PhoneAnswered", direction="in")
    engine.expect(kind="CallBridged")
    flash(phone)
    assert phone.expect("PhoneHeld")["party"] == "101"
    engine.expect(kind="CallHeld")
    dial(world, "102#")
    call_b = b.expect(ev="incoming")["id"]
    b.send(cmd="answer", id=call_b)
    phone.expect("PhoneAnswered", consultation=True)
    engine.expect(kind="CallBridged")
    phone.hook(False)
    assert phone.expect("PhoneTransferred")["how"] == "attended"
    phone.expect("PhoneTransferDone")
    hear_each_other(world, a, call_a, b, call_b)
    a.send(cmd="hangup", id=call_a)
    b.expect(ev="state", id=call_b, state="disconnected")


def test_flash_and_flash_again_takes_the_held_call_back(world):
    phone, a, engine = world["phone"], world["101"], world["engine"]
    call_a = talking_with_101(world)
    flash(phone)
    phone.expect("PhoneHeld")
    engine.expect(kind="CallHeld")
    assert state(phone)["state"] == "held"
    flash(phone)                          # on the held dial tone, nothing dialled: back to 101
    assert phone.expect("PhoneResumed")["party"] == "101"
    engine.expect(kind="CallResumed")
    assert state(phone)["state"] == "talking"
    talk_both_ways(world, a, call_a)
    phone.hook(False)
    phone.expect("PhoneIdle")
    a.expect(ev="state", id=call_a, state="disconnected")


def test_putting_down_with_a_call_on_hold_rings_back_and_lifting_takes_it(world):
    phone, a, engine = world["phone"], world["101"], world["engine"]
    call_a = talking_with_101(world)
    flash(phone)
    phone.expect("PhoneHeld")
    engine.expect(kind="CallHeld")
    phone.hook(False)
    assert phone.expect("PhoneRecall")["party"] == "101"
    phone.expect("PhoneRing", recall=True)
    assert True in [s.state for s in phone.factory.pin(RING).states], "the ring pin did not ring"
    st = state(phone)
    assert (st["state"], st["held"]) == ("recall", "101")
    assert not a.all(ev="state", id=call_a, state="disconnected")
    phone.hook(True)
    phone.expect("PhoneResumed")
    engine.expect(kind="CallResumed")
    assert not phone.factory.pin(RING).state
    talk_both_ways(world, a, call_a)
    phone.hook(False)
    phone.expect("PhoneIdle")
    a.expect(ev="state", id=call_a, state="disconnected")


def test_a_recall_nobody_answers_hangs_the_held_call_up(world):
    phone, a = world["phone"], world["101"]
    phone.fxs.thread.call(lambda: setattr(phone.fxs, "recall_for", 2.0))
    call_a = talking_with_101(world)
    flash(phone)
    phone.expect("PhoneHeld")
    phone.hook(False)
    phone.expect("PhoneRecall")
    phone.expect("PhoneRecallEnded")
    phone.expect("PhoneIdle")
    a.expect(ev="state", id=call_a, state="disconnected")
    assert not phone.factory.pin(RING).state


def test_putting_down_while_the_consultation_rings_transfers_blind(world):
    phone, a, b, engine = world["phone"], world["101"], world["102"], world["engine"]
    call_a = talking_with_101(world)
    flash(phone)
    phone.expect("PhoneHeld")
    dial(world, "102#")
    consultation = b.expect(ev="incoming")["id"]
    phone.expect("PhoneRingback")
    assert state(phone)["state"] == "consult-calling"

    phone.hook(False)                     # put down while 102 still rings
    moved = phone.expect("PhoneTransferred")
    assert (moved["how"], moved["to"]) == ("blind", "102")
    phone.expect("PhoneIdle")
    b.expect(ev="state", id=consultation, state="disconnected")   # the consultation is cancelled
    offered = b.expect(ev="incoming")                              # and the engine rings 102 for 101
    assert "<sip:101@" in offered["remote"], "102 should see 101, whom it will talk with, not the analog phone"
    b.send(cmd="answer", id=offered["id"])
    joined = engine.expect(kind="CallTransferred")
    assert (joined["how"], joined["by"], joined["to"]) == ("blind", "201", "102")
    phone.expect("PhoneTransferDone")
    hear_each_other(world, a, call_a, b, offered["id"])
    assert state(phone)["state"] == "idle"
    a.send(cmd="hangup", id=call_a)
    b.expect(ev="state", id=offered["id"], state="disconnected")


def test_a_refused_consultation_gives_busy_tone_and_a_flash_returns_to_the_held_call(world):
    phone, a, b, engine = world["phone"], world["101"], world["102"], world["engine"]
    b.mode(mode="busy")
    call_a = talking_with_101(world)
    flash(phone)
    phone.expect("PhoneHeld")
    dial(world, "102#")
    b.expect(ev="incoming")
    assert phone.expect("PhoneBusyTone")["held"] is True
    assert state(phone)["state"] == "consult-busy"
    flash(phone)
    phone.expect("PhoneResumed")
    engine.expect(kind="CallResumed")
    talk_both_ways(world, a, call_a)
    phone.hook(False)
    phone.expect("PhoneIdle")
    a.expect(ev="state", id=call_a, state="disconnected")


def test_a_blind_transfer_the_target_refuses_comes_back_as_a_recall(world):
    phone, a, b, engine = world["phone"], world["101"], world["102"], world["engine"]
    call_a = talking_with_101(world)
    flash(phone)
    phone.expect("PhoneHeld")
    dial(world, "102#")
    consultation = b.expect(ev="incoming")["id"]
    phone.expect("PhoneRingback")
    b.mode(mode="busy")                   # 102 refuses what comes next: the transfer
    phone.hook(False)
    assert phone.expect("PhoneTransferred")["how"] == "blind"
    b.expect(ev="state", id=consultation, state="disconnected")
    assert phone.expect("PhoneTransferFailed")["code"] == 486
    assert phone.expect("PhoneRecall")["party"] == "101"
    assert not a.all(ev="state", id=call_a, state="disconnected")
    phone.hook(True)
    phone.expect("PhoneResumed")
    engine.expect(kind="CallResumed")
    talk_both_ways(world, a, call_a)
    phone.hook(False)
    phone.expect("PhoneIdle")
    a.expect(ev="state", id=call_a, state="disconnected")


def test_the_held_party_hanging_up_leaves_an_ordinary_dial_tone(world):
    phone, a, b = world["phone"], world["101"], world["102"]
    call_a = talking_with_101(world)
    flash(phone)
    phone.expect("PhoneHeld")
    a.send(cmd="hangup", id=call_a)
    assert phone.expect("PhoneHeldCallEnded")["party"] == "101"
    st = state(phone)
    assert (st["state"], st["held"]) == ("dialtone", None)
    dial(world, "102#")                   # now an ordinary call, not a consultation
    assert phone.expect("PhoneDialled", number="102")["consultation"] is False
    b.expect(ev="incoming")
    phone.hook(False)
    phone.expect("PhoneIdle")
