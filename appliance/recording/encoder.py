"""The encoder: a worker thread that turns a call's WAV spans into one MP3 and links it to the call.

The engine records the bridge's mix into WAV (8 kHz, 16-bit mono: 960 KB a minute) on its own
thread; everything slower happens here, off the engine thread: waiting until pjsua has written each
WAV's header (a recorder's port is destroyed by the conference bridge shortly after the engine lets
it go), `sox` joining the spans and compressing them to MP3 at 16 kbit/s (about 120 KB a minute;
`libsox-fmt-mp3`), the link in the call record, and deleting the spans.  The same thread runs the
retention clean-up when it starts and then once a day.
"""

from __future__ import annotations

import logging
import os
import queue
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

from appliance.store import Store
from appliance.store.recordings import Recordings

from . import retention

log = logging.getLogger("appliance.recording")

BITRATE_KBPS = 16
COMPLETE_WAIT = 10.0      # seconds a span may take to get its header after the engine let it go
CLEAN_EVERY = 24 * 3600.0
SOX_TIMEOUT = 600.0
_STOP = object()


@dataclass(frozen=True)
class Job:
    call_id: str
    policy: str
    parts: tuple[Path, ...]   # the WAV spans, in order
    out: Path                 # the MP3 to write
    recovered: bool = False   # left by an engine that stopped: the headers were never written


@dataclass(frozen=True)
class Done:
    call_id: str
    file: str | None          # inside the recordings folder; None when it failed
    seconds: float
    size: int                 # bytes of the MP3
    encode_seconds: float
    error: str = ""


def wav_complete(path: Path) -> bool:
    """pjsua has written this WAV's header: its RIFF size covers the whole file."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
        size = path.stat().st_size
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    return struct.unpack("<I", head[4:8])[0] == size - 8 and size > 44


def wav_seconds(path: Path) -> float:
    # pjsua writes a 44-byte header and 16-bit mono at 8 kHz.
    try:
        return max(path.stat().st_size - 44, 0) / 16000.0
    except OSError:
        return 0.0


def leftovers(folder: Path) -> list[Job]:
    """Spans an engine that stopped during calls left behind (`<start>-<call id>.<policy>.<n>.wav`), as jobs."""
    groups: dict[tuple[Path, str, str], list[tuple[int, Path]]] = {}
    for wav in Path(folder).rglob("*.wav") if Path(folder).is_dir() else ():
        stem, policy, n = (wav.name[:-4].rsplit(".", 2) + ["", ""])[:3]
        if not n.isdigit() or policy not in ("always", "on_demand") or "-" not in stem:
            continue
        groups.setdefault((wav.parent, stem, policy), []).append((int(n), wav))
    return [Job(stem.rsplit("-", 1)[1], policy, tuple(p for _, p in sorted(parts)), folder_ / f"{stem}.mp3", True)
            for (folder_, stem, policy), parts in sorted(groups.items())]


class Encoder:
    def __init__(self, folder: Path, data_dir: Path, *, done: Callable[[Done], None] = lambda d: None,
                 retention_days: Callable[[], Mapping[str, int]] = dict,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.folder = Path(folder)
        self.data_dir = Path(data_dir)
        self.done = done
        self.retention_days = retention_days
        self.now = now
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name="recording-encoder", daemon=True)

    def start(self) -> None:
        for job in leftovers(self.folder):
            self._q.put(job)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._q.put(job)

    def clean_now(self) -> None:
        self._q.put("clean")

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued (a call that ended keeps its recording), then stop."""
        if self._thread.is_alive():
            self._q.put(_STOP)
            self._thread.join(timeout)

    def _main(self) -> None:
        store = Store(self.data_dir)
        next_clean = time.monotonic()
        try:
            while True:
                if time.monotonic() >= next_clean:
                    next_clean = time.monotonic() + CLEAN_EVERY
                    self._clean(store)
                try:
                    item = self._q.get(timeout=max(next_clean - time.monotonic(), 0.1))
                except queue.Empty:
                    continue
                if item is _STOP:
                    return
                if item == "clean":
                    self._clean(store)
                    continue
                try:
                    self.done(self._encode(store, item))
                except Exception:  # noqa: BLE001 - one bad recording must not stop the others
                    log.exception("could not finish the recording of call %s", item.call_id)
        finally:
            store.close()

    def _clean(self, store: Store) -> None:
        try:
            retention.clean_up(store, self.folder, self.now(), self.retention_days())
        except Exception:  # noqa: BLE001
            log.exception("the recordings' clean-up failed")

    def _encode(self, store: Store, job: Job) -> Done:
        t0 = time.monotonic()
        deadline = t0 + COMPLETE_WAIT
        parts = [p for p in job.parts if p.exists()]
        if not job.recovered:
            for p in parts:
                while not wav_complete(p) and time.monotonic() < deadline:
                    time.sleep(0.02)  # the bridge destroys the recorder's port on its next tick
            parts = [p for p in parts if wav_complete(p)]
        if not parts:
            return Done(job.call_id, None, 0.0, 0, 0.0, "no audio was recorded")
        seconds = sum(wav_seconds(p) for p in parts)
        tmp = job.out.with_name(job.out.name + ".part")
        # A span the last run could not finish has no length in its header: read it to its end.
        cmd = ["sox", *(["--ignore-length"] if job.recovered else []), *map(str, parts),
               "-t", "mp3", "-C", str(BITRATE_KBPS), str(tmp)]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=SOX_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as e:
            tmp.unlink(missing_ok=True)
            log.error("call %s: sox could not compress the recording: %s", job.call_id, e)
            return Done(job.call_id, None, seconds, 0, time.monotonic() - t0, f"sox: {e}")
        if run.returncode != 0:
            tmp.unlink(missing_ok=True)
            log.error("call %s: sox could not compress the recording: %s", job.call_id, run.stderr.strip())
            return Done(job.call_id, None, seconds, 0, time.monotonic() - t0, run.stderr.strip()[:300])
        os.replace(tmp, job.out)
        for p in parts:
            p.unlink(missing_ok=True)
        file = job.out.resolve().relative_to(self.folder.resolve()).as_posix()
        Recordings(store).link(job.call_id, file, job.policy)
        return Done(job.call_id, file, round(seconds, 2), job.out.stat().st_size, round(time.monotonic() - t0, 3))
