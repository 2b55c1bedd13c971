"""Shared fixtures: free loopback ports, temporary data directories, headless Chromium; the fuzz test's options."""

from __future__ import annotations

import itertools
import os
import socket
from typing import Iterator

import pytest


def pytest_addoption(parser):
    # The SIP fuzz test (tests/system/test_fuzz.py): a short run by default, a long one on request.
    parser.addoption("--fuzz-messages", type=int, default=2000, help="messages the SIP fuzz test sends")
    parser.addoption("--fuzz-seed", type=int, default=3261, help="seed of the SIP fuzz test's messages")


# Ports the tests hand out: below the kernel's ephemeral range (32768 up), where nobody's bind(0)
# lands, and apart from the fixed RTP ranges (the engine's 10000-13999, the bench peers' 20000 and
# 30000 up, the test agents' 22000-29999).  Each xdist worker has its own part and takes its ports in
# turn, so a port one worker picked and has not bound yet is never another's pick.
PORTS = range(15000, 20000)


def _worker_ports() -> Iterator[int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    share = len(PORTS) // max(workers, 1)
    mine = PORTS[index * share:(index + 1) * share]
    return itertools.cycle(mine)


_ports = _worker_ports()


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on loopback (whichever `kind` the caller needs), this worker's next
    (see PORTS)."""
    for _ in range(len(PORTS)):
        port = next(_ports)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                t.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session's panel tests (tests/web/browser.py)."""
    from tests.web.browser import chromium

    driver = chromium()
    yield driver
    driver.quit()
