"""The engine thread: the one owner of pjsua2.

pjsua2 has rules that decide whether the process lives (see
shared PJSUA2-NOTES): the thread that called libCreate must poll; any pjsua2
call from another thread aborts the process; dropping a Call's last
reference hangs it up; freeing a disconnected Call late can hang up the
next call that reuses its id; a pj object alive after libDestroy aborts at
exit.  This module is where those rules are kept:

- `EngineThread` creates the library on its own thread, polls it about every
  5 ms, and between polls runs the commands other threads submit.  A command
  is a function of the engine; `submit()` returns a Future for its result.
- `Registry` holds every live pj object the engine creates.  An object is
  released on the loop turn after pjsua says it is done with it, never inside
  the callback that said so.
- Callbacks are wrapped (`guarded`): an exception is logged, never swallowed
  silently by SWIG and never left in `sys.last_traceback`.
- Shutdown hangs up everything, pumps until the registry is empty, drops all
  references, collects garbage, and only then destroys the library.
"""

from __future__ import annotations

import functools
import gc
import logging
import queue
import sys
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("appliance.engine")
pjlog = logging.getLogger("appliance.engine.pjsua")

POLL_MS = 5
CODEC_PRIORITIES = {"PCMU/8000": 254, "PCMA/8000": 253, "G722/16000": 252}


