"""The control socket: how other processes read live state and send commands.

A Unix domain socket in the data directory speaking JSON lines.  A client
sends one object per line, `{"id": 1, "cmd": "status", "args": {}}`, and gets
one object back per request, `{"id": 1, "ok": true, "result": ...}` or
`{"id": 1, "ok": false, "error": "..."}`.  The command `subscribe` turns the
connection into a stream: after its reply, every event the appliance emits
arrives as `{"event": {...}}`; with `{"kinds": ["LiveCallChanged", ...]}` only
events of those kinds (a monitor page needs its own few of the many the engine
emits, and each event sent is encoded and written on the appliance's loop).

The appliance's parts register their commands (`ControlServer.command`);
the panel and `pbx status` are clients (`ControlClient`).  Nothing outside
the appliance process touches pjsua2 or polls tables for commands.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

log = logging.getLogger("appliance.control")

SOCKET_NAME = "control.sock"
MAX_LINE = 1 << 20

Handler = Callable[[dict], Any | Awaitable[Any]]


class ControlError(RuntimeError):
    """A command the appliance refused; the message says why."""


def socket_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / SOCKET_NAME


class _Subscriber:
    """One subscribed connection: the kinds it wants (None: all) and the lines not yet written."""

    __slots__ = ("writer", "kinds", "pending")

    def __init__(self, writer: asyncio.StreamWriter, kinds: frozenset[str] | None):
        self.writer = writer
        self.kinds = kinds
        self.pending: list[bytes] = []


class ControlServer:
    # Bytes a subscriber may leave unread before it is cut off: it then knows it missed events
    # (its stream ends) and subscribes again, instead of some being dropped without a word.
    MAX_UNREAD = 4 << 20

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._commands: dict[str, Handler] = {}
        self._subscribers: dict[asyncio.StreamWriter, _Subscriber] = {}
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_due = False
        self.command("ping", lambda args: "pong")
        self.command("commands", lambda args: sorted(self._commands))

    def command(self, name: str, handler: Handler) -> None:
        self._commands[name] = handler

    async def start(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_LINE)
        os.chmod(self.path, 0o660)

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            self._flush()
            for writer in list(self._subscribers):
                writer.close()
            self._subscribers.clear()
            await self._server.wait_closed()
            self._server = None
        if self.path.exists():
            self.path.unlink()

    def publish(self, event: dict) -> None:
        """Send an event to every subscriber that wants its kind (call on the server's loop).

        The event is encoded once, whoever wants it, and what is published
        during one pass of the loop (a burst of a call's events) goes to each
        subscriber in one write, at the end of the pass."""
        kind = event.get("kind")
        line = None
        for sub in self._subscribers.values():
            if sub.kinds is None or kind in sub.kinds:
                if line is None:
                    line = self._line({"event": event})
                sub.pending.append(line)
        if line is not None and not self._flush_due and self._loop is not None:
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        for writer, sub in list(self._subscribers.items()):
            if not sub.pending:
                continue
            data, sub.pending = b"".join(sub.pending), []
            if writer.is_closing():
                self._subscribers.pop(writer, None)
                continue
            writer.write(data)
            if writer.transport.get_write_buffer_size() > self.MAX_UNREAD:
                log.warning("a control subscriber left %d bytes unread: cut off", self.MAX_UNREAD)
                self._subscribers.pop(writer, None)
                writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self._send(writer, {"ok": False, "error": "request line too long"})
                    return
                if not line:
                    return
                reply, subscribe = await self._handle(line)
                if subscribe is not False:
                    await self._stream(reader, writer, reply, subscribe)
                    return
                await self._send(writer, reply)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: dict,
                      kinds: frozenset[str] | None) -> None:
        """The subscription's reply, then its events (written by `publish`) until either side closes."""
        # Registered and answered in one step: every event published after the reply follows it.
        self._subscribers[writer] = _Subscriber(writer, kinds)
        writer.write(self._line(reply))
        try:
            while await reader.read(4096):
                pass  # a subscriber has nothing more to say; its end closes the stream
        finally:
            self._subscribers.pop(writer, None)

    async def _handle(self, line: bytes) -> tuple[dict, Any]:
        """The reply, and False, or for a subscription the kinds it wants (None: every event)."""
        try:
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                raise ValueError("a request is an object with a 'cmd' string")
        except ValueError as e:
            return {"ok": False, "error": f"bad request: {e}"}, False
        rid, cmd, args = req.get("id"), req["cmd"], req.get("args") or {}
        if cmd == "subscribe":
            kinds = args.get("kinds") if isinstance(args, dict) else None
            if kinds is not None and (not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)):
                return {"id": rid, "ok": False, "error": "kinds is a list of event kinds"}, False
            return {"id": rid, "ok": True, "result": "subscribed"}, None if kinds is None else frozenset(kinds)
        handler = self._commands.get(cmd)
        if handler is None:
            return {"id": rid, "ok": False, "error": f"unknown command {cmd!r}"}, False
        try:
            result = handler(args)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
            return {"id": rid, "ok": True, "result": result}, False
        except ControlError as e:
            return {"id": rid, "ok": False, "error": str(e)}, False
        except Exception as e:  # noqa: BLE001 - the I/O edge answers and logs
            log.exception("control command %s failed", cmd)
            return {"id": rid, "ok": False, "error": f"{type(e).__name__}: {e}"}, False

    @staticmethod
    def _line(obj: dict) -> bytes:
        return json.dumps(obj, ensure_ascii=False, default=str).encode() + b"\n"

    async def _send(self, writer: asyncio.StreamWriter, obj: dict) -> None:
        writer.write(self._line(obj))
        await writer.drain()


class ControlClient:
    """A blocking client, for the panel and the command line."""

    def __init__(self, path: str | Path, timeout: float = 5.0):
        self.path = Path(path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file: Any = None
        self._next_id = 0

    def connect(self) -> "ControlClient":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError as e:
            sock.close()
            raise ControlError(f"the appliance is not running (no control socket at {self.path}: {e.strerror})") from None
        self._sock, self._file = sock, sock.makefile("rwb")
        return self

    def close(self) -> None:
        if self._sock:
            self._file.close()
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "ControlClient":
        return self.connect() if self._sock is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, cmd: str, **args: Any) -> Any:
        if self._sock is None:
            self.connect()
        self._next_id += 1
        self._file.write(json.dumps({"id": self._next_id, "cmd": cmd, "args": args}).encode() + b"\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise ControlError("the appliance closed the control connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "command failed"))
        return reply.get("result")

    def events(self):
        """Subscribe and yield events until the connection closes."""
        yield from self.subscribe()

    def subscribe(self, kinds: list[str] | None = None) -> Iterator[dict]:
        """Subscribe at once (no event after this call is missed), then the events as they come
        (of `kinds` only, if given)."""
        if kinds is None:
            self.request("subscribe")
        else:
            self.request("subscribe", kinds=list(kinds))
        self._sock.settimeout(None)
        return self._stream()

    def _stream(self) -> Iterator[dict]:
        for line in self._file:
            msg = json.loads(line)
            if "event" in msg:
                yield msg["event"]

    def shutdown(self) -> None:
        """End a stream another thread is reading (its loop over the events stops)."""
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
