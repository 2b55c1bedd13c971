"""A pjsua2 user agent in its own process, driven by JSON lines: a real SIP phone for tests.

One pjsua2 Endpoint per process (a pjsua2 rule), so each `Phone` is a
subprocess.  The child polls `libHandleEvents` from the thread that called
`libCreate` (threadCnt=0) and reads commands from stdin between polls; it
writes events as JSON lines on stdout:

    {"event": "ready", "port": 40123}
    {"event": "reg", "account": "a", "code": 200, "active": true, "expires": 300}
    {"event": "call", "call": 1, "state": "CONFIRMED", "code": 200, "headers": {...}}
    {"event": "incoming", "call": 1, "from": "<sip:...>", "headers": {...}}

Several accounts on one Phone act as several lines of one device; two
Phones are two devices.  With `proxy` an account sends everything through
that Route (as the engine does with the edge).
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Phone:
    """The parent side: start the child, send commands, wait for events."""

    def __init__(self, transport: str = "udp", *, answer: int | None = None, bind: str = "127.0.0.1"):
        cmd = [sys.executable, "-u", "-m", "tests.peers.phone", transport, str(answer or 0), bind]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready = self.wait(lambda e: e["event"] == "ready", timeout=20)
        self.port = ready["port"]

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                self.events.put(json.loads(line))

    def send(self, **command) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def wait(self, predicate, timeout: float = 10.0) -> dict:
        for e in self.seen:
            if predicate(e):
                self.seen.remove(e)
                return e
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching event; seen {self.seen[-5:]}")
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(e):
                return e
            self.seen.append(e)

    def account(self, name: str, user: str, password: str, registrar: str | None, *, proxy: str | None = None, expires: int = 300, realm: str = "*") -> None:
        self.send(cmd="account", name=name, user=user, password=password, registrar=registrar, proxy=proxy, expires=expires, realm=realm)

    def reg(self, name: str, timeout: float = 10.0) -> dict:
        return self.wait(lambda e: e["event"] == "reg" and e["account"] == name, timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(cmd="quit")
                self.proc.wait(10)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait(5)


# ---------------------------------------------------------------------------
# The child side: imports pjsua2 only here.


def _child(transport: str, answer: int, bind: str) -> None:  # pragma: no cover - runs in the subprocess
    import pjsua2 as pj

    from appliance.engine.benchpeer import peer_config

    def emit(**event) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = peer_config(max_calls=None)
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = bind
    tcfg.port = 0
    kind = pj.PJSIP_TRANSPORT_TCP if transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
    tid = ep.transportCreate(kind, tcfg)
    ep.audDevManager().setNullDev()
    ep.libStart()
    port = ep.transportGetInfo(tid).localName.rsplit(":", 1)[1]

    accounts: dict[str, pj.Account] = {}
    calls: dict[int, pj.Call] = {}

    def headers_of(msg: str) -> dict:
        out = {}
        for line in msg.split("\r\n")[1:]:
            if not line:
                break
            name, _, value = line.partition(":")
            out.setdefault(name.strip().lower(), value.strip())
        return out

    class Call(pj.Call):
        def onCallState(self, prm):
            try:
                info = self.getInfo()
                emit(event="call", call=info.id, state=info.stateText, code=info.lastStatusCode,
                     headers=headers_of(prm.e.body.tsxState.src.rdata.wholeMsg) if prm.e.type == pj.PJSIP_EVENT_TSX_STATE and prm.e.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG else {})
            except Exception as exc:
                emit(event="error", where="onCallState", error=repr(exc))

    class Account(pj.Account):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def onRegState(self, prm):
            try:
                info = self.getInfo()
                emit(event="reg", account=self.name, code=prm.code, active=info.regIsActive, expires=info.regExpiresSec, reason=prm.reason)
            except Exception as exc:
                emit(event="error", where="onRegState", error=repr(exc))

        def onIncomingCall(self, prm):
            try:
                call = Call(self, prm.callId)
                calls[prm.callId] = call
                emit(event="incoming", account=self.name, call=prm.callId, headers=headers_of(prm.rdata.wholeMsg))
                if answer:
                    cp = pj.CallOpParam()
                    cp.statusCode = answer
                    call.answer(cp)
            except Exception as exc:
                emit(event="error", where="onIncomingCall", error=repr(exc))

    emit(event="ready", port=int(port))
    running = True
    fd = sys.stdin.fileno()
    pending = b""
    lines: list[bytes] = []
    while running:
        if not lines:
            ep.libHandleEvents(5)
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            lines.extend(x for x in complete if x.strip())
            continue
        c = json.loads(lines.pop(0))
        try:
            cmd = c["cmd"]
            if cmd == "quit":
                running = False
            elif cmd == "account":
                acfg = pj.AccountConfig()
                acfg.idUri = f"sip:{c['user']}@{c.get('realm') if c.get('realm') not in (None, '*') else 'pbx'}"
                if c.get("registrar"):
                    acfg.regConfig.registrarUri = c["registrar"]
                    acfg.regConfig.timeoutSec = c.get("expires", 300)
                    acfg.regConfig.retryIntervalSec = 0
                else:
                    acfg.regConfig.registerOnAdd = False
                if c.get("proxy"):
                    acfg.sipConfig.proxies.append(c["proxy"])
                acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", c.get("realm", "*"), c["user"], 0, c["password"]))
                acfg.natConfig.contactRewriteUse = 0
                acfg.natConfig.viaRewriteUse = 0
                acc = Account(c["name"])
                acc.create(acfg)
                accounts[c["name"]] = acc
            elif cmd == "register":
                accounts[c["name"]].setRegistration(True)
            elif cmd == "unregister":
                accounts[c["name"]].setRegistration(False)
            elif cmd == "call":
                call = Call(accounts[c["name"]])
                cp = pj.CallOpParam(True)
                call.makeCall(c["uri"], cp)
                calls[call.getId()] = call
                emit(event="calling", call=call.getId())
            elif cmd == "hangup":
                cp = pj.CallOpParam()
                cp.statusCode = 603
                calls[c["call"]].hangup(cp)
        except Exception as exc:
            emit(event="error", where=c.get("cmd"), error=repr(exc))
    ep.hangupAllCalls()
    for _ in range(50):
        ep.libHandleEvents(10)
    calls.clear()
    for acc in accounts.values():
        acc.shutdown()
    accounts.clear()
    for _ in range(50):
        ep.libHandleEvents(10)
    ep.libDestroy()


if __name__ == "__main__":  # pragma: no cover
    _child(sys.argv[1], int(sys.argv[2]), sys.argv[3])