def guarded(fn: Callable) -> Callable:
    """Wrap a pjsua2 callback so an exception is logged and goes no further."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BaseException:  # noqa: BLE001 - SWIG would print and drop it
            log.exception("error in pjsua2 callback %s", fn.__qualname__)
            # A traceback kept in sys.last_* would keep pj objects alive past
            # libDestroy, which aborts the process at exit.
            sys.last_type = sys.last_value = sys.last_traceback = None
            return None

    return wrapper


@dataclass(frozen=True)
class EngineConfig:
    sip_host: str = "127.0.0.1"
    sip_port: int = 5080
    max_calls: int = 512
    clock_rate: int = 8000
    log_level: int = 3  # pjsua's level routed into Python logging (1 errors .. 5 trace)
    user_agent: str = "pbx-appliance"
    # Trunk traffic has a transport of its own (providers never see the
    # loopback address the edge talks to); 0 means no trunk transport.
    trunk_host: str = "0.0.0.0"
    trunk_port: int = 0
    trunk_public: str = ""  # address written in Via/Contact on the trunk side ("" = trunk_host)


class Registry:
    """Live pj objects by key, released a loop turn after pjsua is done with them."""

    def __init__(self) -> None:
        self._live: dict[Any, Any] = {}
        self._done: list[Any] = []
        self._released: list[weakref.ref] = []

    def keep(self, key: Any, obj: Any) -> None:
        self._live[key] = obj

    def get(self, key: Any) -> Any:
        return self._live.get(key)

    def done(self, key: Any) -> None:
        """pjsua is finished with this object; let it go on the next turn."""
        obj = self._live.pop(key, None)
        if obj is not None:
            self._done.append(obj)

    def release_done(self) -> int:
        n = len(self._done)
        for obj in self._done:
            try:
                self._released.append(weakref.ref(obj))
            except TypeError:
                pass
        self._done.clear()
        return n

    def leaked(self) -> int:
        """Released objects something still holds on to (a cycle, a stray reference)."""
        self._released = [r for r in self._released if r() is not None]
        return len(self._released)

    def __len__(self) -> int:
        return len(self._live)

    def keys(self) -> list:
        return list(self._live)

    def clear(self) -> None:
        self._live.clear()
        self._done.clear()


_STOP = object()

# pjsua is one library per process: a second Endpoint alive at the same time
# aborts the process, so a second engine is refused before it gets that far.
_ONE_PER_PROCESS = threading.Lock()


class EngineThread:
    """Owns pjsua2 on one thread; other threads talk to it through submit()."""

    def __init__(self, config: EngineConfig | None = None, on_event: Callable[[Any], None] | None = None,
                 on_heartbeat: Callable[[], None] | None = None):
        self.config = config or EngineConfig()
        self.on_event = on_event or (lambda event: None)
        self.on_heartbeat = on_heartbeat or (lambda: None)
        self.registry = Registry()
        self.ep: Any = None  # pjsua2.Endpoint, only touched on the engine thread
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._ready: Future = Future()
        self._thread = threading.Thread(target=self._main, name="engine", daemon=True)
        self._log_writer: Any = None
        self._turn_hooks: list[Callable[[], None]] = []
        self._shutdown_hooks: list[Callable[[], None]] = []
        self.transports: dict[str, int] = {}  # "local", "trunk" -> pjsua transport id
        self.loop_turns = 0

    # -- other threads --------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        if not _ONE_PER_PROCESS.acquire(blocking=False):
            raise RuntimeError("another engine is running in this process; pjsua2 allows one")
        self._thread.start()
        self._ready.result(timeout)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run fn(*args) on the engine thread; the Future holds its result or exception."""
        fut: Future = Future()
        if not self._thread.is_alive():
            fut.set_exception(RuntimeError("the engine is not running"))
            return fut
        self._commands.put((fut, fn, args, kwargs))
        return fut

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 5.0, **kwargs: Any) -> Any:
        return self.submit(fn, *args, **kwargs).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._commands.put(_STOP)
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("engine thread did not stop within %.1f s", timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self._ready.done() and self._ready.exception() is None

    # -- the engine thread ----------------------------------------------------

    def on_turn(self, hook: Callable[[], None]) -> None:
        """Run hook on every loop turn (engine thread), e.g. timers of call state machines."""
        self._turn_hooks.append(hook)

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """Run hook on the engine thread after calls are hung up, before libDestroy
        (drop accounts, players, tone generators)."""
        self._shutdown_hooks.append(hook)

    def add_udp_transport(self, name: str, host: str, port: int, public: str = "") -> int:
        """Engine thread: one more UDP transport (e.g. "trunk"), after start."""
        import pjsua2 as pj

        tcfg = pj.TransportConfig()
        tcfg.port = port
        tcfg.boundAddress = "" if host in ("0.0.0.0", "") else host
        public = public or host
        if public not in ("0.0.0.0", ""):
            tcfg.publicAddress = public
        self.transports[name] = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        return self.transports[name]

    def _main(self) -> None:
        try:
            self._create()
        except BaseException as e:  # noqa: BLE001 - reported through the Future
            if hasattr(e, "reason"):  # pjsua2.Error carries its text in attributes
                e = RuntimeError(f"{e.title}: {e.reason} (status {e.status})")
            log.error("engine failed to start: %s", e)
            self._destroy()
            _ONE_PER_PROCESS.release()
            self._ready.set_exception(e)
            return
        self._ready.set_result(True)
        log.info("engine up: SIP on %s:%d, %d calls max, bridge at %d Hz",
                 self.config.sip_host, self.config.sip_port, self.config.max_calls, self.config.clock_rate)
        try:
            self._loop()
        finally:
            self._shutdown()
            _ONE_PER_PROCESS.release()

    def _create(self) -> None:
        import pjsua2 as pj

        self.ep = ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = self.config.max_calls
        cfg.uaConfig.userAgent = self.config.user_agent
        cfg.medConfig.clockRate = self.config.clock_rate
        cfg.medConfig.sndClockRate = self.config.clock_rate
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0  # legs are bridged, not played to a speaker
        self._log_writer = _make_log_writer(pj)
        cfg.logConfig.writer = self._log_writer
        cfg.logConfig.level = self.config.log_level
        cfg.logConfig.consoleLevel = self.config.log_level
        cfg.logConfig.decor = pj.PJ_LOG_HAS_SENDER
        ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = self.config.sip_port
        tcfg.boundAddress = self.config.sip_host
        tcfg.publicAddress = self.config.sip_host
        self.transports["local"] = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        if self.config.trunk_port:
            self.add_udp_transport("trunk", self.config.trunk_host, self.config.trunk_port, self.config.trunk_public)
        ep.audDevManager().setNullDev()
        ep.libStart()
        self._set_codec_priorities()

    def _set_codec_priorities(self) -> None:
        # The default order puts speex/16000 first: costly and resampled.
        for info in self.ep.codecEnum2():
            name = "/".join(info.codecId.split("/")[:2])  # "PCMU/8000/1" -> "PCMU/8000"
            self.ep.codecSetPriority(info.codecId, CODEC_PRIORITIES.get(name, 0))

    def _loop(self) -> None:
        ep = self.ep
        last_beat = 0.0
        while True:
            ep.libHandleEvents(POLL_MS)
            self.loop_turns += 1
            self.registry.release_done()
            for hook in self._turn_hooks:
                try:
                    hook()
                except Exception:  # noqa: BLE001 - a hook must not stop the engine
                    log.exception("engine turn hook failed")
            while True:
                try:
                    item = self._commands.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    return
                fut, fn, args, kwargs = item
                if not fut.set_running_or_notify_cancel():
                    continue
                try:
                    fut.set_result(fn(*args, **kwargs))
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    fut.set_exception(e)
            now = time.monotonic()
            if now - last_beat >= 1.0:
                last_beat = now
                self.on_heartbeat()

    def _shutdown(self) -> None:
        ep = self.ep
        try:
            if len(self.registry):
                ep.hangupAllCalls()
                deadline = time.monotonic() + 1.5
                while len(self.registry) and time.monotonic() < deadline:
                    ep.libHandleEvents(POLL_MS)
                    self.registry.release_done()
        except Exception:  # noqa: BLE001 - shutting down regardless
            log.exception("error while hanging up calls at shutdown")
        for hook in self._shutdown_hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001
                log.exception("engine shutdown hook failed")
        self._shutdown_hooks.clear()
        self.registry.clear()
        self._turn_hooks.clear()
        # Fail whatever is still queued rather than leave callers waiting.
        while True:
            try:
                item = self._commands.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                item[0].set_exception(RuntimeError("the engine stopped"))
        self._destroy()
        log.info("engine stopped")

    def _destroy(self) -> None:
        sys.last_type = sys.last_value = sys.last_traceback = None
        gc.collect()
        if self.ep is not None:
            try:
                self.ep.libDestroy()
            except Exception:  # noqa: BLE001
                log.exception("libDestroy failed")
        self.ep = None
        self._log_writer = None


def _make_log_writer(pj: Any) -> Any:
    levels = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}

    class LogWriter(pj.LogWriter):
        def write(self, entry: Any) -> None:  # pjsua2 callback, any thread
            try:
                pjlog.log(levels.get(entry.level, logging.DEBUG), "%s", entry.msg.rstrip())
            except Exception:  # noqa: BLE001 - logging must never raise into pjsua
                pass

    return LogWriter()
