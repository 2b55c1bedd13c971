"""The encoder: spans joined and compressed off the engine thread, linked to the call; spans an
engine left behind when it stopped are compressed at the next start."""

from __future__ import annotations

import math
import struct
import subprocess
import threading
import wave
from pathlib import Path
from typing import Callable

from appliance.recording.encoder import Done, Encoder, Job, leftovers, wav_complete
from appliance.store import Store
from appliance.store.recordings import Recordings
from tests.engine.harness import goertzel

RATE = 8000


def tone(path: Path, freq: float, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / RATE)))
                      for i in range(int(RATE * seconds)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)


def unfinished(path: Path) -> None:
    """A span as pjsua leaves it when the process dies: the header's sizes never written."""
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", 0)
    data[40:44] = struct.pack("<I", 0)
    path.write_bytes(bytes(data))


def call(store: Store, call_id: str) -> None:
    store.call_started({"id": call_id, "started_at": "2026-03-10T08:00:00.000+00:00", "direction": "inbound",
                        "caller": "+380671234567", "dialled": "0441234567", "trunk": "prov", "extension": None,
                        "invite": None, "source": None})


def run(tmp_path: Path, jobs: list[Job], before: Callable[[], None]) -> list[Done]:
    """Start an encoder (nothing left over yet), then make the spans with `before` and hand over the jobs."""
    finished: list[Done] = []
    all_done = threading.Event()

    def done(d: Done) -> None:
        finished.append(d)
        if len(finished) == len(jobs):
            all_done.set()
    enc = Encoder(tmp_path / "recordings", tmp_path, done=done)
    enc.start()
    before()
    for job in jobs:
        enc.submit(job)
    assert all_done.wait(30), finished
    enc.stop()
    return finished


def decoded(mp3: Path, tmp_path: Path, *trim: str) -> Path:
    wav = tmp_path / (mp3.stem + "".join(trim) + ".decoded.wav")
    subprocess.run(["sox", str(mp3), "-r", "8000", "-c", "1", "-b", "16", str(wav), *(("trim", *trim) if trim else ())],
                   check=True)
    return wav


def test_spans_are_joined_into_one_mp3_linked_to_the_call(tmp_path):
    day = tmp_path / "recordings" / "2026" / "03" / "10"
    parts = (day / "20260310-100000-c1.always.1.wav", day / "20260310-100000-c1.always.2.wav")
    with Store(tmp_path) as store:
        call(store, "c1")

    def spans() -> None:
        tone(parts[0], 600, 1.0)
        tone(parts[1], 1400, 3.0)
        assert all(wav_complete(p) for p in parts)
    [done] = run(tmp_path, [Job("c1", "always", parts, day / "20260310-100000-c1.mp3")], spans)
    assert done.file == "2026/03/10/20260310-100000-c1.mp3" and done.seconds == 4.0
    assert 7000 < done.size < 10000, done  # 16 kbit/s: 2 KB a second
    assert not any(p.exists() for p in parts)
    with Store(tmp_path) as store:
        assert Recordings(store).file_of("c1") == done.file
    first, second = (decoded(day / "20260310-100000-c1.mp3", tmp_path, *trim) for trim in (("0", "1"), ("1.2",)))
    assert goertzel(first, 600, skip=0.1) > 0.8 and goertzel(second, 1400, skip=0.1) > 0.8, "the spans in turn"


def test_spans_left_by_an_engine_that_stopped_are_compressed_at_the_next_start(tmp_path):
    day = tmp_path / "recordings" / "2026" / "03" / "10"
    left = day / "20260310-100000-c7.on_demand.1.wav"
    tone(left, 1000, 1.0)
    unfinished(left)
    assert not wav_complete(left)
    (day / "notes.wav").write_bytes(b"not ours")  # a name the engine never writes is left alone
    with Store(tmp_path) as store:
        call(store, "c7")
    jobs = leftovers(tmp_path / "recordings")
    assert [(j.call_id, j.policy, j.recovered) for j in jobs] == [("c7", "on_demand", True)]
    [done] = run_leftovers(tmp_path)
    assert done.file == "2026/03/10/20260310-100000-c7.mp3" and not left.exists()
    with Store(tmp_path) as store:
        assert Recordings(store).file_of("c7") == done.file
    assert goertzel(decoded(day / "20260310-100000-c7.mp3", tmp_path), 1000) > 0.8


def run_leftovers(tmp_path: Path) -> list[Done]:
    finished: list[Done] = []
    one = threading.Event()

    def done(d: Done) -> None:
        finished.append(d)
        one.set()
    enc = Encoder(tmp_path / "recordings", tmp_path, done=done)
    enc.start()
    assert one.wait(30)
    enc.stop()
    return finished
