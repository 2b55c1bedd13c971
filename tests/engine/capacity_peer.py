"""A pjsua2 user agent for the capacity test, run as its own process.

    python capacity_peer.py answer PORT          answers every call, prints "confirmed N" as they come
    python capacity_peer.py call PORT TARGET N    places N calls to TARGET, holds them all, prints a JSON summary

One Endpoint per process (a pjsua2 rule); the library is polled from the
thread that created it.
"""

from __future__ import annotations

import json
import sys
import time

import pjsua2 as pj

from appliance.engine.benchpeer import endpoint  # the same plain 512-call user agent


class Call(pj.Call):
    def __init__(self, acc, call_id=pj.PJSUA_INVALID_ID, log=None):
        super().__init__(acc, call_id)
        self.state = "new"
        self.log = log

    def onCallState(self, prm):
        try:
            self.state = {pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
                          pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected"}.get(self.getInfo().state, self.state)
        except Exception as e:  # noqa: BLE001 - a callback must not raise into SWIG
            print(f"callback error {e}", file=sys.stderr, flush=True)


class Answerer(pj.Account):
    def __init__(self):
        super().__init__()
        self.calls = []

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId)
        self.calls.append(call)
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)


def answer(port: int) -> None:
    ep = endpoint(port)
    acc = Answerer()
    cfg = pj.AccountConfig()
    cfg.idUri = f"sip:answer@127.0.0.1:{port}"
    acc.create(cfg)
    print("ready", flush=True)
    last = -1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ep.libHandleEvents(5)
        n = sum(1 for c in acc.calls if c.state == "confirmed")
        if n != last:
            print(f"confirmed {n}", flush=True)
            last = n
        if acc.calls and all(c.state == "disconnected" for c in acc.calls):
            break
    acc.calls.clear()
    ep.libHandleEvents(50)
    acc.shutdown()
    ep.libDestroy()


def call(port: int, target: str, n: int) -> None:
    ep = endpoint(port)
    acc = pj.Account()
    cfg = pj.AccountConfig()
    cfg.idUri = f"sip:caller@127.0.0.1:{port}"
    acc.create(cfg)
    calls, errors = [], []
    for i in range(n):
        c = Call(acc)
        try:
            c.makeCall(f"sip:{i}@{target}", pj.CallOpParam(True))
            calls.append(c)
        except pj.Error as e:
            errors.append(f"call {i}: {e.info()}")
    deadline = time.monotonic() + 20
    peak = 0
    while time.monotonic() < deadline:
        ep.libHandleEvents(5)
        up = sum(1 for c in calls if c.state == "confirmed")
        peak = max(peak, up)
        if up == len(calls) or any(c.state == "disconnected" for c in calls):
            break
    # Hold them all a moment: every call must still be up together.
    hold_until = time.monotonic() + 1.0
    while time.monotonic() < hold_until:
        ep.libHandleEvents(5)
    held = sum(1 for c in calls if c.state == "confirmed")
    ep.hangupAllCalls()
    end = time.monotonic() + 5
    while time.monotonic() < end and any(c.state != "disconnected" for c in calls):
        ep.libHandleEvents(5)
    print(json.dumps({"placed": len(calls), "peak": peak, "held": held, "errors": errors}), flush=True)
    calls.clear()
    ep.libHandleEvents(50)
    acc.shutdown()
    ep.libDestroy()


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "answer":
        answer(int(sys.argv[2]))
    else:
        call(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
