"""Mutated SIP against every listening port of `pbx run`: nothing may abort it or raise in it.

The appliance runs as its own process with a desk phone registered and an IP
trunk whose address is 127.0.0.1, so that INVITEs to the trunk port from there
are routed (to a hunt group that rings the phone, or to an announcement).
Mutated copies of valid messages of every method (`tests/system/fuzz.py`) go
to the edge over UDP and TCP, to the trunk port and to the engine's own port,
from several loopback addresses.  Every 100 messages the edge (UDP and TCP),
the engine and the trunk transport must still answer OPTIONS with 200, and the
process's output must hold no traceback and no assertion.  At the end the
appliance must stop on SIGTERM with status 0.

A short run is part of the suite; a long one:
`pytest tests/system/test_fuzz.py --fuzz-messages 100000 [--fuzz-seed N]`.
"""

from __future__ import annotations

import re
import socket
import subprocess
import textwrap
import time
import uuid
from collections import Counter, deque

import pytest

from appliance.configfile import import_config
from appliance.store import Store
from tests.conftest import free_port
from tests.peers.sipclient import SipClient
from tests.system.fuzz import Dest, Shot, shots
from tests.system.running import Running

pytestmark = pytest.mark.sip

PROBE_EVERY = 100
KEPT = 2 * PROBE_EVERY  # a traceback may be printed just after the probe that follows its message
PHONE_PASSWORD = "fuzz-101-pass"
# What an abort, a failed C assertion or an exception leaves in the output.
TROUBLE = re.compile(r"Traceback|Assertion|\bassert|double free|corrupted|Segmentation fault|core dumped"
                     r"|free\(\)|Aborted|Fatal Python error")
# A flood guard that never silences the fuzzer: it tests the parser and the call logic, not the limits.
GENEROUS_GUARD = {"edge_flood_requests": 1_000_000, "edge_auth_max_failures": 1_000_000,
                  "edge_tcp_per_source": 10_000}
EDGE_SOURCES = tuple(f"127.0.0.{i}" for i in range(2, 21))
STRANGERS = ("127.0.0.21", "127.0.0.22")


