"""`pbx run` as a real process, for the system tests."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

from tests.conftest import free_port


class Running:
    """The appliance on free loopback ports; its output is read all along (a full pipe would stall it)."""

    def __init__(self, data_dir, ready_timeout: float = 30.0, tls: bool = False, web: bool = True):
        self.sip, self.web, self.engine, self.trunk = free_port(), free_port(socket.SOCK_STREAM), free_port(), free_port()
        # SIP over TLS only when asked for, on a port of its own: the default 5061 is one port for every test.
        self.tls = free_port(socket.SOCK_STREAM) if tls else 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", "--data", str(data_dir), "--bind", "127.0.0.1",
             "--sip-port", str(self.sip), "--web-port", str(self.web), "--engine-port", str(self.engine),
             "--trunk-port", str(self.trunk), "--tls-port", str(self.tls), *([] if web else ["--no-web"])],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # Logs can echo bytes from the network; a decoding error would end the reader and fill the pipe.
            errors="backslashreplace",
        )
        self.output: list[str] = []
        self._lines: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            # The line that is "ready" itself: a log line may contain the word ("already in use").
            self.banner = self.read_until("ready", ready_timeout, whole_line=True)
        except BaseException:
            self.proc.kill()  # never leave an appliance behind a failed start
            self.proc.wait(timeout=10)
            raise

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def read_until(self, word: str, timeout: float, whole_line: bool = False) -> list[str]:
        lines, deadline = [], time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            lines.append(line)
            if (line.strip() == word) if whole_line else (word in line):
                return lines
        raise AssertionError(f"no {word!r} within {timeout} s; output:\n" + "\n".join(lines))

    def stop(self) -> float:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        return time.monotonic() - t0


def desk_phones_and_provider(app: Running, data, passwords: dict[str, str], provider_port: int, procs: list):
    """pjsua2 desk phones registered through the appliance's edge, and a provider on `provider_port`.

    Each process is added to `procs` as it starts (the caller stops them);
    returns (phones by extension, provider) once the store holds the phones'
    bindings, which is what the engine rings."""
    from tests.conftest import free_port
    from tests.engine import harness
    from tests.system.test_office import wait_for_bindings

    phones = {}
    for ext, pw in passwords.items():
        phones[ext] = harness.Proc([sys.executable, str(harness.AGENT), "--port", str(free_port()), "--name", ext,
                                    "--register", f"127.0.0.1:{app.sip}", "--password", pw], ext)
        procs.append(phones[ext])
    provider = harness.agent(provider_port, "provider")
    provider.port = provider_port
    procs.append(provider)
    for p in phones.values():
        p.expect(timeout=15, ev="reg", code=200)
    wait_for_bindings(data, set(passwords))
    return phones, provider
