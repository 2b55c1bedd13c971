"""An analog phone (FXS) as an extension: ringing, caller ID, dial tone, digits, and the hook flash's hold and transfer.

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
- On-hook: an on-hook between `flash_min` and `flash_max` long is a hook
  flash (`PhoneFlash`); a longer one puts the handset down, decided
  `flash_max` after it went down.  Both are timed from the hook pin's
  changes, not from when the phone's thread got to them.
- The flash, as analog phones on a PBX use it:
  talking -> the call is put on hold (a re-INVITE, sendonly: the engine
  gives the other party music on hold) and the handset hears the held dial
  tone (425 Hz, 0.4 s on, 0.04 s off: unlike the plain dial tone, it says a
  call is waiting) -> digits place a consultation call through the edge
  (ringback, busy as for any call) -> a flash ends the consultation
  (ringing, talking or refused) and takes the held call back; a flash on
  the held dial tone takes it back at once.
  Putting the handset down while a call is held: the consulted party
  talking -> attended transfer (REFER with Replaces on the held call: the
  engine joins the held and the consulted party); the consultation still
  ringing -> blind transfer (the consultation is cancelled and the held call
  REFERred to the dialled number; the engine joins only answered calls);
  no consultation, or a refused one -> recall: the phone rings again,
  lifting the handset takes the held call back, and after `recall_for`
  seconds unanswered the held call is hung up.  A transfer that fails
  (refused, or the engine gives the call back) comes back as a recall.

Threads as in fxo.py: gpiozero's callbacks and the audio thread only put
events on a queue; everything else runs on the phone's engine thread.
"""

from __future__ import annotations

import logging
import queue
import re
import time
from dataclasses import dataclass
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
HELD_DIAL_TONE = tones.cadence(0.4, 0.04, 68, level=0.2)   # 30 s of the dial tone a held call interrupts
RECALL_SECONDS = 30.0             # s a held call rings the put-down phone before it is hung up
RINGING = ("ringing", "recall")   # the states in which the ring pin rings
REFUSED = (401, 403, 407)
RESECRET_EVERY = 30.0             # s: at most one new secret this often when the edge refuses the old


