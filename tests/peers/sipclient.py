"""A small blocking SIP peer for tests: sends hand-built requests over UDP or TCP, answers digest challenges.

It is deliberately simple (no transactions, no retransmission: loopback does
not lose datagrams) so that tests can send exactly the bytes they mean,
including broken ones.  `FakeEngine` is a UDP socket standing in for the
engine on loopback.
"""

from __future__ import annotations

import itertools
import secrets
import socket
import time

from appliance.sip import Request, Response, SipError, parse
from appliance.sip.message import parse_head
from appliance.sip.digest import Credentials, expected_response, ha1, parse_digest_params
from appliance.sip.message import StreamFramer

_counter = itertools.count(1)


class SipClient:
    def __init__(self, edge_port: int, *, transport: str = "udp", user: str = "201", password: str = "secret", realm: str = "pbx", user_agent: str = "test-phone/1.0", host: str = "127.0.0.1"):
        self.edge = ("127.0.0.1", edge_port)
        self.transport = transport
        self.user, self.password, self.realm = user, password, realm
        self.user_agent = user_agent
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((host, 0))
        else:
            self.sock = socket.create_connection(self.edge, timeout=2)
            self.framer = StreamFramer()
            self.pending: list[bytes] = []
        self.sock.settimeout(2)
        self.addr = self.sock.getsockname()
        self.call_id = f"{secrets.token_hex(6)}@test"
        self.cseq = 0
        self.tag = secrets.token_hex(4)

    def close(self) -> None:
        self.sock.close()

    # -- raw I/O --------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, self.edge)
        else:
            self.sock.sendall(data)

    def recv_raw(self, timeout: float = 2.0) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            if self.transport == "udp":
                return self.sock.recvfrom(70000)[0]
            deadline = time.monotonic() + timeout
            while not self.pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                data = self.sock.recv(70000)
                if not data:
                    return None
                msgs, _ = self.framer.feed(data)
                self.pending.extend(msgs)
            return self.pending.pop(0)
        except (socket.timeout, TimeoutError):
            return None

    def recv(self, timeout: float = 2.0) -> Request | Response | None:
        data = self.recv_raw(timeout)
        if data is None:
            return None
        try:
            return parse(data)
        except SipError:
            # An answer to a broken request echoes its broken headers; the status line is what counts.
            return parse_head(data)

    # -- requests -------------------------------------------------------------

    def request(self, method: str, uri: str, *, to: str | None = None, headers: list[tuple[str, str]] = (), body: bytes = b"", cseq: int | None = None, call_id: str | None = None, branch: str | None = None) -> bytes:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        host, port = self.addr[0], self.addr[1]
        branch = branch or f"z9hG4bK{secrets.token_hex(6)}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport.upper()} {host}:{port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{self.realm}>;tag={self.tag}",
            f"To: {to or f'<sip:{self.user}@{self.realm}>'}",
            f"Call-ID: {call_id or self.call_id}",
            f"CSeq: {cseq} {method}",
            f"User-Agent: {self.user_agent}",
        ]
        lines += [f"{n}: {v}" for n, v in headers]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def authorization(self, challenge_value: str, method: str, uri: str, *, password: str | None = None, username: str | None = None, digest_uri: str | None = None) -> str:
        params = parse_digest_params(challenge_value)
        algorithm = params.get("algorithm", "MD5")
        cnonce = secrets.token_hex(4)
        cred = Credentials(username or self.user, params["realm"], params["nonce"], digest_uri or uri, "", algorithm, "auth", "00000001", cnonce)
        response = expected_response(cred, method, ha1(cred.username, cred.realm, password or self.password, algorithm))
        return (
            f'Digest username="{cred.username}", realm="{cred.realm}", nonce="{cred.nonce}", '
            f'uri="{cred.uri}", response="{response}", algorithm={algorithm}, cnonce="{cnonce}", qop=auth, nc=00000001'
        )

    def contact(self) -> str:
        transport = ";transport=tcp" if self.transport == "tcp" else ""
        return f"<sip:{self.user}@{self.addr[0]}:{self.addr[1]}{transport}>"

    def register(self, *, expires: int | None = 3600, contact: str | None = None, password: str | None = None, username: str | None = None, algorithm: str | None = None, extra: list[tuple[str, str]] = ()) -> Response | None:
        """REGISTER, answer the 401, return the final response."""
        headers = [("Contact", contact or self.contact()), *extra]
        if expires is not None:
            headers.append(("Expires", str(expires)))
        self.send_raw(self.request("REGISTER", f"sip:{self.realm}", headers=headers))
        res = self.recv()
        if res is None or res.status != 401:
            return res
        challenges = res.headers.get_all("www-authenticate")
        chosen = next((c for c in challenges if algorithm is None or f"algorithm={algorithm}" in c), None)
        auth = self.authorization(chosen, "REGISTER", f"sip:{self.realm}", password=password, username=username)
        self.send_raw(self.request("REGISTER", f"sip:{self.realm}", headers=[*headers, ("Authorization", auth)]))
        return self.recv()


class FakeEngine:
    """A UDP socket on loopback in place of the engine."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2)
        self.addr = self.sock.getsockname()

    def recv(self, timeout: float = 2.0) -> tuple[Request | Response, tuple] | tuple[None, None]:
        self.sock.settimeout(timeout)
        try:
            data, addr = self.sock.recvfrom(70000)
        except (socket.timeout, TimeoutError):
            return None, None
        return parse(data), addr

    def send(self, data: bytes, edge_port: int) -> None:
        self.sock.sendto(data, ("127.0.0.1", edge_port))

    def close(self) -> None:
        self.sock.close()
