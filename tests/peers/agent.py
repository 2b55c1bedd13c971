"""A pjsua2 user agent driven by JSON lines: a desk phone, a mobile, or a provider.

    python tests/peers/agent.py --port 5071 --name phone101
    python tests/peers/agent.py --port 5071 --name 101 --register 127.0.0.1:5060 --password PW

With --register the agent is a desk phone of the appliance: it registers as
extension NAME with digest auth at that address (the edge) and sends every
request through it, as a real phone does; "ev": "reg" reports registrations.
With --tls that address is the edge's TLS port: SIP goes over TLS and calls
must use SRTP (SDES); "ev": "sdp" reports each SDP sent or received (its
m=audio line and whether it carries a=crypto).

Events go to stdout as JSON objects ("ev": incoming, state, cancel, ready...);
commands come on stdin, one JSON object a line:

    {"cmd": "mode", "mode": "ring"|"answer"|"busy", "delay": 0.0, "digits": "1", "digits_after": 1.0}
    {"cmd": "call", "uri": "sip:...", "from": "sip:...", "headers": {"X-PBX-Extension": "101"}}
        optional "delayed": true: an INVITE without SDP (delayed offer: the offer comes in the 200, the answer in the ACK)
        optional "record": "path.wav": record what the call receives from its first media on
        (early media included) until {"cmd": "stoprecord", "id": 1} or the call ends
    {"cmd": "answer", "id": 1}        {"cmd": "hangup", "id": 1 | "all"}
    {"cmd": "tone", "id": 1, "freq": 600}      play a tone into the call
    {"cmd": "record", "id": 1, "path": "..."}  record what the call receives; {"cmd": "stoprecord"}
                                                (all; with "id": that call's only)
    {"cmd": "dtmf", "id": 1, "digits": "1"}
    {"cmd": "hold", "id": 1}  {"cmd": "unhold", "id": 1}
    {"cmd": "xfer", "id": 1, "uri": "sip:..."}  {"cmd": "xferreplaces", "id": 1, "other": 2}
        (the transferee's NOTIFYs come back as "ev": "xfer_status" with code and final)
    {"cmd": "buddy", "uri": "sip:102@..."}   watch an extension's presence (SUBSCRIBE Event: presence);
        every change comes as "ev": "buddy" with status (online, offline, unknown), activity (busy, away, "") and note
    {"cmd": "quit"}

Received CANCELs are reported with their Reason header ("ev": "cancel"),
read from pjsua's message log.
"""

from __future__ import annotations

import argparse
import gc
import json
import queue
import re
import sys
import threading
import time

import pjsua2 as pj

from appliance.engine.benchpeer import pcmu_only, peer_config
from appliance.engine.core import collect_garbage

_out = threading.Lock()


