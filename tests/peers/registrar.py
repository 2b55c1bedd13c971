"""A provider's registrar for tests: answers REGISTER with a digest challenge, then 200.

Pure Python on a UDP socket (no pjsua2, so it can run in the test process).
It keeps the Contact the PBX registered, so the provider's user agent can
send its INVITE where a real provider would.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import threading


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


class Registrar:
    def __init__(self, port: int, username: str, password: str, realm: str = "provider", fail_first: int = 0):
        self.username, self.password, self.realm = username, password, realm
        self.fail_first = fail_first
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.port = port
        self.contact: str | None = None
        self.registers = 0
        self.authorised = 0
        self.nonce = secrets.token_hex(8)
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                continue
            text = data.decode(errors="replace")
            if not text.startswith("REGISTER "):
                continue
            self.registers += 1
            self.sock.sendto(self._answer(text).encode(), addr)

    def _answer(self, req: str) -> str:
        head = req.split("\r\n\r\n", 1)[0]
        lines = head.split("\r\n")
        hdrs: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            hdrs.setdefault(name.strip().lower(), []).append(value.strip())
        copy = "".join(f"Via: {v}\r\n" for v in hdrs.get("via", []))
        for name in ("from", "call-id", "cseq"):
            copy += f"{name.title()}: {hdrs[name][0]}\r\n"
        to = hdrs["to"][0]
        if ";tag=" not in to:
            to += ";tag=" + secrets.token_hex(4)
        copy += f"To: {to}\r\n"
        auth = (hdrs.get("authorization") or [""])[0]
        if auth and self._valid(auth, lines[0].split()[1]) and self.fail_first <= 0:
            self.authorised += 1
            contact = hdrs.get("contact", [""])[0]
            m = re.search(r"<([^>]+)>", contact)
            self.contact = m.group(1) if m else contact
            exp = (hdrs.get("expires") or ["300"])[0]
            return (f"SIP/2.0 200 OK\r\n{copy}Contact: {contact};expires={exp}\r\n"
                    f"Content-Length: 0\r\n\r\n")
        if auth:
            self.fail_first -= 1
        return (f"SIP/2.0 401 Unauthorized\r\n{copy}"
                f'WWW-Authenticate: Digest realm="{self.realm}", nonce="{self.nonce}", algorithm=MD5\r\n'
                f"Content-Length: 0\r\n\r\n")

    def _valid(self, auth: str, uri: str) -> bool:
        p = dict(re.findall(r'(\w+)="?([^",]*)"?', auth))
        if p.get("username") != self.username:
            return False
        ha1 = _md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = _md5(f"REGISTER:{p.get('uri', uri)}")
        if "qop" in p:
            expect = _md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")
        else:
            expect = _md5(f"{ha1}:{p.get('nonce')}:{ha2}")
        return p.get("response") == expect
