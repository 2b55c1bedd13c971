"""Starting and stopping the analog user agents from `pbx run`: one process per `kind: analog` trunk (FXO)
and per `kind: analog` extension (FXS, its phone under `hw.phones`)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("appliance.analog")


def start_lines(data_dir: Path, store: Any, trunk_port: int,
                edge: tuple[str, int] = ("127.0.0.1", 5060)) -> list[subprocess.Popen]:
    procs = []
    for number in ((store.get_setting("hw") or {}).get("phones") or {}):
        if store.extension(number) is None:
            continue
        procs.append(subprocess.Popen([sys.executable, "-m", "appliance.analog.run", "--data", str(data_dir),
                                       "--phone", number, "--edge", f"{edge[0]}:{edge[1]}"]))
        log.info("analog phone %s: user agent started (pid %d)", number, procs[-1].pid)
    for t in store.trunks():
        if t["kind"] != "analog" or not t.get("enabled", 1):
            continue
        procs.append(subprocess.Popen([sys.executable, "-m", "appliance.analog.run", "--data", str(data_dir),
                                       "--line", t["name"], "--engine", f"127.0.0.1:{trunk_port}"]))
        log.info("analog line %s: user agent started (pid %d)", t["name"], procs[-1].pid)
    return procs


def stop_lines(procs: list[subprocess.Popen], timeout: float = 5.0) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(2)
