"""An analog line (FXO) as a SIP trunk on loopback: ring, caller ID, hook, dialling, hang-up.

`FxoLine` is a small SIP user agent of its own (pjsua2, owned by one
`EngineThread` exactly as the engine's is; see docs/analog.md for why the
line is not a media port in the engine's bridge).  To the engine it is an
`analog` trunk: an IP trunk at 127.0.0.1:<port>.

- The line rings (the ring pin): the line's audio opens and caller ID is
  looked for (FSK, else DTMF) until it is decoded, the second ring starts,
  or `caller_id_wait` passes; then the line INVITEs the engine at its trunk
  port with the caller as From ("anonymous" when the caller is unknown or
  withheld).  When the engine answers, the hook relay goes off-hook and
  audio passes; the caller hanging up before that (no ring for `ring_gap`)
  cancels the INVITE.
- The engine INVITEs the line (a call out): the line answers 180, goes
  off-hook, waits `dial_delay`, dials the Request-URI's number as DTMF, then
  answers 200 (at once, or when the `answer` pin reports the polarity
  reversal where the exchange sends one).  The line is busy (486) while in use.
- In a call, the 425 Hz busy or congestion cadence, `silence_seconds` of
  silence, or loss of loop current (the `loop` pin) hang the call up; a BYE
  from the engine puts the line on-hook.

The line's audio (audio.py) takes the hybrid's echo out of each frame it
reads (echo.py) before the detectors and the call get it, and applies the
line's `rx_gain` and `tx_gain` to the call's audio; `line_test` reports the
echo return loss and what the canceller takes off it (ERLE).

Threads: gpiozero's callbacks and the audio thread only put events on a
queue; everything else runs on the line's engine thread (`_turn`).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from appliance.engine.core import EngineConfig, EngineThread, guarded

from . import callerid, tones
from .audio import FRAME, RATE, LineAudio
from .config import LineConfig

log = logging.getLogger("appliance.analog")

RING_RELEASE = 0.2     # s: a ring detector pulses at the ring frequency; a ring ends after this long quiet
CID_TRY_EVERY = 0.25   # s of new audio between attempts to decode the caller ID
SILENCE = b"\x00\x00" * FRAME
DIALLABLE = re.compile(r"[^0-9*#A-D]")


def status_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "lines"


class LineEnd:
    """What a line process's two kinds (FxoLine, FxsPhone) do alike: stop, let go of the account,
    join a call's audio to the line's port, and write the status file `pbx line status` reads.

    A subclass sets `thread`, `audio`, `pins`, `acc`, `call`, `port`, `cfg`, `data_dir`,
    `_server`, `_written` and has `status()`."""

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.thread.stop()
        self.audio.close()
        for dev in self.pins.values():
            dev.close()
        self.pins.clear()

    def _shutdown(self) -> None:
        self.call = None
        self.port = None
        if self.acc is not None:
            self.acc.shutdown()
        self.acc = None

    def _connect(self, call: Any) -> None:
        import pjsua2 as pj

        try:
            am = call.getAudioMedia(-1)
        except pj.Error:
            return
        self.port.startTransmit(am)
        am.startTransmit(self.port)

    def _write_status(self) -> None:
        self._written = time.monotonic()
        if self.data_dir is None:
            return
        d = status_dir(self.data_dir)
        d.mkdir(parents=True, exist_ok=True)
        # The line's threads may write at once: each its own temporary file, renamed over the status.
        tmp = d / f".{self.cfg.name}.{os.getpid()}.{threading.get_ident()}.json.tmp"
        tmp.write_text(json.dumps(self.status()))
        os.replace(tmp, d / f"{self.cfg.name}.json")


class FxoLine(LineEnd):
    def __init__(self, cfg: LineConfig, engine: tuple[str, int], *, pin_factory: Any = None,
                 data_dir: str | Path | None = None, on_event: Callable[[dict], None] | None = None):
        self.cfg = cfg
        self.engine_addr = engine
        self.pin_factory = pin_factory
        self.data_dir = Path(data_dir) if data_dir else None
        self.on_event = on_event or (lambda ev: None)
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.audio = LineAudio(cfg.device, self._frame, rx_gain=cfg.rx_gain, tx_gain=cfg.tx_gain,
                               echo_tail=cfg.echo_tail)
        self.thread = EngineThread(EngineConfig(sip_host="127.0.0.1", sip_port=cfg.port, max_calls=4,
                                                user_agent="pbx-analog-line", log_level=2))
        self.state = "idle"        # idle, ringing, offered, dialling, talking
        self.call: Any = None      # the one SIP call (LineCall) while there is one
        self.direction = ""
        self.caller = callerid.UNKNOWN
        self.last_caller: dict | None = None
        self.calls = 0
        self.deadlines: dict[str, float] = {}
        self.ring_on_at = 0.0
        self.ring_off_at = 0.0
        self.ringing = False
        self.rings = 0
        self._cid: list[np.ndarray] = []
        self._cid_tried = 0
        self.collecting = False
        self.progress: tones.CadenceDetector | None = None
        self.ended_by = ""
        self._written = 0.0
        self.acc: Any = None
        self.port: Any = None
        self.pins: dict[str, Any] = {}
        self._server: socket.socket | None = None

    # -- life ----------------------------------------------------------------

    def start(self) -> None:
        self._open_pins()
        self.thread.start()
        self.thread.call(self._create)
        self._serve()
        self._write_status()

    def _open_pins(self) -> None:
        from gpiozero import DigitalInputDevice, OutputDevice

        c, f = self.cfg, self.pin_factory
        self.pins["hook"] = OutputDevice(c.hook, active_high=c.hook_active_high, initial_value=False, pin_factory=f)
        ring = self.pins["ring"] = DigitalInputDevice(c.ring, pull_up=not c.ring_active_high, pin_factory=f)
        ring.when_activated = lambda: self.events.put(("ring", True))
        ring.when_deactivated = lambda: self.events.put(("ring", False))
        if c.loop is not None:
            loop = self.pins["loop"] = DigitalInputDevice(c.loop, pull_up=not c.loop_active_high, pin_factory=f)
            loop.when_deactivated = lambda: self.events.put(("loop", False))
        if c.answer is not None:
            ans = self.pins["answer"] = DigitalInputDevice(c.answer, pull_up=not c.answer_active_high, pin_factory=f)
            ans.when_activated = lambda: self.events.put(("answer", True))

    def _create(self) -> None:
        import pjsua2 as pj

        line = self

        class Account(pj.Account):
            @guarded
            def onIncomingCall(self, prm: Any) -> None:
                call = LineCall(line, self, prm.callId)
                line.thread.registry.keep(call.key, call)
                line.events.put(("invite", call, prm.rdata.wholeMsg))

        class Port(pj.AudioMediaPort):
            @guarded
            def onFrameRequested(self, frame: Any) -> None:   # the line's own media thread
                a = line.audio
                data = a.from_line.popleft() if a.passing and a.from_line else SILENCE
                frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
                frame.buf = pj.ByteVector(data)
                frame.size = len(data)

            @guarded
            def onFrameReceived(self, frame: Any) -> None:
                if line.audio.passing and frame.size == 2 * FRAME:
                    line.audio.to_line.append(bytes(frame.buf))

        class LineCall(pj.Call):
            counter = 0

            def __init__(self, owner: "FxoLine", acc: Any, call_id: int = pj.PJSUA_INVALID_ID):
                super().__init__(acc, call_id)
                LineCall.counter += 1
                self.key = ("call", LineCall.counter)

            @guarded
            def onCallState(self, prm: Any) -> None:
                ci = self.getInfo()
                line.events.put(("call_state", self, ci.state, ci.lastStatusCode))

            @guarded
            def onCallMediaState(self, prm: Any) -> None:
                line.events.put(("media", self, None, None))

        self._Call = LineCall
        self.acc = Account()
        ac = pj.AccountConfig()
        ac.idUri = f"sip:{self.cfg.number or self.cfg.name}@127.0.0.1:{self.cfg.port}"
        ac.sipConfig.transportId = self.thread.transports["local"]
        ac.mediaConfig.transportConfig.port = 30000 + (self.cfg.port % 100) * 20
        ac.mediaConfig.transportConfig.portRange = 20
        ac.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        ac.regConfig.registerOnAdd = False
        self.acc.create(ac, True)
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20000, 16)
        self.port = Port()
        self.port.createPort(f"line-{self.cfg.name}", fmt)
        self.thread.on_turn(self._turn)
        self.thread.on_shutdown(self._shutdown)

    # -- what other threads report ----------------------------------------------

    def _frame(self, frame: np.ndarray) -> None:
        """The audio thread, every 20 ms while the line's audio is open (the frame after the echo canceller)."""
        if self.collecting:
            self._cid.append(frame)
            if (len(self._cid) - self._cid_tried) * FRAME >= CID_TRY_EVERY * RATE:
                self._cid_tried = len(self._cid)
                caller = callerid.decode(np.concatenate(self._cid))
                if caller.status != "unknown":
                    self.collecting = False
                    self.events.put(("caller", caller))
        p = self.progress
        if p is not None:
            found = p.feed(frame)
            if found:
                self.events.put(("progress", found))

    # -- the line's engine thread ----------------------------------------------------

    def _turn(self) -> None:
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                break
            getattr(self, f"_on_{ev[0]}")(*ev[1:])
        now = time.monotonic()
        if self.ringing and not self.pins["ring"].is_active and now - self.ring_off_at >= RING_RELEASE:
            self.ringing = False
            self.emit("RingEnded", rings=self.rings)
            if self.state == "ringing" and self.rings == 1:
                self.deadlines["caller_id"] = now + self.cfg.caller_id_wait
        for name, when in list(self.deadlines.items()):
            if when <= now:
                del self.deadlines[name]
                getattr(self, f"_due_{name}")()
        if now - self._written >= 1.0:
            self._write_status()

    def _on_ring(self, active: bool) -> None:
        now = time.monotonic()
        if not active:
            self.ring_off_at = now
            return
        if self.ringing:
            return   # a pulse of the same ring
        self.ringing = True
        self.ring_on_at = now
        self.deadlines["ring_gap"] = now + self.cfg.ring_gap
        if self.state == "idle":
            self.state, self.direction, self.rings = "ringing", "in", 1
            self.caller = callerid.UNKNOWN
            self._cid, self._cid_tried = [], 0
            self.audio.open()
            self.collecting = True
            self.emit("LineRinging")
        elif self.state in ("ringing", "offered"):
            self.rings += 1
            if self.state == "ringing":   # the second ring: caller ID comes before it or not at all
                self._offer(self._final_caller())
        self._write_status()

    def _final_caller(self) -> callerid.CallerId:
        self.collecting = False
        if self._cid:
            return callerid.decode(np.concatenate(self._cid))
        return callerid.UNKNOWN

    def _on_caller(self, caller: callerid.CallerId) -> None:
        if self.state == "ringing":
            self._offer(caller)

    def _due_caller_id(self) -> None:
        if self.state == "ringing":
            self._offer(self._final_caller())

    def _due_ring_gap(self) -> None:
        if self.ringing:
            self.deadlines["ring_gap"] = time.monotonic() + self.cfg.ring_gap
            return
        if self.state in ("ringing", "offered"):
            self.ended_by = "the caller hung up before the answer"
            self.emit("LineCallerGone")
            self._hangup()
            self._idle()

    def _offer(self, caller: callerid.CallerId) -> None:
        """INVITE the engine with the caller the line gave."""
        import pjsua2 as pj

        self.deadlines.pop("caller_id", None)
        self.caller = caller
        self.last_caller = {"number": caller.number, "name": caller.name, "status": caller.status,
                            "source": caller.source, "at": _now_iso()}
        self.state = "offered"
        self.emit("LineCallerId", **self.last_caller)
        call = self._Call(self, self.acc)
        self.thread.registry.keep(call.key, call)
        self.call = call
        prm = pj.CallOpParam(True)
        user = caller.number if caller.known else "anonymous"
        display = caller.name or {"number": "", "private": "Private"}.get(caller.status, "Unknown")
        display = display.replace('"', "")
        prm.txOption.localUri = (f'"{display}" ' if display else "") + f"<sip:{user}@127.0.0.1:{self.cfg.port}>"
        host, port = self.engine_addr
        try:
            call.makeCall(f"sip:{self.cfg.number or self.cfg.name}@{host}:{port}", prm)
            self.thread.registry.holds(call.key)
        except pj.Error as e:
            log.error("line %s: cannot call the engine: %s", self.cfg.name, e.info())
            self.thread.registry.done(call.key)
            self.call = None
            self._idle()
        self._write_status()

    def _on_invite(self, call: Any, msg: str) -> None:
        if self.state != "idle" or self.call is not None:
            _answer(call, 486)
            return
        m = re.match(r"INVITE\s+sips?:([^@;>\s]+)@", msg)
        digits = DIALLABLE.sub("", m.group(1) if m else "")
        if not digits:
            _answer(call, 484)
            return
        self.call, self.state, self.direction = call, "dialling", "out"
        self.dialled = digits
        self.caller = callerid.UNKNOWN
        _answer(call, 180)
        self._hook(True)
        self.audio.open()
        self.deadlines["dial"] = time.monotonic() + self.cfg.dial_delay
        self.emit("LineSeized", number=digits)
        self._write_status()

    def _due_dial(self) -> None:
        if self.state != "dialling":
            return
        seconds = self.audio.play(tones.dtmf(self.dialled, on=0.08, off=0.08))
        self.emit("LineDialling", number=self.dialled)
        self.deadlines["dialled"] = time.monotonic() + seconds + 0.1

    def _due_dialled(self) -> None:
        if self.state == "dialling" and self.cfg.answer is None:
            self._answered_out()

    def _on_answer(self, active: bool) -> None:
        if self.state == "dialling" and not self.deadlines.get("dialled"):
            self._answered_out()

    def _answered_out(self) -> None:
        if self.call is not None:
            _answer(self.call, 200)

    def _on_call_state(self, call: Any, state: int, code: int) -> None:
        import pjsua2 as pj

        if state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.thread.registry.done(call.key)
            if call is self.call:
                self.call = None
                self.ended_by = self.ended_by or f"the engine ended the call ({code})"
                self.emit("LineCallEnded", code=code, reason=self.ended_by)
                self._idle()
            return
        if call is self.call and state == pj.PJSIP_INV_STATE_CONFIRMED and self.state != "talking":
            self.state = "talking"
            self.calls += 1
            self._hook(True)
            self.deadlines.pop("ring_gap", None)
            self.progress = tones.CadenceDetector(cycles=self.cfg.busy_cycles, silence_s=self.cfg.silence_seconds)
            self.audio.passing = True
            self.emit("LineAnswered", direction=self.direction)
            self._connect(call)
            self._write_status()

    def _on_media(self, call: Any, *_: Any) -> None:
        if call is self.call and self.state == "talking":
            self._connect(call)

    def _on_progress(self, what: str) -> None:
        if self.state == "talking":
            self.ended_by = {"busy": "the far end hung up (busy tone)", "silence": "silence on the line"}[what]
            self.emit("LineFarEndGone", by=what)
            self._hangup()
            self._idle()

    def _on_loop(self, active: bool) -> None:
        if self.state in ("talking", "dialling"):
            self.ended_by = "loop current lost"
            self.emit("LineFarEndGone", by="loop")
            self._hangup()
            self._idle()

    def _hangup(self) -> None:
        import pjsua2 as pj

        call, self.call = self.call, None
        if call is None:
            return
        try:
            call.hangup(pj.CallOpParam())
        except pj.Error:
            pass

    def _idle(self) -> None:
        self.progress = None
        self.collecting = False
        self.audio.passing = False
        self._hook(False)
        self.audio.close()
        self.deadlines.clear()
        self.state, self.direction = "idle", ""
        self.emit("LineIdle", reason=self.ended_by)
        self.ended_by = ""
        self._write_status()

    def _hook(self, off: bool) -> None:
        hook = self.pins["hook"]
        (hook.on if off else hook.off)()

    # -- reporting --------------------------------------------------------------------------

    def emit(self, kind: str, **data: Any) -> None:
        ev = {"kind": kind, "line": self.cfg.name, "at": _now_iso(), **data}
        log.info("line %s: %s %s", self.cfg.name, kind, data or "")
        try:
            self.on_event(ev)
        except Exception:  # noqa: BLE001
            log.exception("line event listener failed")

    def status(self) -> dict:
        loop = self.pins.get("loop")
        return {
            "line": self.cfg.name, "number": self.cfg.number, "state": self.state,
            "hook": "off" if self.pins.get("hook") is not None and self.pins["hook"].is_active else "on",
            "ringing": self.ringing, "rings": self.rings if self.state in ("ringing", "offered") else 0,
            "loop_current": None if loop is None else bool(loop.is_active),
            "last_caller": self.last_caller, "calls": self.calls,
            "audio": {"device": self.cfg.device, **self.audio.status()},
            "port": self.cfg.port, "engine": f"{self.engine_addr[0]}:{self.engine_addr[1]}",
        }

    # -- the line test and the status socket ---------------------------------------------------

    def line_test(self, freq: float = 1000.0, seconds: float = 1.0) -> dict:
        """Any thread but the line's: off-hook, a tone out, what comes back, on-hook.  The line must be idle.

        What comes back while the tone plays is the hybrid's echo: its level below the tone is the echo
        return loss (ERL).  With the canceller on, the echo left after it, over the tone's second half (the
        canceller has adapted by then), gives the canceller's echo return loss enhancement (ERLE).  A
        steady tone is the easiest echo to cancel: speech gets less than this ERLE."""
        if not self.thread.call(self._test_begin):
            return {"ok": False, "error": f"the line is in use ({self.state})"}
        try:
            hook_on = bool(self.pins["hook"].value)
            self.audio.opened.wait(3)
            time.sleep(0.3)  # the relay settles and loop current flows before measuring
            loop = self.pins.get("loop")
            loop_current = None if loop is None else bool(loop.is_active)
            rx: list[tuple[np.ndarray, np.ndarray]] = []
            self.audio.tap = lambda raw, clean: rx.append((raw, clean))
            sent = tones.tone(freq, seconds, 0.3)
            self.audio.play(sent)
            deadline = time.monotonic() + seconds + 2
            while self.audio.playing and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            self.audio.tap = None
            self.thread.call(self._test_end)   # closes the audio: nothing is added to `rx` after this
        hook_off = not bool(self.pins["hook"].value)
        back = np.concatenate([raw for raw, _ in rx]) if rx else np.zeros(0, dtype=np.int16)
        share = tones.relative_power(back, freq) if len(back) else 0.0
        sent_dbfs = tones.level_dbfs(sent)
        result = {
            "ok": hook_on and hook_off and not self.audio.error and (loop_current is not False),
            "hook_relay": "ok" if hook_on and hook_off else "the hook pin did not follow",
            "loop_current": loop_current,
            "tone_hz": freq, "sent_dbfs": round(sent_dbfs, 1),
            "returned_dbfs": round(tones.level_dbfs(back), 1) if len(back) else None,
            "returned_share": round(share, 3), "tone_returned": share > 0.3,
            "erl_db": round(sent_dbfs - tones.level_dbfs(back), 1) if len(back) else None,
            **_cancelled(rx, self.cfg.echo_tail),
            "audio_error": self.audio.error, "frames": len(rx),
        }
        self.emit("LineTested", **result)
        return result

    def _test_begin(self) -> bool:
        if self.state != "idle":
            return False
        self.state = "testing"
        self._hook(True)
        self.audio.open()
        return True

    def _test_end(self) -> None:
        self.ended_by = "line test done"
        self._idle()

    def _serve(self) -> None:
        if self.data_dir is not None:
            self._server = serve(status_dir(self.data_dir) / f"{self.cfg.name}.sock", self._request)

    def _request(self, req: dict) -> dict:
        if req.get("cmd") == "test":
            return self.line_test(float(req.get("freq", 1000)))
        return self.thread.call(self.status)