@dataclass
class Transfer:
    """A held call handed to the engine by REFER: kept until the engine lets it go or gives it back."""

    how: str            # "attended" (REFER with Replaces) or "blind"
    held: Any           # the call the REFER went on
    consult: Any        # attended: the consultation call the engine joins to it (None once ended)
    to: str             # the number dialled for the consultation
    party: str          # who was on hold
    code: int = 0       # the last progress the engine reported (NOTIFY sipfrag)


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
        # idle, ringing, answering, dialtone, dialling, calling, talking, busy; with a call on hold (`held`):
        # held (its dial tone, digits), consult-calling, consulting (talking), consult-busy; recall (on-hook)
        self.state = "idle"
        self.off_hook = False
        self.put_down_at: float | None = None   # when the handset went down, until that is a flash or a hang-up
        self.call: Any = None      # the call the handset is in (or rings for)
        self.held: Any = None      # the call on hold after a flash
        self.held_party = ""
        self.consult_number = ""
        self.transfers: dict[Any, Transfer] = {}   # by the held call's key: handed to the engine, not yet let go
        self.recall_for = RECALL_SECONDS
        self.unhold_pending = False
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
        # Stamped here: a flash is told from a hang-up by how long the handset was down, and the
        # phone's thread may get to the two events late, even in one turn.
        hook.when_activated = lambda: self.events.put(("hook", True, time.monotonic()))
        hook.when_deactivated = lambda: self.events.put(("hook", False, time.monotonic()))

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

            @guarded
            def onCallTransferStatus(self, prm: Any) -> None:
                phone.events.put(("xfer_status", self, int(prm.statusCode), bool(prm.finalNotify)))

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
        if self.state != "idle" or self.off_hook or self.call is not None or self.held is not None:
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
        if self.state not in RINGING:
            return
        self.rings += 1
        self._ring(True)
        self.emit("PhoneRing", ring=self.rings, recall=self.state == "recall")
        self.deadlines["ring_off"] = time.monotonic() + RING_ON

    def _due_ring_off(self) -> None:
        if self.state not in RINGING:
            return
        self._ring(False)
        self.emit("PhoneRingEnded", ring=self.rings)
        now = time.monotonic()
        if self.rings == 1 and self.state == "ringing":
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

    def _on_hook(self, off: bool, at: float) -> None:
        self.off_hook = off
        if not off:
            self.emit("PhoneOnHook")
            if self.state == "talking" or self.held is not None:
                # A flash or the handset put down: known once it has stayed down for flash_max.
                self.put_down_at = at
                self.deadlines["hang_up"] = at + self.cfg.flash_max
            elif self.state not in ("idle", "ringing"):
                self._hang_up()
            self._write_status()
            return
        self.emit("PhoneOffHook")
        if self.put_down_at is not None:
            down, self.put_down_at = at - self.put_down_at, None
            self.deadlines.pop("hang_up", None)
            if down < self.cfg.flash_min:
                return                    # a bounce of the hook switch
            if down <= self.cfg.flash_max:
                self.emit("PhoneFlash", seconds=round(down, 3))
                self._flash()
                self._write_status()
                return
            # Down longer than a flash, but the phone's thread got to it late: put down, then lifted anew.
            self._put_down()
        if self.state == "ringing":
            self._ring(False)
            self.deadlines.clear()
            self.state = "answering"
            self.audio.stop_sounds()
            _answer(self.call, 200)
        elif self.state == "recall":
            self._ring(False)
            self.deadlines.clear()
            self.audio.open()
            self._resume()
        elif self.state == "idle":
            self.state, self.direction, self.digits = "dialtone", "out", ""
            self.audio.open()
            self.audio.play(DIAL_TONE)
            self.dtmf = tones.DtmfDetector()
            self.emit("PhoneDialTone")
        self._write_status()

    def _due_hang_up(self) -> None:
        if self.put_down_at is None:
            return
        if self.pins["hook"].is_active:
            return                        # lifted again: its event is on the way and decides by its own time
        self.put_down_at = None
        self._put_down()

    def _flash(self) -> None:
        if self.held is not None:
            self._back_to_held()
        elif self.state == "talking":
            self._hold()
        # Elsewhere (dialling, ringing out, busy) a flash means nothing.

    def _put_down(self) -> None:
        """The handset has stayed down longer than a flash."""
        if self.held is None:
            self._hang_up()
        elif self.state == "consulting":
            self._transfer("attended")
        elif self.state == "consult-calling":
            # The engine joins only answered calls (Replaces names a bridged call), so a
            # consultation that still rings becomes a blind transfer to the same number.
            self._transfer("blind")
        else:
            self._end_consultation()
            self._recall()
        self._write_status()

    def _on_digit(self, digit: str) -> None:
        if self.state not in ("dialtone", "dialling", "held"):
            return
        if self.state == "dialtone":
            self.audio.stop_sounds()
            self.state = "dialling"
        elif self.state == "held" and not self.digits:
            self.audio.stop_sounds()
        self.emit("PhoneDigit", digit=digit)
        if digit == "#" and self.digits:
            self.deadlines.pop("dialled", None)
            self._due_dialled()
            return
        self.digits += digit
        self.deadlines["dialled"] = time.monotonic() + self.cfg.digit_timeout

    def _due_dialled(self) -> None:
        import pjsua2 as pj

        if self.state not in ("dialling", "held"):
            return
        self.dtmf = None
        number = re.sub(r"[^0-9*+]", "", self.digits)
        consult = self.held is not None
        self.emit("PhoneDialled", number=number, consultation=consult)
        if not number:
            self._busy("nothing was dialled")
            return
        call = self._Call(self.acc)
        self.thread.registry.keep(call.key, call)
        self.call, self.state = call, "consult-calling" if consult else "calling"
        self.consult_number = number if consult else ""
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
            self._transfer_call_ended(call, code)
            if call is self.held:
                return self._held_ended(code)
            if call is not self.call:
                return
            self.call = None
            self.emit("PhoneCallEnded", code=code, state=self.state)
            if self.state in ("ringing", "answering") and not self.off_hook:
                self._idle("the caller hung up")
            elif self.off_hook or self.held is not None:
                self._busy(f"the call ended ({code})")
            else:
                self._idle(f"the call ended ({code})")
            return
        if call is not self.call:
            return
        if state == pj.PJSIP_INV_STATE_EARLY and self.state in ("calling", "consult-calling") \
                and not self.audio.playing:
            self.audio.play(RINGBACK)
            self.emit("PhoneRingback")
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and self.state in ("calling", "answering", "consult-calling"):
            consult = self.state == "consult-calling"
            self.state = "consulting" if consult else "talking"
            self.calls += 1
            self.audio.stop_sounds()
            self.audio.passing = True
            self.emit("PhoneAnswered", direction="out" if consult else self.direction, consultation=consult)
            self._connect(call)
            self._write_status()

    def _on_media(self, call: Any) -> None:
        import pjsua2 as pj

        if call is not self.call or self.state not in ("talking", "consulting"):
            return
        self._connect(call)
        if self.unhold_pending:
            # The hold's re-INVITE was still under way when the flash took the call back.
            self.unhold_pending = False
            self._unhold(call, pj)

    def _busy(self, why: str) -> None:
        """The call is over (or never started) but the handset is still lifted: busy tone until on-hook."""
        self.state = "busy" if self.held is None else "consult-busy"
        self.audio.passing = False
        self.dtmf = None
        # A handset going down meanwhile is still being timed (flash or put down).
        self.deadlines = {k: v for k, v in self.deadlines.items() if k == "hang_up"}
        self.audio.stop_sounds()
        self.audio.play(BUSY)
        self.emit("PhoneBusyTone", reason=why, held=self.held is not None)
        self._write_status()

    def _hang_up(self) -> None:
        for call in (self.call, self.held):
            end_call(call)
        self.call = self.held = None
        self.held_party = ""
        self._idle("on-hook")

    def _idle(self, why: str) -> None:
        self._ring(False)
        self.dtmf = None
        self.audio.passing = False
        self.audio.close()
        self.deadlines.clear()
        self.put_down_at = None
        self.unhold_pending = False
        self.state, self.direction, self.digits, self.consult_number = "idle", "", "", ""
        self.emit("PhoneIdle", reason=why)
        self._write_status()

    # hold, consultation and transfer ---------------------------------------------------------

    def _hold(self) -> None:
        import pjsua2 as pj

        call = self.call
        self._disconnect(call)
        self.audio.passing = False
        try:
            call.setHold(pj.CallOpParam(True))
        except pj.Error as e:
            log.warning("phone %s: cannot put the call on hold: %s", self.cfg.number, e.info())
            self.audio.passing = True
            self._connect(call)
            return
        self.call, self.held = None, call
        self.held_party = remote_number(call)
        self.state, self.digits = "held", ""
        self.audio.stop_sounds()
        self.audio.play(HELD_DIAL_TONE)
        self.dtmf = tones.DtmfDetector()
        self.emit("PhoneHeld", party=self.held_party)

    def _back_to_held(self) -> None:
        """A flash with a call on hold: the consultation (ringing, talking or refused) ends, the held call is back."""
        consult, self.call = self.call, None
        self.deadlines.pop("dialled", None)
        self.dtmf = None
        self.audio.stop_sounds()
        if consult is not None:
            self._disconnect(consult)
            end_call(consult)
        if self.consult_number:
            self.emit("PhoneConsultationEnded", number=self.consult_number)
        self._resume()

    def _resume(self) -> None:
        import pjsua2 as pj

        call, self.held = self.held, None
        self.call, self.consult_number, self.digits = call, "", ""
        self.state = "talking"
        self.audio.passing = True
        self._unhold(call, pj)
        self._connect(call)
        self.emit("PhoneResumed", party=self.held_party)
        self.held_party = ""
        self._write_status()

    def _unhold(self, call: Any, pj: Any) -> None:
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        try:
            call.reinvite(prm)
        except pj.Error as e:
            # Most likely the hold's own re-INVITE has not finished: retried when its media is settled.
            log.info("phone %s: the held call's re-INVITE waits: %s", self.cfg.number, e.info())
            self.unhold_pending = True

    def _end_consultation(self) -> None:
        consult, self.call = self.call, None
        if consult is not None:
            self._disconnect(consult)
            end_call(consult)
            self.emit("PhoneConsultationEnded", number=self.consult_number)
        self.consult_number = ""

    def _recall(self) -> None:
        """The handset is down with a call on hold: ring the phone until it is lifted, or `recall_for` passes."""
        self.call = None
        self.dtmf = None
        self.audio.passing = False
        self.audio.close()
        self.deadlines.clear()
        self.state, self.digits, self.rings = "recall", "", 0
        self.emit("PhoneRecall", party=self.held_party)
        self._due_ring_on()
        self.deadlines["recall_over"] = time.monotonic() + self.recall_for
        self._write_status()

    def _due_recall_over(self) -> None:
        if self.state != "recall":
            return
        call, self.held = self.held, None
        end_call(call)
        self.emit("PhoneRecallEnded", party=self.held_party)
        self.held_party = ""
        self._idle("nobody took the held call back")

    def _transfer(self, how: str) -> None:
        """Hand the held call to the engine (REFER) and let the phone go idle."""
        import pjsua2 as pj

        held, consult, to = self.held, self.call, self.consult_number
        self._disconnect(consult)
        try:
            if how == "attended":
                held.xferReplaces(consult, pj.CallOpParam(True))
            else:
                self.call = None
                end_call(consult)
                consult = None
                host, port = self.edge
                held.xfer(f"sip:{to}@{host}:{port}", pj.CallOpParam(True))
        except pj.Error as e:
            log.warning("phone %s: cannot transfer the held call: %s", self.cfg.number, e.info())
            self.emit("PhoneTransferFailed", how=how, to=to, reason=e.info())
            self._end_consultation()
            self._recall()
            return
        self.transfers[held.key] = Transfer(how, held, consult, to, self.held_party)
        self.held = self.call = None
        self.emit("PhoneTransferred", how=how, to=to, party=self.held_party)
        self.held_party = ""
        self._idle("transferred")

    def _on_xfer_status(self, call: Any, code: int, final: bool) -> None:
        t = self.transfers.get(call.key)
        if t is None:
            return
        t.code = code
        self.emit("PhoneTransferStatus", how=t.how, to=t.to, code=code, final=final)
        if not final:
            return
        if code // 100 == 2:
            # Done: the engine lets both legs go itself; hanging up here too spares waiting for it.
            for c in (t.consult, t.held):
                end_call(c)
            return
        del self.transfers[call.key]
        end_call(t.consult)
        self.emit("PhoneTransferFailed", how=t.how, to=t.to, code=code)
        if self.state == "idle" and not self.off_hook:
            self.held, self.held_party, self.call = t.held, t.party, None
            self._recall()
        else:
            end_call(t.held)              # the phone is in another call by now

    def _transfer_call_ended(self, call: Any, code: int) -> None:
        for t in self.transfers.values():
            if t.consult is call:
                t.consult = None
        t = self.transfers.pop(call.key, None)
        if t is None:
            return
        # The engine let the held call go (the transfer is done), or the held party hung up first.
        end_call(t.consult)
        self.emit("PhoneTransferDone", how=t.how, to=t.to, code=t.code)

    def _held_ended(self, code: int) -> None:
        """The held party hung up: what the handset does goes on without a held call."""
        self.held = None
        self.emit("PhoneHeldCallEnded", party=self.held_party, code=code)
        self.held_party = ""
        if self.state == "recall":
            self._idle("the held party hung up")
            return
        after = {"held": "dialling" if self.digits else "dialtone", "consult-calling": "calling",
                 "consulting": "talking", "consult-busy": "busy"}
        if self.consult_number:
            self.direction = "out"        # the consultation goes on as an ordinary call of the phone's
        self.state = after.get(self.state, self.state)
        self.consult_number = ""
        if self.state == "dialtone":
            self.audio.stop_sounds()
            self.audio.play(DIAL_TONE)
        self._write_status()

    def _disconnect(self, call: Any) -> None:
        """The handset no longer hears the call nor is heard in it."""
        import pjsua2 as pj

        if call is None or self.port is None:
            return
        try:
            if not call.hasMedia():
                return                    # never connected (still ringing)
            am = call.getAudioMedia(-1)
            self.port.stopTransmit(am)
            am.stopTransmit(self.port)
        except pj.Error:
            pass

    def _shutdown(self) -> None:
        self.held = None
        self.transfers.clear()
        while True:               # events still queued hold calls, which must not outlive the library
            try:
                self.events.get_nowait()
            except queue.Empty:
                break
        super()._shutdown()

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
            "rings": self.rings if self.state in RINGING else 0, "registered": self.registered,
            "held": self.held_party if self.held is not None else None,
            "consulting": self.consult_number or None, "transfers": len(self.transfers),
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


def end_call(call: Any) -> None:
    """Hang up one of the phone's calls, if any; one the far end has ended already is no error."""
    import pjsua2 as pj

    if call is None or not call.isActive():
        return
    try:
        if call.getInfo().state != pj.PJSIP_INV_STATE_DISCONNECTED:
            call.hangup(pj.CallOpParam())
    except pj.Error:
        pass


def remote_number(call: Any) -> str:
    """The number at the other end of a call (the user part of its remote URI), for the status and the log."""
    import pjsua2 as pj

    try:
        uri = call.getInfo().remoteUri
    except pj.Error:
        return ""
    user = re.search(r"sips?:([^@;>]+)@", uri)
    return user.group(1) if user else ""