def say(**obj) -> None:
    with _out:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def wav_closed(path: str) -> bool:
    """Whether a recorder's file has its final header: its RIFF size covers the file."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            size = f.seek(0, 2)
    except FileNotFoundError:
        return True  # nothing was recorded: there is nothing to wait for
    return len(head) == 12 and head[8:12] == b"WAVE" and int.from_bytes(head[4:8], "little") + 8 == size


class Logs(pj.LogWriter):
    def write(self, entry):
        try:
            msg = entry.msg
            if re.search(r"\bRX \d+ bytes Request msg CANCEL", msg):
                m = re.search(r"^Reason:\s*(.*?)\r?$", msg, re.M | re.I)
                say(ev="cancel", reason=m.group(1) if m else "")
            if "m=audio" in msg and re.search(r"\b[RT]X \d+ bytes", msg):
                m = re.search(r"^m=audio.*?\r?$", msg, re.M)
                say(ev="sdp", dir="rx" if re.search(r"\bRX \d+ bytes", msg) else "tx",
                    m=m.group(0).strip() if m else "", crypto="a=crypto:" in msg)
            if re.search(r"\bRX \d+ bytes Request msg INVITE", msg):
                frm = re.search(r"^From:\s*(.*?)\r?$", msg, re.M | re.I)
                say(ev="invite_rx", from_=frm.group(1) if frm else "")
        except Exception:  # noqa: BLE001
            pass


class Call(pj.Call):
    def __init__(self, agent, acc, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.agent = agent
        self.id = agent.next_id()
        self.state = "new"

    def onCallState(self, prm):
        try:
            ci = self.getInfo()
            names = {pj.PJSIP_INV_STATE_CALLING: "calling", pj.PJSIP_INV_STATE_INCOMING: "incoming",
                     pj.PJSIP_INV_STATE_EARLY: "early", pj.PJSIP_INV_STATE_CONNECTING: "connecting",
                     pj.PJSIP_INV_STATE_CONFIRMED: "confirmed", pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected"}
            self.state = names.get(ci.state, str(ci.state))
            say(ev="state", id=self.id, state=self.state, code=ci.lastStatusCode, reason=ci.lastReason,
                t=time.monotonic())
            if self.state == "disconnected":
                self.agent.ended.append(self)
            if self.state == "confirmed" and self.agent.digits:
                digits, after = self.agent.digits, self.agent.digits_after
                self.agent.at(after, lambda: self.agent.dtmf(self, digits))
        except Exception as e:  # noqa: BLE001
            say(ev="error", where="onCallState", error=str(e))

    def onCallMediaState(self, prm):
        try:
            ci = self.getInfo()
            for i, m in enumerate(ci.media):
                if m.type == pj.PJMEDIA_TYPE_AUDIO:
                    say(ev="media", id=self.id, status=int(m.status))
            self.agent.media_changed(self)
        except Exception as e:  # noqa: BLE001
            say(ev="error", where="onCallMediaState", error=str(e))

    def onDtmfDigit(self, prm):
        say(ev="dtmf", id=self.id, digit=prm.digit)

    def onCallTransferStatus(self, prm):
        # What the transferee's NOTIFYs say about a transfer this call asked for.
        say(ev="xfer_status", id=self.id, code=int(prm.statusCode), reason=prm.reason, final=bool(prm.finalNotify))


class Buddy(pj.Buddy):
    def __init__(self, uri: str):
        super().__init__()
        self.uri = uri

    def onBuddyState(self):
        try:
            st = self.getInfo().presStatus
            status = {pj.PJSUA_BUDDY_STATUS_ONLINE: "online", pj.PJSUA_BUDDY_STATUS_OFFLINE: "offline"}
            activity = {pj.PJRPID_ACTIVITY_BUSY: "busy", pj.PJRPID_ACTIVITY_AWAY: "away"}
            say(ev="buddy", uri=self.uri, status=status.get(st.status, "unknown"),
                activity=activity.get(st.activity, ""), note=st.note)
        except Exception as e:  # noqa: BLE001
            say(ev="error", where="onBuddyState", error=str(e))


class Acc(pj.Account):
    def __init__(self, agent):
        super().__init__()
        self.agent = agent

    def onIncomingCall(self, prm):
        try:
            self.agent.incoming(self, prm)
        except Exception as e:  # noqa: BLE001
            say(ev="error", where="onIncomingCall", error=str(e))

    def onRegState(self, prm):
        say(ev="reg", code=prm.code, expires=prm.expiration)


class Agent:
    def __init__(self, port: int, name: str, register: str = "", password: str = "", tls: bool = False):
        self.port, self.name = port, name
        self.calls: dict[int, Call] = {}
        self.ended: list[Call] = []
        self.finished: list[Call] = []
        self._id = 0
        self.mode, self.delay = "ring", 0.0
        self.digits, self.digits_after = "", 1.0
        self.timers: list[tuple[float, object]] = []
        self.tones: dict[int, object] = {}
        self.buddies: list[Buddy] = []
        self.recorders: dict[int, object] = {}
        self.recording: dict[int, str] = {}  # call id -> the file its recorder writes
        self.commands: queue.SimpleQueue = queue.SimpleQueue()

        # pj objects must die on this thread: cycles are collected here only (loop).
        gc.disable()
        ep = self.ep = pj.Endpoint()
        ep.libCreate()
        cfg = peer_config(max_calls=256)
        self.logs = Logs()
        cfg.logConfig.writer = self.logs
        cfg.logConfig.level = 4
        cfg.logConfig.consoleLevel = 4
        cfg.logConfig.msgLogging = 1
        ep.libInit(cfg)
        t = pj.TransportConfig()
        t.port = port
        t.boundAddress = "127.0.0.1"
        t.publicAddress = "127.0.0.1"
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, t)
        if tls:
            t = pj.TransportConfig()
            t.port = 0  # outgoing connections only; the edge calls us back over ours
            t.boundAddress = "127.0.0.1"
            ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, t)
        ep.audDevManager().setNullDev()
        ep.libStart()
        pcmu_only(ep)
        self.acc = Acc(self)
        ac = pj.AccountConfig()
        ac.idUri = f"sip:{name}@127.0.0.1:{port}"
        # RTP apart from the engine's 10000-13999 and the tests' SIP ports (tests/conftest.py, PORTS),
        # and below the ephemeral range, where another worker's bind(0) could take it first.
        ac.mediaConfig.transportConfig.port = 22000 + (port % 40) * 200
        if register:
            ac.idUri = f"sip:{name}@{register}"
            ac.regConfig.registrarUri = f"sip:{register}"
            ac.regConfig.timeoutSec = 300
            ac.sipConfig.proxies.append(f"sip:{register};lr")
            ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", name, 0, password))
            if tls:
                ac.regConfig.registrarUri = f"sip:{register};transport=tls"
                ac.sipConfig.proxies[0] = f"sip:{register};transport=tls;lr"
                ac.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
                ac.mediaConfig.srtpSecureSignaling = 1
        self.acc.create(ac, not register)

    def next_id(self) -> int:
        self._id += 1
        return self._id

    def at(self, delay: float, fn) -> None:
        self.timers.append((time.monotonic() + delay, fn))

    def incoming(self, acc, prm):
        call = Call(self, acc, prm.callId)
        self.calls[call.id] = call
        ci = call.getInfo()
        hdrs = {}
        for name in ("Reason", "X-PBX-Extension"):
            m = re.search(rf"^{name}:\s*(.*?)\r?$", prm.rdata.wholeMsg, re.M | re.I)
            if m:
                hdrs[name] = m.group(1)
        say(ev="incoming", id=call.id, remote=ci.remoteUri, local=ci.localUri, headers=hdrs, t=time.monotonic())
        if self.mode == "busy":
            self.respond(call, 486)
            return
        self.respond(call, 180)
        if self.mode == "answer":
            self.at(self.delay, lambda: self.respond(call, 200) if call.state not in ("disconnected",) else None)

    def respond(self, call, code):
        op = pj.CallOpParam()
        op.statusCode = code
        try:
            call.answer(op)
        except pj.Error as e:
            say(ev="error", where="answer", error=e.info())

    def media_changed(self, call):
        am = self.audio(call)
        if am is None:
            return
        if call.id not in self.tones:
            # Like a real handset: the microphone (silence on the null device)
            # feeds the call, so the call's port is clocked and DTMF goes out whole.
            self.ep.audDevManager().getCaptureDevMedia().startTransmit(am)
        if call.id in self.tones:
            self.tones[call.id].startTransmit(am)
        if call.id in self.recorders:
            am.startTransmit(self.recorders[call.id])

    def audio(self, call):
        try:
            return call.getAudioMedia(-1)
        except pj.Error:
            return None

    def dtmf(self, call, digits):
        try:
            call.dialDtmf(digits)
            say(ev="dtmf_sent", id=call.id, digits=digits)
        except pj.Error as e:
            say(ev="error", where="dtmf", error=e.info())

    def run_command(self, cmd: dict) -> None:
        name = cmd["cmd"]
        call = self.calls.get(cmd.get("id"))
        if name == "mode":
            self.mode = cmd.get("mode", self.mode)
            self.delay = cmd.get("delay", 0.0)
            self.digits = cmd.get("digits", "")
            self.digits_after = cmd.get("digits_after", 1.0)
        elif name == "call":
            c = Call(self, self.acc)
            prm = pj.CallOpParam(True)
            if cmd.get("delayed"):
                prm.opt.flag |= pj.PJSUA_CALL_NO_SDP_OFFER
            if cmd.get("from"):
                prm.txOption.localUri = cmd["from"]
            for k, v in (cmd.get("headers") or {}).items():
                h = pj.SipHeader()
                h.hName, h.hValue = k, v
                prm.txOption.headers.append(h)
            self.calls[c.id] = c
            if cmd.get("record"):
                rec = pj.AudioMediaRecorder()
                rec.createRecorder(cmd["record"])
                self.recorders[c.id] = rec
                self.recording[c.id] = cmd["record"]
            say(ev="calling", id=c.id, t=time.monotonic())
            c.makeCall(cmd["uri"], prm)
        elif name == "buddy":
            b = Buddy(cmd["uri"])
            cfg = pj.BuddyConfig()
            cfg.uri, cfg.subscribe = cmd["uri"], True
            b.create(self.acc, cfg)
            self.buddies.append(b)
        elif name == "answer":
            self.respond(call, cmd.get("code", 200))
        elif name == "hangup":
            targets = list(self.calls.values()) if cmd.get("id") == "all" else [call]
            for c in targets:
                if c is not None and c.state != "disconnected":
                    try:
                        c.hangup(pj.CallOpParam())
                    except pj.Error:
                        pass
        elif name == "tone":
            tg = pj.ToneGenerator()
            tg.createToneGenerator(8000, 1)
            d = pj.ToneDesc()
            d.freq1, d.freq2, d.on_msec, d.off_msec, d.volume, d.flags = cmd["freq"], 0, 1000, 0, 0, 0
            v = pj.ToneDescVector()
            v.append(d)
            tg.play(v, True)
            self.tones[call.id] = tg
            self.media_changed(call)
        elif name == "record":
            rec = pj.AudioMediaRecorder()
            rec.createRecorder(cmd["path"])
            self.recorders[call.id] = rec
            self.recording[call.id] = cmd["path"]
            self.media_changed(call)
        elif name == "stoprecord":
            ids = [cmd["id"]] if "id" in cmd else list(self.recorders)
            paths = [self.recording.pop(i) for i in ids if i in self.recording]
            for i in ids:
                self.recorders.pop(i, None)
            # pjmedia lets a dropped recorder go on the bridge's next tick and only then writes
            # the WAV header's sizes: "ok" waits for that, so the file can be read at once.
            return self.when_closed(paths, time.monotonic() + 5.0)
        elif name == "dtmf":
            self.dtmf(call, cmd["digits"])
        elif name == "hold":
            call.setHold(pj.CallOpParam(True))
        elif name == "unhold":
            prm = pj.CallOpParam(True)
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            call.reinvite(prm)
        elif name == "xfer":
            call.xfer(cmd["uri"], pj.CallOpParam(True))
        elif name == "xferreplaces":
            call.xferReplaces(self.calls[cmd["other"]], pj.CallOpParam(True))
        say(ev="ok", cmd=name)

    def when_closed(self, paths: list[str], deadline: float) -> None:
        open_ = [p for p in paths if not wav_closed(p)]
        if not open_:
            say(ev="ok", cmd="stoprecord")
        elif time.monotonic() > deadline:
            say(ev="error", where="stoprecord", error=f"still being written: {open_}")
        else:
            self.at(0.02, lambda: self.when_closed(open_, deadline))

    def loop(self) -> None:
        def read():
            for line in sys.stdin:
                if line.strip():
                    self.commands.put(json.loads(line))
            self.commands.put({"cmd": "quit"})
        threading.Thread(target=read, daemon=True).start()
        say(ev="ready", port=self.port)
        while True:
            self.ep.libHandleEvents(5)
            collect_garbage()
            now = time.monotonic()
            due = [t for t in self.timers if t[0] <= now]
            if due:
                self.timers = [t for t in self.timers if t[0] > now]
                for _, fn in due:
                    try:
                        fn()
                    except Exception as e:  # noqa: BLE001
                        say(ev="error", where="timer", error=str(e))
            # Ended calls leave the table a turn after they ended, but their
            # objects are kept until close(): a pjsua2 Call freed after pjsua
            # gave its id to a newer call cuts that call off its callbacks.
            for c in self.ended:
                self.calls.pop(c.id, None)
                self.tones.pop(c.id, None)
                self.recorders.pop(c.id, None)
                self.recording.pop(c.id, None)
                self.finished.append(c)
            self.ended.clear()
            while True:
                try:
                    cmd = self.commands.get_nowait()
                except queue.Empty:
                    break
                if cmd["cmd"] == "quit":
                    return self.close()
                try:
                    self.run_command(cmd)
                except Exception as e:  # noqa: BLE001
                    say(ev="error", where=cmd["cmd"], error=str(e))

    def close(self) -> None:
        self.ep.hangupAllCalls()
        end = time.monotonic() + 1.0
        while time.monotonic() < end and any(c.state != "disconnected" for c in self.calls.values()):
            self.ep.libHandleEvents(5)
        self.calls.clear()
        self.tones.clear()
        self.recorders.clear()
        self.ended.clear()
        self.finished.clear()  # every call is over: freeing them now cuts nothing off
        self.buddies.clear()
        self.ep.libHandleEvents(20)
        self.acc.shutdown()
        self.acc = None
        gc.collect()
        self.ep.libDestroy()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="agent")
    ap.add_argument("--register", default="", help="HOST:PORT of the edge to register with as extension NAME")
    ap.add_argument("--password", default="")
    ap.add_argument("--tls", action="store_true", help="--register names the edge's TLS port: SIP over TLS, SRTP calls")
    a = ap.parse_args()
    Agent(a.port, a.name, a.register, a.password, a.tls).loop()
