"""The engine and its B2BUA alone in a process, driven by JSON lines.

    python -m appliance.engine.runner --data DIR --sip-port 5080 --trunk-port 5070

Used by the integration tests and `pbx bench calls` (pjsua2 allows one
Endpoint per process, so the engine under test runs in its own).  Every
engine event is printed on stdout as one JSON object; commands come on stdin:

    {"cmd": "reload"}                               read extensions, trunks, routing again
    {"cmd": "router", "factory": "module:function"} route with function(store) -> Router
    {"cmd": "stats"}                                live calls, legs, post-dial delays, loop turns (p99, longest)
    {"cmd": "stats", "media": true}                 also the RTP the answered legs received, by role
    {"cmd": "flush"}                                wait until records are written
    {"cmd": "originate", "ext": "101", "number": "0501234567", "whisper": false}
                                                    click-to-call: {"kind": "originated", "cmd", "call_id"} or
                                                    {"kind": "refused", "error"} (callback.py)
    {"cmd": "supervise", "call_id": "...", "ext": "103", "mode": "listen"}
                                                    ring a supervisor into a call: {"kind": "supervising", "cmd"}
                                                    or {"kind": "refused", "error"} (supervise.py)
    {"cmd": "move", "call_id": "...", "to": "group:sales", "by": "test"}
    {"cmd": "place", "call_id": "...", "position": 1}
    {"cmd": "vip", "call_id": "..."}                a queued caller moved (moves.py): {"kind": "moved", "cmd",
                                                    "answer"} or {"kind": "refused", "cmd", "error"}
    {"cmd": "take", "call_id": "...", "ext": "102"} ring ext for a waiting or ringing call (take.py), answered
                                                    as a move is
    {"cmd": "monitor", "on": true}                  with --monitor: feed the live monitor (or stop feeding it)

With --monitor the live monitor (appliance.monitor.LiveCalls) and a control
socket in DATA run beside the engine as in `pbx run` (`MonitorLoop`), fed once
switched on; "ready" names the socket.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from .b2bua import B2BUA
from .core import COLLECTIONS, EngineConfig, EngineThread

_out = threading.Lock()


def say(obj: dict) -> None:
    with _out:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()


def load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.engine.runner")
    ap.add_argument("--data", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--trunk-host", default="127.0.0.1")
    ap.add_argument("--trunk-port", type=int, default=0)
    ap.add_argument("--edge", default="", help="HOST:PORT of the edge, the proxy towards phones")
    ap.add_argument("--router", default="", help="module:function(store) returning a Router")
    ap.add_argument("--allow-unknown", action="store_true")
    ap.add_argument("--link-key", default=os.environ.get("PBX_LINK_KEY", ""),
                    help="the edge's secret (X-PBX-Link) that makes X-PBX-Extension count; default $PBX_LINK_KEY")
    ap.add_argument("--log-level", default="WARNING")
    ap.add_argument("--pj-log-level", type=int, default=2, help="pjsua's log level on stderr (1 errors .. 5 trace)")
    ap.add_argument("--quiet", action="store_true", help="do not print events")
    ap.add_argument("--monitor", action="store_true",
                    help="run the live monitor and a control socket beside the engine (fed after {\"cmd\": \"monitor\"})")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # `kill -USR1 PID` prints every thread's Python stack on stderr (a stalled loop, a hang).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args.pj_log_level > 2:
        logging.getLogger("appliance.engine.pjsua").setLevel(logging.DEBUG)

    emit = (lambda e: None) if args.quiet else say
    watch = None
    if args.monitor:
        from appliance.monitor import MonitorLoop

        watch = MonitorLoop(args.data)
        watch.start()
        printed = emit

        def emit(e: dict) -> None:
            printed(e)
            watch.feed(e)
    engine = EngineThread(EngineConfig(sip_host=args.host, sip_port=args.sip_port,
                                       trunk_host=args.trunk_host, trunk_port=args.trunk_port,
                                       log_level=args.pj_log_level),
                          on_event=emit)
    edge = None
    if args.edge:
        host, _, port = args.edge.rpartition(":")
        edge = (host, int(port))
    b2bua = B2BUA(engine, args.data, router_factory=load(args.router) if args.router else None, edge=edge,
                  allow_unknown=args.allow_unknown, emit=emit, link_key=args.link_key)
    if watch is not None:
        watch.attach(engine)
    engine.start()
    engine.call(b2bua.start)

    def media() -> dict:
        """Engine thread: RTP as the answered legs received it, "a" from callers, "b" from the phones."""
        from .benchpeer import rtp_figures, stream_stat
        from .session import LegState

        answered = [leg for leg in map(engine.registry.get, engine.registry.keys())
                    if getattr(leg, "state", None) == LegState.ANSWERED]  # the registry holds players too
        out = {}
        for role in ("a", "b"):
            stats = [stream_stat(leg) for leg in answered if leg.role == role]
            out[role] = rtp_figures([st for st in stats if st is not None])
        return out

    def stats(with_media: bool = False) -> dict:
        """Engine thread: what is alive, and the figures since the last stats."""
        out = {"media": media()} if with_media else {}
        out |= {"sessions": len(b2bua.sessions), "live": len(engine.registry),
                "waiting": engine.registry.waiting(), "leaked": engine.registry.leaked(),
                "timers": len(b2bua.timers), "post_dial_ms": list(b2bua.stats["post_dial_ms"]),
                "turns": engine.turns.n, "turn_p99_ms": round(engine.turns.percentile(99) * 1000, 2),
                "longest_turn_ms": round(engine.turns.longest * 1000, 2),
                "longest_turn_cpu_ms": round(engine.turns.longest_cpu * 1000, 2), "slow_turns": engine.turns.slow,
                **COLLECTIONS.figures()}
        b2bua.stats["post_dial_ms"] = []
        engine.turns.reset()
        COLLECTIONS.reset()
        return out

    say({"kind": "ready", "pid": os.getpid(), "pjsua2": engine.call(lambda: engine.ep.libVersion().full),
         "monitor": str(watch.path) if watch else None})
    try:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            cmd = json.loads(line)
            name = cmd.get("cmd")
            if name == "quit":
                break
            if name == "reload":
                engine.call(b2bua.reload)
            elif name == "router":
                factory = load(cmd["factory"])

                def swap() -> None:
                    b2bua.router_factory = factory
                    b2bua.reload()
                engine.call(swap)
            elif name == "stats":
                say({"kind": "stats", **engine.call(stats, bool(cmd.get("media")))})
                continue
            elif name == "flush":
                b2bua.recorder.flush()
            elif name == "originate":
                from .callback import Refused
                try:
                    sid = engine.call(b2bua.callbacks.originate, cmd["ext"], cmd["number"], cmd.get("whisper", False))
                    say({"kind": "originated", "cmd": name, "call_id": sid})
                except Refused as e:
                    say({"kind": "refused", "cmd": name, "error": str(e)})
                continue
            elif name == "supervise":
                from .supervise import SuperviseRefused
                try:
                    engine.call(b2bua.supervisors.start, cmd["call_id"], cmd["ext"], cmd.get("mode", "listen"))
                    say({"kind": "supervising", "cmd": name})
                except SuperviseRefused as e:
                    say({"kind": "refused", "cmd": name, "error": str(e)})
                continue
            elif name in ("move", "place", "vip", "take"):
                from . import moves, take
                args_of = {"move": ("to", "by"), "place": ("position", "by"), "vip": ("by",), "take": ("ext",)}[name]
                try:
                    answer = engine.call(getattr(take if name == "take" else moves, name), b2bua, cmd["call_id"],
                                         *(cmd[k] for k in args_of if k in cmd))
                    say({"kind": "moved", "cmd": name, "answer": answer})
                except ValueError as e:
                    say({"kind": "refused", "cmd": name, "error": str(e)})
                continue
            elif name == "monitor" and watch is not None:
                # On the engine thread: every event it emitted before is fed (or not) as before.
                engine.call(setattr, watch, "feeding", bool(cmd.get("on")))
            say({"kind": "done", "cmd": name})
    finally:
        engine.stop(5.0)
        if watch is not None:
            watch.stop()
    say({"kind": "stopped"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
