"""`python -m appliance.analog.run --data DATA --line NAME --engine HOST:PORT`: one analog line's user agent.

`pbx run` starts one per `kind: analog` trunk (appliance/app.py) and stops it when it stops.  A process
of its own because pjsua2 allows one library per process, and so that a busy line never holds the
engine's interpreter (docs/analog.md).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from appliance.hw.pins import pin_factory
from appliance.store import Store

from .config import LineConfig
from .fxo import FxoLine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.analog.run")
    ap.add_argument("--data", required=True)
    ap.add_argument("--line", required=True, help="the analog trunk's name")
    ap.add_argument("--engine", default="127.0.0.1:5070", help="HOST:PORT of the engine's trunk transport")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with Store(args.data) as store:
        trunk = next((t for t in store.trunks() if t["name"] == args.line and t["kind"] == "analog"), None)
        lines = (store.get_setting("hw") or {}).get("lines") or {}
    if trunk is None:
        print(f"no analog trunk {args.line!r} in the configuration", file=sys.stderr)
        return 2
    host, _, port = args.engine.rpartition(":")
    line = FxoLine(LineConfig.from_setting(trunk, lines), (host, int(port)), pin_factory=pin_factory(),
                   data_dir=args.data)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    line.start()
    done.wait()
    line.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