def pytest_generate_tests(metafunc):
    # The count comes from the command line; the time limit grows with it (pytest-timeout reads
    # markers before fixtures run, so it is set here, at collection).
    if "messages" in metafunc.fixturenames:
        n = metafunc.config.getoption("--fuzz-messages")
        metafunc.parametrize("messages", [pytest.param(n, marks=pytest.mark.timeout(120 + n // 20), id=f"{n}")])


def office_config(provider_port: int) -> str:
    return textwrap.dedent(f"""\
        version: 1
        timezone: Europe/Kyiv
        extensions:
          - {{number: 101, name: Desk 101, password: {PHONE_PASSWORD}}}
          - {{number: 102, name: Desk 102, password: fuzz-102-pass}}
        trunks:
          - name: provider
            kind: ip
            host: 127.0.0.1
            port: {provider_port}
            addresses: [127.0.0.1]
            numbers: ["0441234567", "0441234568"]
        routing:
          groups:
            sales: {{name: Sales, strategy: ringall, members: [101, 102], ring_time: 3, on_fail: announcement:closed}}
          announcements:
            closed: {{name: Closed, prompt: closed, then: hangup}}
          routes:
            - {{name: Shop, numbers: ["0441234567"], to: group:sales}}
            - {{name: Line two, numbers: ["0441234568"], to: announcement:closed}}
          unmatched: hangup
        """)


def dests(app: Running) -> list[Dest]:
    phone_numbers = ("101", "102", "103", "0441234567", "0671234567", "00441234567890", "*8", "**101")
    trunk_numbers = ("0441234567", "0441234568", "0449999999")
    return [
        Dest("edge-udp", app.sip, "udp", phone_numbers, EDGE_SOURCES, weight=3),
        Dest("edge-tcp", app.sip, "tcp", phone_numbers, EDGE_SOURCES, weight=2),
        # Mostly from the trunk's own address, whose INVITEs are routed; sometimes from a stranger.
        Dest("trunk", app.trunk, "udp", trunk_numbers, ("127.0.0.1",) * 3 + STRANGERS, weight=3),
        Dest("engine", app.engine, "udp", phone_numbers, ("127.0.0.1",) + STRANGERS, weight=2),
    ]


class Wire:
    """The fuzzer's sockets: one UDP socket per source address, a TCP connection per scenario."""

    def __init__(self):
        self.udp: dict[str, socket.socket] = {}
        self.tcp: socket.socket | None = None
        self.tcp_take: int | None = None
        self.answers: Counter = Counter()  # (port name, status code or "request")
        self.errors: Counter = Counter()

    def send(self, shot: Shot) -> None:
        if shot.dest.transport == "udp":
            self._send_udp(shot)
        else:
            self._send_tcp(shot)

    def _send_udp(self, shot: Shot) -> None:
        sock = self.udp.get(shot.source)
        if sock is None:
            sock = self.udp[shot.source] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((shot.source, 0))
            sock.setblocking(False)
        try:
            sock.sendto(shot.data, (shot.dest.host, shot.dest.port))
        except OSError as e:
            self.errors[f"udp {e.__class__.__name__}"] += 1

    def _send_tcp(self, shot: Shot) -> None:
        # A scenario's messages share a connection, as a phone's would; a closed one is opened again.
        if self.tcp is not None and (self.tcp_take != shot.take or self._closed(self.tcp)):
            self._close_tcp()
        try:
            if self.tcp is None:
                self.tcp = socket.create_connection((shot.dest.host, shot.dest.port), timeout=2,
                                                    source_address=(shot.source, 0))
                self.tcp_take = shot.take
            self.tcp.sendall(shot.data)
        except OSError as e:  # the edge closes a connection whose stream it cannot frame
            self.errors[f"tcp {e.__class__.__name__}"] += 1
            self._close_tcp()

    def _closed(self, sock: socket.socket) -> bool:
        """Whether the edge closed the connection (what it answered is read and counted on the way)."""
        sock.setblocking(False)
        try:
            while data := sock.recv(65536):
                self.answers[("edge-tcp", status(data))] += 1
            return True
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            sock.settimeout(2)

    def _close_tcp(self) -> None:
        if self.tcp is not None:
            self.tcp.close()
        self.tcp, self.tcp_take = None, None

    def drain(self, names: dict[int, str]) -> None:
        """Read and count what came back (the answers are not checked; reading keeps the buffers empty)."""
        for sock in self.udp.values():
            while True:
                try:
                    data, addr = sock.recvfrom(70000)
                except BlockingIOError:
                    break
                except OSError:
                    continue  # an ICMP error reported on this socket
                self.answers[(names.get(addr[1], str(addr[1])), status(data))] += 1

    def close(self) -> None:
        self._close_tcp()
        for sock in self.udp.values():
            sock.close()


def status(data: bytes) -> str:
    """The status code of a response, or "request"."""
    return data[8:11].decode("latin-1") if data.startswith(b"SIP/2.0 ") else "request"


def options(port: int, source: tuple[str, int], call_id: str, transport: str = "UDP") -> bytes:
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {source[0]}:{source[1]};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def udp_probe(port: int) -> bytes | None:
    """The status line of the answer to an OPTIONS (sent up to three times: a busy port may drop one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        call_id = uuid.uuid4().hex
        for _ in range(3):
            s.sendto(options(port, s.getsockname(), call_id), ("127.0.0.1", port))
            deadline = time.monotonic() + 2
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                try:
                    data = s.recv(70000)
                except (TimeoutError, socket.timeout):
                    break
                if call_id.encode() in data and data.startswith(b"SIP/2.0 "):
                    return data.split(b"\r\n", 1)[0]
    return None


def tcp_probe(port: int) -> bytes | None:
    for _ in range(2):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                call_id = uuid.uuid4().hex
                s.sendall(options(port, s.getsockname(), call_id, "TCP"))
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if data.startswith(b"SIP/2.0 "):
                    return data.split(b"\r\n", 1)[0]
        except OSError:
            continue
    return None


def register_phone(app: Running, data) -> SipClient:
    """Desk phone 101 at a socket that never answers: hunt group calls ring it and time out."""
    phone = SipClient(app.sip, user="101", password=PHONE_PASSWORD)
    for _ in range(3):  # as a phone would, sent again when nothing came back
        if (res := phone.register()) is not None:
            break
    assert res is not None and res.status == 200, res
    deadline = time.monotonic() + 5
    with Store(data) as store:  # the engine reads bindings from the store
        while not list(store.bindings()) and time.monotonic() < deadline:
            time.sleep(0.1)
    phone.sock.setblocking(False)
    return phone


def prepare(data, provider_port: int) -> None:
    with Store(data) as store:
        import_config(store, office_config(provider_port))
        for key, value in GENEROUS_GUARD.items():
            store.set_setting(key, value)


@pytest.fixture
def appliance(tmp_path):
    """The running appliance, its registered phone's socket and the provider's socket."""
    data = tmp_path / "data"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as provider:  # takes what the trunk sends
        provider.bind(("127.0.0.1", free_port()))
        provider.setblocking(False)
        prepare(data, provider.getsockname()[1])
        app = Running(data)
        try:
            phone = register_phone(app, data)
            try:
                yield app, phone, provider
            finally:
                phone.close()
        finally:
            if app.proc.poll() is None:  # a failed test leaves it running
                app.proc.kill()
                app.proc.wait(timeout=10)


class Trail:
    """The last messages sent, written to a file when something goes wrong."""

    def __init__(self, seed: int, path):
        self.seed, self.path = seed, path
        self.shots: deque[Shot] = deque(maxlen=KEPT)
        self.sent = 0

    def add(self, shot: Shot) -> None:
        self.shots.append(shot)
        self.sent += 1

    def fail(self, what: str) -> None:
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(f"seed {self.seed}, {self.sent} messages sent; {what}\n")
            for shot in self.shots:
                f.write(shot.describe() + "\n" + repr(shot.data) + "\n\n")
        pytest.fail(f"{what}\nseed {self.seed}, after {self.sent} messages; the last {len(self.shots)} are in {self.path}",
                    pytrace=False)


class Watch:
    """The appliance's output, read as it grows for lines that tell of an abort or an exception."""

    def __init__(self, app: Running):
        self.app, self.read = app, 0

    def trouble(self) -> list[str]:
        """The new such lines, each with the lines after it (a traceback's frames)."""
        lines = list(self.app.output)
        found = ["\n".join(lines[i:i + 25]) for i in range(self.read, len(lines)) if TROUBLE.search(lines[i])]
        self.read = len(lines)
        return found


def check_alive(app: Running, watch: Watch, trail: Trail) -> None:
    """The process runs, every port answers OPTIONS with 200, nothing went wrong in the output."""
    if app.proc.poll() is not None:
        trail.fail(f"the appliance exited with status {app.proc.returncode}:\n" + "\n".join(app.output[-30:]))
    probes = {"edge UDP": udp_probe(app.sip), "edge TCP": tcp_probe(app.sip), "engine": udp_probe(app.engine),
              "trunk": udp_probe(app.trunk)}
    dead = {name: line for name, line in probes.items() if line is None or not line.startswith(b"SIP/2.0 200")}
    if dead:
        trail.fail(f"no 200 to OPTIONS from {dead}; process {'alive' if app.proc.poll() is None else 'dead'}")
    if found := watch.trouble():
        trail.fail("trouble in the output:\n" + "\n----\n".join(found[:3]))


def test_mutated_messages_on_every_port_neither_abort_nor_raise(appliance, messages, request, tmp_path):
    app, phone, provider = appliance
    seed = request.config.getoption("--fuzz-seed")
    print(f"fuzz seed {seed}, {messages} messages")
    trail, wire, watch = Trail(seed, tmp_path / "fuzz-last-messages.txt"), Wire(), Watch(app)
    names = {app.sip: "edge-udp", app.trunk: "trunk", app.engine: "engine"}
    started = time.monotonic()
    check_alive(app, watch, trail)
    try:
        for shot in shots(seed, dests(app), messages):
            wire.send(shot)
            trail.add(shot)
            wire.drain(names)
            drain(phone.sock, provider)
            time.sleep(0.002)  # loopback drops datagrams when a receive buffer fills
            if trail.sent % PROBE_EVERY == 0:
                check_alive(app, watch, trail)
        check_alive(app, watch, trail)
    finally:
        wire.close()
    took = time.monotonic() - started
    print(f"sent {trail.sent} messages in {took:.1f} s; answers {sorted(wire.answers.items())}; errors {dict(wire.errors)}")
    check_stops(app, trail)
    if found := watch.trouble():
        trail.fail("trouble in the output while stopping:\n" + "\n----\n".join(found[:3]))


def check_stops(app: Running, trail: Trail) -> None:
    """SIGTERM stops it with status 0 (calls the fuzzer left behind included)."""
    try:
        took = app.stop()
    except subprocess.TimeoutExpired:
        app.proc.kill()
        app.proc.wait(timeout=10)
        trail.fail("the appliance did not stop within 10 s of SIGTERM; its last lines:\n" + "\n".join(app.output[-40:]))
    if app.proc.returncode != 0:
        trail.fail(f"the appliance stopped in {took:.1f} s with status {app.proc.returncode}:\n"
                   + "\n".join(app.output[-30:]))


def drain(*socks: socket.socket) -> None:
    """The phone's and the provider's sockets: read and drop (they never answer)."""
    for sock in socks:
        while True:
            try:
                sock.recv(70000)
            except BlockingIOError:
                break
            except OSError:
                continue
