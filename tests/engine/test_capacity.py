"""Our pjsua2 build holds many calls through one Endpoint (the PyPI wheel stops at 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

PEER = Path(__file__).with_name("capacity_peer.py")
CALLS = 25


@pytest.mark.sip
def test_one_endpoint_holds_25_simultaneous_calls():
    ans_port, call_port = free_port(), free_port()
    answerer = subprocess.Popen([sys.executable, str(PEER), "answer", str(ans_port)],
                                stdout=subprocess.PIPE, text=True)
    try:
        # pjsua prints a few banner lines at libCreate that cannot be silenced.
        for line in answerer.stdout:
            if line.strip() == "ready":
                break
        out = subprocess.run([sys.executable, str(PEER), "call", str(call_port), f"127.0.0.1:{ans_port}", str(CALLS)],
                             capture_output=True, text=True, timeout=60)
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        answerer.wait(timeout=30)
        confirmed = [int(line.split()[1]) for line in answerer.stdout.read().splitlines() if line.startswith("confirmed")]
    finally:
        answerer.kill()
    assert summary["errors"] == []
    assert summary["placed"] == CALLS
    assert summary["held"] == CALLS, summary
    assert max(confirmed) == CALLS
