"""Shared fixtures: free loopback ports, temporary data directories, headless Chromium; the fuzz test's options."""

from __future__ import annotations

import socket

import pytest


def pytest_addoption(parser):
    # The SIP fuzz test (tests/system/test_fuzz.py): a short run by default, a long one on request.
    parser.addoption("--fuzz-messages", type=int, default=2000, help="messages the SIP fuzz test sends")
    parser.addoption("--fuzz-seed", type=int, default=3261, help="seed of the SIP fuzz test's messages")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on loopback."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
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
