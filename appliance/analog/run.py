"""One analog line's or phone's user agent:

    python -m appliance.analog.run --data DATA --line NAME --engine HOST:PORT     a line (FXO), an analog trunk
    python -m appliance.analog.run --data DATA --phone NUMBER --edge HOST:PORT    a phone (FXS), an analog extension

`pbx run` starts one per `kind: analog` trunk and per `kind: analog` extension (appliance/app.py) and
stops it when it stops.  A process
of its own because pjsua2 allows one library per process, and so that a busy line never holds the
engine's interpreter (docs/analog.md).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from appliance.hw.pins import pin_factory
from appliance.store import Store

from .config import LineConfig
from .fxo import FxoLine

if TYPE_CHECKING:
    from .fxs import FxsPhone


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.analog.run")
    ap.add_argument("--data", required=True)
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--line", help="the analog trunk's name (FXO)")
    which.add_argument("--phone", help="the analog extension's number (FXS)")
    ap.add_argument("--engine", default="127.0.0.1:5070", help="HOST:PORT of the engine's trunk transport")
    ap.add_argument("--edge", default="127.0.0.1:5060", help="HOST:PORT of the edge, where a phone registers")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.phone:
        return _run(_phone(args))
    with Store(args.data) as store:
        trunk = next((t for t in store.trunks() if t["name"] == args.line and t["kind"] == "analog"), None)
        lines = (store.get_setting("hw") or {}).get("lines") or {}
    if trunk is None:
        print(f"no analog trunk {args.line!r} in the configuration", file=sys.stderr)
        return 2
    host, _, port = args.engine.rpartition(":")
    return _run(FxoLine(LineConfig.from_setting(trunk, lines), (host, int(port)), pin_factory=pin_factory(),
                        data_dir=args.data))


def _phone(args: argparse.Namespace) -> FxsPhone | None:
    from .config import PhoneConfig
    from .fxs import FxsPhone

    with Store(args.data) as store:
        phones = (store.get_setting("hw") or {}).get("phones") or {}
        known = store.extension(args.phone) is not None
    if not known or args.phone not in phones:
        print(f"no analog extension {args.phone!r} in the configuration", file=sys.stderr)
        return None

    def new_secret() -> str:
        # The phone's own secret: a fresh one set on the extension, known to this process only.
        with Store(args.data) as store:
            return store.set_password(args.phone)

    host, _, port = args.edge.rpartition(":")
    return FxsPhone(PhoneConfig.from_setting(args.phone, phones), (host, int(port)), new_secret,
                    pin_factory=pin_factory(), data_dir=args.data)


def _run(line: FxoLine | FxsPhone | None) -> int:
    if line is None:
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    line.start()
    done.wait()
    line.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
