"""`pbx run` as a real process: comes up, answers SIP OPTIONS, serves the panel, stops on SIGTERM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
import uuid

import pytest

from tests.system.running import Running


def options_request(port: int) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex[:12]
    local = 40000 + os.getpid() % 20000
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@pytest.mark.sip
def test_run_comes_up_answers_options_serves_the_panel_and_stops_on_sigterm(data_dir):
    app = Running(data_dir)
    try:
        text = "\n".join(app.banner)
        for ext in ("101", "102", "103"):
            assert f"extension {ext}: user {ext}, password " in text
        assert "panel password for the first login: " in text

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.bind(("127.0.0.1", 0))
            s.sendto(options_request(app.sip), ("127.0.0.1", app.sip))
            reply, _ = s.recvfrom(65535)
        assert reply.startswith(b"SIP/2.0 200 ")

        status = subprocess.run([sys.executable, "-m", "appliance", "status", "--data", str(data_dir), "--json"],
                                capture_output=True, text=True, timeout=10)
        assert status.returncode == 0, status.stderr
        assert '"running": true' in status.stdout

        with urllib.request.urlopen(f"http://127.0.0.1:{app.web}/auth/login", timeout=5) as resp:
            assert resp.status == 200 and b'id="password"' in resp.read()
    finally:
        app.stop()            # SIGTERM; Running.stop fails the test if the process is still up after 10 s
    assert app.proc.returncode == 0
    assert not (data_dir / "control.sock").exists()


@pytest.mark.sip
def test_second_run_keeps_the_extensions_and_shows_no_passwords(data_dir):
    first = Running(data_dir)
    first.stop()
    second = Running(data_dir)
    try:
        text = "\n".join(second.banner)
        assert "password" not in text
    finally:
        second.stop()
    listing = subprocess.run([sys.executable, "-m", "appliance", "ext", "list", "--data", str(data_dir)],
                             capture_output=True, text=True, timeout=10)
    assert [line.split()[0] for line in listing.stdout.splitlines()] == ["101", "102", "103"]


def test_status_without_a_running_appliance_says_so(data_dir):
    res = subprocess.run([sys.executable, "-m", "appliance", "status", "--data", str(data_dir)],
                         capture_output=True, text=True, timeout=10)
    assert res.returncode == 1
    assert "not running" in res.stderr


@pytest.mark.sip
def test_changes_from_the_command_line_reach_the_running_appliance(data_dir):
    app = Running(data_dir)
    try:
        res = subprocess.run([sys.executable, "-m", "appliance", "ext", "add", "104", "--name", "Warehouse",
                              "--data", str(data_dir)], capture_output=True, text=True, timeout=20)
        assert res.returncode == 0, res.stderr
        assert "the running appliance uses it now (4 extensions, 0 trunks)" in res.stdout
    finally:
        app.stop()
