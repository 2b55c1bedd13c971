"""Driving the edge with sipp (the `sip-tester` package): a REGISTER scenario with digest auth.

Used by the edge benchmark and by the tests.  Each sipp call is one phone
registering: REGISTER, 401 with a challenge, REGISTER with credentials, 200.
Users and passwords come from an injection file, one user a line.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REGISTER_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="REGISTER with digest authentication">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:[field0]@[field2]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[field2]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
      Expires: 3600
      User-Agent: sipp-bench
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      Max-Forwards: 70
      From: <sip:[field0]@[field2]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[field2]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
      Expires: 3600
      User-Agent: sipp-bench
      [field1]
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


@dataclass
class SippRun:
    calls: int
    successful: int
    failed: int
    seconds: float
    returncode: int
    output: str


def sipp_path() -> str | None:
    return shutil.which("sipp")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_inputs(directory: Path, users: list[tuple[str, str]], realm: str = "pbx") -> tuple[Path, Path]:
    scenario = directory / "register.xml"
    scenario.write_text(REGISTER_SCENARIO)
    inf = directory / "users.csv"
    # sipp expands a keyword inside an injected field, not a field inside a keyword.
    inf.write_text("SEQUENTIAL\n" + "".join(f"{u};[authentication username={u} password={p}];{realm}\n" for u, p in users))
    return scenario, inf


def run_register(edge_port: int, directory: Path, users: list[tuple[str, str]], *, calls: int, rate: int = 1000, limit: int = 200, timeout: float = 120.0, realm: str = "pbx") -> SippRun:
    """Run `calls` registrations against the edge on loopback; returns the counts and wall time."""
    exe = sipp_path()
    if exe is None:
        raise RuntimeError("sipp not found: install the sip-tester package")
    scenario, inf = write_inputs(directory, users, realm)
    stat = directory / "stat.csv"
    cmd = [
        exe, f"127.0.0.1:{edge_port}", "-sf", str(scenario), "-inf", str(inf), "-m", str(calls),
        "-r", str(rate), "-l", str(limit), "-i", "127.0.0.1", "-p", str(free_udp_port()), "-t", "u1",
        "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_stat", "-stf", str(stat),
        "-fd", "3600", "-recv_timeout", "5000", "-nd", "-trace_err",
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=directory, capture_output=True, text=True, timeout=timeout + 30)
    seconds = time.monotonic() - started
    successful, failed = _read_stat(stat)
    return SippRun(calls, successful, failed, seconds, proc.returncode, proc.stdout[-2000:] + proc.stderr[-2000:])


def _read_stat(path: Path) -> tuple[int, int]:
    if not path.exists():
        return 0, 0
    lines = [l for l in path.read_text().splitlines() if l.strip()]
    if len(lines) < 2:
        return 0, 0
    head = lines[0].split(";")
    last = lines[-1].split(";")
    row = dict(zip(head, last))
    return int(row.get("SuccessfulCall(C)", 0) or 0), int(row.get("FailedCall(C)", 0) or 0)
