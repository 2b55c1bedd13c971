"""An analog phone (FXS) as an extension: a SIP phone registered to the edge, ringing, caller ID, dial tone, digits.

`FxsPhone` is a small SIP user agent of its own (pjsua2, owned by one
`EngineThread`, as `FxoLine` is), registered to the edge as its extension
like any desk phone, with a secret it sets for itself (`new_secret`: the
extension's password is replaced by a generated one at start, and again if
the edge ever refuses it, e.g. after an import gave the extension other
digests).  Through the edge its calls follow the extension's dial rules.

- The engine calls the extension (an INVITE from the edge): 180, the ring
  pin rings the phone in the 1 s on, 4 s off cadence, and between the first
  and the second ring the caller ID goes down the line as an FSK burst
  (V.23, MDMF: date and time, number or "private", name).  Off-hook (the
  hook pin) answers; the caller giving up stops the ringing.
- Off-hook with no call: dial tone (425 Hz continuous) until the first DTMF
  digit heard on the line; digits are collected until `digit_timeout`
  seconds pass without one, or `#`; then the phone INVITEs the number
  through the edge.  Ringback (425 Hz, 1 s on, 4 s off) while the far end
  rings, audio both ways once it answers, busy tone (425 Hz, 0.35 s on and
  off) when the call is refused or the far end hangs up.
- On-hook hangs up, after `flash_max`: an on-hook between `flash_min` and
  `flash_max` long is a hook flash (reported as `PhoneFlash`), not a hang-up.

Threads as in fxo.py: gpiozero's callbacks and the audio thread only put
events on a queue; everything else runs on the phone's engine thread.
"""

from __future__ import annotations

import logging
import queue
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from appliance.engine.core import EngineConfig, EngineThread, guarded

from . import callerid, tones
from .audio import FRAME, RATE, LineAudio
from .config import PhoneConfig
from .fxo import SILENCE, LineEnd, _answer, _now_iso, serve, status_dir

log = logging.getLogger("appliance.analog")

RING_ON, RING_OFF = 1.0, 4.0      # s: the ringing cadence on the ring pin
CID_AFTER_RING = 0.5              # s after the first ring's end before the caller ID burst (ETSI: at least 0.5)
DIAL_TONE = tones.tone(tones.DIAL_TONE, 30.0, 0.2)
RINGBACK = tones.cadence(1.0, 4.0, 24, level=0.2)
BUSY = tones.cadence(0.35, 0.35, 80, level=0.2)
REFUSED = (401, 403, 407)
RESECRET_EVERY = 30.0             # s: at most one new secret this often when the edge refuses the old