def _cancelled(rx: list[tuple[np.ndarray, np.ndarray]], tail: int) -> dict:
    """The line test's figures for the canceller, over the second half of the frames read while the tone played."""
    late = rx[len(rx) // 2:]
    if not tail or not late:
        return {"echo_tail_ms": tail, "cancelled_dbfs": None, "erle_db": None}
    before = tones.level_dbfs(np.concatenate([raw for raw, _ in late]))
    after = tones.level_dbfs(np.concatenate([clean for _, clean in late]))
    return {"echo_tail_ms": tail, "cancelled_dbfs": round(after, 1), "erle_db": round(before - after, 1)}


def serve(path: Path, answer: Callable[[dict], dict]) -> socket.socket:
    """A line's status socket: one JSON request a connection, `answer(request)`'s reply back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(4)
    threading.Thread(target=_accept, args=(srv, answer), name="line-control", daemon=True).start()
    return srv


def _accept(srv: socket.socket, answer: Callable[[dict], dict]) -> None:
    while True:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            try:
                reply = answer(json.loads(conn.makefile().readline() or "{}"))
            except Exception as e:  # noqa: BLE001 - the edge answers with the reason
                reply = {"ok": False, "error": str(e)}
            try:
                conn.sendall((json.dumps(reply) + "\n").encode())
            except OSError:
                pass


def _answer(call: Any, code: int) -> None:
    import pjsua2 as pj

    prm = pj.CallOpParam()
    prm.statusCode = code
    try:
        call.answer(prm)
    except pj.Error as e:
        log.warning("line: answering %d failed: %s", code, e.info())


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