class FxsPhone(LineEnd):
    def __init__(self, cfg: PhoneConfig, edge: tuple[str, int], new_secret: Callable[[], str], *,
                 pin_factory: Any = None, data_dir: str | Path | None = None,
                 on_event: Callable[[dict], None] | None = None):
        self.cfg = cfg
        self.edge = edge
        self.new_secret = new_secret
        self.pin_factory = pin_factory
        self.data_dir = Path(data_dir) if data_dir else None
        self.on_event = on_event or (lambda ev: None)
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.audio = LineAudio(cfg.device, self._frame, rx_gain=cfg.rx_gain, tx_gain=cfg.tx_gain,
                               echo_tail=cfg.echo_tail)
        self.thread = EngineThread(EngineConfig(sip_host="127.0.0.1", sip_port=cfg.port, max_calls=4,
                                                user_agent="pbx-analog-phone", log_level=2))
        self.state = "idle"        # idle, ringing, answering, dialtone, dialling, calling, talking, busy
        self.off_hook = False
        self.on_hook_at = 0.0
        self.call: Any = None
        self.direction = ""
        self.digits = ""
        self.dtmf: tones.DtmfDetector | None = None
        self.caller: dict | None = None
        self.last_caller: dict | None = None
        self.rings = 0
        self.ringing = False
        self.calls = 0
        self.registered = 0        # the last REGISTER's status code
        self.resecret_at = 0.0
        self.deadlines: dict[str, float] = {}
        self._written = 0.0
        self.acc: Any = None
        self.port: Any = None
        self.pins: dict[str, Any] = {}
        self._server: Any = None

    # -- life ----------------------------------------------------------------

    def start(self) -> None:
        self._open_pins()
        self.thread.start()
        self.thread.call(self._create, self.new_secret())
        if self.data_dir is not None:
            self._server = serve(status_dir(self.data_dir) / f"{self.cfg.name}.sock", self._request)
        self._write_status()

    def _open_pins(self) -> None:
        from gpiozero import DigitalInputDevice, OutputDevice

        c, f = self.cfg, self.pin_factory
        self.pins["ring"] = OutputDevice(c.ring, active_high=c.ring_active_high, initial_value=False, pin_factory=f)
        hook = self.pins["hook"] = DigitalInputDevice(c.hook, pull_up=not c.hook_active_high, pin_factory=f)
        hook.when_activated = lambda: self.events.put(("hook", True))
        hook.when_deactivated = lambda: self.events.put(("hook", False))

    def _account_config(self, secret: str) -> Any:
        import pjsua2 as pj

        host, port = self.edge
        ac = pj.AccountConfig()
        ac.idUri = f"sip:{self.cfg.number}@{host}:{port}"
        ac.regConfig.registrarUri = f"sip:{host}:{port}"
        ac.regConfig.timeoutSec = 300
        ac.sipConfig.proxies.append(f"sip:{host}:{port};lr")
        ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", self.cfg.number, 0, secret))
        ac.sipConfig.transportId = self.thread.transports["local"]
        ac.mediaConfig.transportConfig.port = 31000 + (self.cfg.port % 100) * 20
        ac.mediaConfig.transportConfig.portRange = 20
        ac.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        return ac

    def _create(self, secret: str) -> None:
        import pjsua2 as pj

        phone = self

        class Account(pj.Account):
            @guarded
            def onIncomingCall(self, prm: Any) -> None:
                call = PhoneCall(self, prm.callId)
                phone.thread.registry.keep(call.key, call)
                phone.events.put(("invite", call, prm.rdata.wholeMsg))

            @guarded
            def onRegState(self, prm: Any) -> None:
                phone.events.put(("registration", int(prm.code)))

        class Port(pj.AudioMediaPort):
            @guarded
            def onFrameRequested(self, frame: Any) -> None:   # the phone's own media thread
                a = phone.audio
                data = a.from_line.popleft() if a.passing and a.from_line else SILENCE
                frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
                frame.buf = pj.ByteVector(data)
                frame.size = len(data)

            @guarded
            def onFrameReceived(self, frame: Any) -> None:
                if phone.audio.passing and frame.size == 2 * FRAME:
                    phone.audio.to_line.append(bytes(frame.buf))

        class PhoneCall(pj.Call):
            counter = 0

            def __init__(self, acc: Any, call_id: int = pj.PJSUA_INVALID_ID):
                super().__init__(acc, call_id)
                PhoneCall.counter += 1
                self.key = ("call", PhoneCall.counter)

            @guarded
            def onCallState(self, prm: Any) -> None:
                ci = self.getInfo()
                phone.events.put(("call_state", self, ci.state, ci.lastStatusCode))

            @guarded
            def onCallMediaState(self, prm: Any) -> None:
                phone.events.put(("media", self))

        self._Call = PhoneCall
        self.acc = Account()
        self.acc.create(self._account_config(secret), True)
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20000, 16)
        self.port = Port()
        self.port.createPort(f"phone-{self.cfg.number}", fmt)
        self.thread.on_turn(self._turn)
        self.thread.on_shutdown(self._shutdown)

    # -- what other threads report ----------------------------------------------

    def _frame(self, frame: np.ndarray) -> None:
        """The audio thread, every 20 ms while the phone's audio is open: the digits it dials."""
        detector = self.dtmf
        if detector is not None:
            for digit in detector.feed(frame):
                self.events.put(("digit", digit))

    # -- the phone's engine thread ----------------------------------------------------

    def _turn(self) -> None:
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                break
            getattr(self, f"_on_{ev[0]}")(*ev[1:])
        now = time.monotonic()
        for name, when in list(self.deadlines.items()):
            if when <= now and self.deadlines.get(name) == when:
                del self.deadlines[name]
                getattr(self, f"_due_{name}")()
        if now - self._written >= 1.0:
            self._write_status()

    def _on_registration(self, code: int) -> None:
        self.registered = code
        self.emit("PhoneRegistration", code=code)
        now = time.monotonic()
        if code in REFUSED and self.acc is not None and now - self.resecret_at >= RESECRET_EVERY:
            # The extension's digests changed under us (an import, `pbx ext passwd`): set our own again.
            self.resecret_at = now
            self.acc.modify(self._account_config(self.new_secret()))

    # ringing -------------------------------------------------------------------------

    def _on_invite(self, call: Any, msg: str) -> None:
        if self.state != "idle" or self.off_hook or self.call is not None:
            _answer(call, 486)
            return
        self.call, self.direction = call, "in"
        self.caller = caller_of(msg)
        self.last_caller = {**self.caller, "at": _now_iso()}
        _answer(call, 180)
        self.state, self.rings = "ringing", 0
        self.audio.open()             # for the caller ID burst
        self.emit("PhoneRinging", **self.caller)
        self._due_ring_on()
        self._write_status()

    def _ring(self, on: bool) -> None:
        self.ringing = on
        pin = self.pins["ring"]
        (pin.on if on else pin.off)()

    def _due_ring_on(self) -> None:
        if self.state != "ringing":
            return
        self.rings += 1
        self._ring(True)
        self.emit("PhoneRing", ring=self.rings)
        self.deadlines["ring_off"] = time.monotonic() + RING_ON

    def _due_ring_off(self) -> None:
        if self.state != "ringing":
            return
        self._ring(False)
        self.emit("PhoneRingEnded", ring=self.rings)
        now = time.monotonic()
        if self.rings == 1:
            self.deadlines["caller_id"] = now + CID_AFTER_RING
        self.deadlines["ring_on"] = now + RING_OFF

    def _due_caller_id(self) -> None:
        if self.state != "ringing" or self.caller is None:
            return
        c = self.caller
        message = callerid.mdmf_message(c["number"], c["name"], datetime.now().strftime("%m%d%H%M"),
                                        absent="" if c["number"] else "P")
        self.audio.play(callerid.fsk_burst(message, "v23"))
        self.emit("PhoneCallerIdSent", number=c["number"], name=c["name"])

    # the handset ------------------------------------------------------------------------

    def _on_hook(self, off: bool) -> None:
        now = time.monotonic()
        self.off_hook = off
        if not off:
            self.on_hook_at = now
            self.emit("PhoneOnHook")
            if self.state == "talking":
                self.deadlines["hang_up"] = now + self.cfg.flash_max   # a flash, or the end of the call
            elif self.state != "idle" and self.state != "ringing":
                self._hang_up()
            self._write_status()
            return
        self.emit("PhoneOffHook")
        if "hang_up" in self.deadlines:
            del self.deadlines["hang_up"]
            if now - self.on_hook_at >= self.cfg.flash_min:
                self.emit("PhoneFlash")
            return
        if self.state == "ringing":
            self._ring(False)
            self.deadlines.clear()
            self.state = "answering"
            self.audio.stop_sounds()
            _answer(self.call, 200)
        elif self.state == "idle":
            self.state, self.direction, self.digits = "dialtone", "out", ""
            self.audio.open()
            self.audio.play(DIAL_TONE)
            self.dtmf = tones.DtmfDetector()
            self.emit("PhoneDialTone")
        self._write_status()

    def _due_hang_up(self) -> None:
        if not self.off_hook:
            self._hang_up()

    def _on_digit(self, digit: str) -> None:
        if self.state not in ("dialtone", "dialling"):
            return
        if self.state == "dialtone":
            self.audio.stop_sounds()
            self.state = "dialling"
        self.emit("PhoneDigit", digit=digit)
        if digit == "#" and self.digits:
            self.deadlines.pop("dialled", None)
            self._due_dialled()
            return
        self.digits += digit
        self.deadlines["dialled"] = time.monotonic() + self.cfg.digit_timeout

    def _due_dialled(self) -> None:
        import pjsua2 as pj

        if self.state != "dialling":
            return
        self.dtmf = None
        number = re.sub(r"[^0-9*+]", "", self.digits)
        self.emit("PhoneDialled", number=number)
        call = self._Call(self.acc)
        self.thread.registry.keep(call.key, call)
        self.call, self.state = call, "calling"
        host, port = self.edge
        prm = pj.CallOpParam(True)
        prm.opt.audioCount, prm.opt.videoCount = 1, 0
        try:
            call.makeCall(f"sip:{number}@{host}:{port}", prm)
            self.thread.registry.holds(call.key)
        except pj.Error as e:
            log.error("phone %s: cannot place the call: %s", self.cfg.number, e.info())
            self.thread.registry.done(call.key)
            self.call = None
            self._busy("the call could not be placed")
        self._write_status()

    # the call --------------------------------------------------------------------------

    def _on_call_state(self, call: Any, state: int, code: int) -> None:
        import pjsua2 as pj

        if state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.thread.registry.done(call.key)
            if call is not self.call:
                return
            self.call = None
            self.emit("PhoneCallEnded", code=code, state=self.state)
            if self.state in ("ringing", "answering") and not self.off_hook:
                self._idle("the caller hung up")
            elif self.off_hook:
                self._busy(f"the call ended ({code})")
            else:
                self._idle(f"the call ended ({code})")
            return
        if call is not self.call:
            return
        if state == pj.PJSIP_INV_STATE_EARLY and self.state == "calling" and not self.audio.playing:
            self.audio.play(RINGBACK)
            self.emit("PhoneRingback")
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and self.state in ("calling", "answering"):
            self.state = "talking"
            self.calls += 1
            self.audio.stop_sounds()
            self.audio.passing = True
            self.emit("PhoneAnswered", direction=self.direction)
            self._connect(call)
            self._write_status()

    def _on_media(self, call: Any) -> None:
        if call is self.call and self.state == "talking":
            self._connect(call)

    def _busy(self, why: str) -> None:
        """The call is over but the handset is still lifted: busy tone until on-hook."""
        self.state = "busy"
        self.audio.passing = False
        self.dtmf = None
        self.deadlines.clear()
        self.audio.stop_sounds()
        self.audio.play(BUSY)
        self.emit("PhoneBusyTone", reason=why)
        self._write_status()

    def _hang_up(self) -> None:
        import pjsua2 as pj

        call, self.call = self.call, None
        if call is not None:
            try:
                call.hangup(pj.CallOpParam())
            except pj.Error:
                pass
        self._idle("on-hook")

    def _idle(self, why: str) -> None:
        self._ring(False)
        self.dtmf = None
        self.audio.passing = False
        self.audio.close()
        self.deadlines.clear()
        self.state, self.direction, self.digits = "idle", "", ""
        self.emit("PhoneIdle", reason=why)
        self._write_status()

    # -- reporting --------------------------------------------------------------------------

    def emit(self, kind: str, **data: Any) -> None:
        ev = {"kind": kind, "line": self.cfg.name, "extension": self.cfg.number, "at": _now_iso(), **data}
        log.info("phone %s: %s %s", self.cfg.number, kind, data or "")
        try:
            self.on_event(ev)
        except Exception:  # noqa: BLE001
            log.exception("phone event listener failed")

    def status(self) -> dict:
        return {
            "line": self.cfg.name, "kind": "fxs", "number": self.cfg.number, "state": self.state,
            "hook": "off" if self.off_hook else "on", "ringing": self.ringing,
            "rings": self.rings if self.state == "ringing" else 0, "registered": self.registered,
            "last_caller": self.last_caller, "calls": self.calls,
            "audio": {"device": self.cfg.device, **self.audio.status()},
            "port": self.cfg.port, "edge": f"{self.edge[0]}:{self.edge[1]}",
        }

    def _request(self, req: dict) -> dict:
        if req.get("cmd") == "test":
            return {"ok": False, "error": "the line test is for analog lines (FXO), not phones"}
        return self.thread.call(self.status)


def caller_of(invite: str) -> dict:
    """The caller as the INVITE's From names it: {"number", "name"}; "anonymous" gives no number."""
    m = re.search(r"^(?:From|f)[ \t]*:[ \t]*(.*?)\r?$", invite, re.M | re.I)
    value = m.group(1) if m else ""
    quoted = re.match(r'\s*"((?:[^"\\]|\\.)*)"', value)
    name = quoted.group(1) if quoted else value.split("<", 1)[0].strip() if "<" in value else ""
    user = re.search(r"sips?:([^@;>]+)@", value)
    number = "".join(ch for ch in (user.group(1) if user else "") if ch.isdigit() or ch == "+")
    return {"number": number, "name": name.replace('\\"', '"').strip()}
