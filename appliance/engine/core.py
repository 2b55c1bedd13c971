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
# How long a thread that wants the GIL waits before the holder is made to give it up (CPython's
# default is 5 ms).  The engine thread gives the GIL up around every pjsua2 call and must win it
# back; while the appliance's loop (the edge, the monitor) works, each such wait could last up to
# 5 ms, and at 0.5 ms it lasts at most about that.  What it buys is not settled: with the live
# monitor fed, one run's p99 growth fell from +2.4 to +0.6 ms, a later run's did not (docs/monitor.md).
GIL_SWITCH_S = 0.0005
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


RELEASED_KEPT = 4096  # weak references to released objects kept before the dead ones are dropped


class Registry:
    """Live pj objects by key, let go of only when that can no longer hurt a call.

    The rules (measured with pjsua2 2.17, see PJSUA2-NOTES):
    - a `Call` whose last reference goes while pjsua still has its call hangs
      that call up, so every call object is kept here from the moment it is
      created (`keep`) until pjsua reports it DISCONNECTED (`done`);
    - pjsua2 never forgets a disconnected `Call`'s id: its destructor clears the
      user data of that id and hangs up whatever call is active there.  Once
      pjsua has given the id to a new call, freeing the old object cuts the new
      call loose (it never sees DISCONNECTED again) and hangs it up.  So a done
      object is freed only while no live call holds its id; if one does, it
      waits until that call is done too;
    - objects are never freed inside a pjsua callback (`release_done` runs
      between pieces of engine work, see `EngineThread._loop`).
    """

    def __init__(self) -> None:
        self._live: dict[Any, Any] = {}
        self._ids: dict[int, Any] = {}          # pjsua call id -> key of the live object holding it
        self._done: list[tuple[Any, int]] = []  # (object, the call id it had or -1)
        self._released: list[weakref.ref] = []

    def keep(self, key: Any, obj: Any) -> None:
        self._live[key] = obj
        self.holds(key)

    def holds(self, key: Any) -> None:
        """Note the call id of live object `key` (an outgoing call has one only after makeCall)."""
        call_id = _call_id(self._live.get(key))
        if call_id >= 0:
            self._ids[call_id] = key

    def get(self, key: Any) -> Any:
        return self._live.get(key)

    def done(self, key: Any) -> None:
        """pjsua is finished with this object; let it go once that is safe."""
        obj = self._live.pop(key, None)
        if obj is None:
            return
        call_id = _call_id(obj)
        if call_id >= 0 and self._ids.get(call_id) == key:
            del self._ids[call_id]
        self._done.append((obj, call_id))

    def release_done(self) -> int:
        """Engine thread, outside any callback: drop done objects whose call id nobody else holds."""
        if not self._done:
            return 0
        waiting, n = [], 0
        for obj, call_id in self._done:
            if call_id >= 0 and (call_id in self._ids or obj.isActive()):
                waiting.append((obj, call_id))  # the id belongs to a newer call now
                continue
            try:
                self._released.append(weakref.ref(obj))
            except TypeError:
                pass
            n += 1
        self._done = waiting
        if len(self._released) > RELEASED_KEPT:
            # The references to freed objects are dead: forget them, so a
            # long-running appliance does not keep one per call it ever had.
            self._released = [r for r in self._released if r() is not None]
        return n

    def leaked(self) -> int:
        """Released objects something still holds on to (a cycle, a stray reference)."""
        self._released = [r for r in self._released if r() is not None]
        return len(self._released)

    def waiting(self) -> int:
        """Done objects not yet freed (their call id was reused by a live call)."""
        return len(self._done)

    def __len__(self) -> int:
        return len(self._live)

    def keys(self) -> list:
        return list(self._live)

    def clear(self) -> None:
        """Shutdown: let go of everything (calls are hung up by now); `leaked()` tells what stayed."""
        for obj in [*self._live.values(), *(o for o, _ in self._done)]:
            try:
                self._released.append(weakref.ref(obj))
            except TypeError:
                pass
        self._live.clear()
        self._ids.clear()
        self._done.clear()


def _call_id(obj: Any) -> int:
    """pjsua's call id of a Call (kept by pjsua2 even after DISCONNECTED), else -1."""
    get = getattr(obj, "getId", None)
    if get is None:
        return -1
    try:
        return int(get())
    except Exception:  # noqa: BLE001 - not a call after all
        return -1


class TurnStats:
    """How long loop turns take.  A turn is about POLL_MS when idle; a long one
    means requests waited (a SIP peer retransmits its INVITE after 500 ms) and
    RTP sat unread in the sockets.

    Turns are counted in 0.1 ms buckets rather than kept, so the figures cost
    the same however long nobody resets them (`pbx run` never does)."""

    SLOW = 0.050
    STEP = 0.0001   # one bucket: 0.1 ms
    BUCKETS = 1000  # up to 100 ms; longer turns land in the last bucket

    def __init__(self) -> None:
        self.reset()

    def add(self, seconds: float, cpu: float = 0.0) -> None:
        """A turn of `seconds`, `cpu` of them on a core; the rest it waited, for work (at most
        POLL_MS, in libHandleEvents) or for a core."""
        if self._resetting:  # the turn that asked for the figures is neither theirs nor the next's
            self._resetting = False
            return
        if seconds > self.longest:
            self.longest, self.longest_cpu = seconds, cpu
        if seconds > self.SLOW:
            self.slow += 1
        self.counts[min(int(seconds / self.STEP), self.BUCKETS - 1)] += 1
        self.n += 1

    def percentile(self, p: float) -> float:
        """Seconds that p % of the turns took at most: the upper edge of their bucket, at most the
        longest (which is also the answer when it falls in the last bucket, open-ended)."""
        rank, seen = self.n * p / 100, 0
        for i, count in enumerate(self.counts[:-1]):
            seen += count
            if count and seen >= rank:
                return min((i + 1) * self.STEP, self.longest)
        return self.longest

    def reset(self) -> None:
        """Start again from the next turn (a reset comes from inside a turn: a command)."""
        self.longest = self.longest_cpu = 0.0
        self.slow = 0
        self.n = 0
        self.counts = [0] * self.BUCKETS
        self._resetting = True


_STOP = object()


def collect_garbage() -> None:
    """Python's cycle collection, run here, on the thread that owns pjsua2.

    While the engine runs, the automatic collector is off (see
    EngineThread.start): it runs on whichever thread happens to allocate, and
    a pjsua2 object in a reference cycle freed on a thread pjsua does not
    know aborts the process.  This does what the automatic collector would,
    by the same counters and thresholds, on the engine thread.
    """
    c0, c1, c2 = gc.get_count()
    t0, t1, t2 = gc.get_threshold()
    if t0 and c0 > t0:
        generation = 2 if c2 > t2 else 1 if c1 > t1 else 0
        start = time.perf_counter()
        gc.collect(generation)
        COLLECTIONS.add(generation, time.perf_counter() - start)


class CollectionStats:
    """How many collections `collect_garbage` ran, of each generation, and how long they took
    (`pbx bench calls` prints them: a full collection is a turn's longest piece of work)."""

    def __init__(self) -> None:
        self.reset()

    def add(self, generation: int, seconds: float) -> None:
        self.counts[generation] += 1
        self.seconds[generation] += seconds
        self.longest = max(self.longest, seconds)

    def figures(self) -> dict:
        return {"gc_counts": list(self.counts), "gc_ms": [round(s * 1000, 2) for s in self.seconds],
                "gc_longest_ms": round(self.longest * 1000, 2)}

    def reset(self) -> None:
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0


COLLECTIONS = CollectionStats()


def _endpoint_class(pj: Any, engine: "EngineThread") -> type:
    """pjsua2's Endpoint with onSelectAccount asking `engine.account_chooser`."""

    class Endpoint(pj.Endpoint):
        def onSelectAccount(self, prm: Any) -> None:
            chooser = engine.account_chooser
            if chooser is None:
                return
            try:
                chosen = chooser(prm.rdata.wholeMsg)
            except Exception:  # noqa: BLE001 - SWIG would print and swallow it; pjsua's choice stands
                log.exception("choosing the account of an incoming request failed")
                return
            if chosen is not None:
                prm.accountIndex = chosen

    return Endpoint


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
        self._turn_end_hooks: list[Callable[[], None]] = []
        self._shutdown_hooks: list[Callable[[], None]] = []
        self.transports: dict[str, int] = {}  # "local", "trunk" -> pjsua transport id
        # Which account takes an incoming request, from its text (None: pjsua's own choice);
        # the B2BUA puts phones' requests that came over TLS on its SRTP account.
        self.account_chooser: Callable[[str], int | None] | None = None
        self.loop_turns = 0
        self.turns = TurnStats()
        # The last turn's poll found nothing to do (no SIP message, no timer) within POLL_MS, or the
        # engine is stopping: the moment for work that must keep out of the calls' way (`idle`).
        self._idle = False

    # -- other threads --------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        if not _ONE_PER_PROCESS.acquire(blocking=False):
            raise RuntimeError("another engine is running in this process; pjsua2 allows one")
        # Cycles are collected on the engine thread only (collect_garbage).
        self._gc_was_enabled = gc.isenabled()
        self._switch_was = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_S)
        gc.disable()
        # What exists before the library (modules, the appliance's parts, the
        # configuration read at start) is frozen: later collections leave it
        # out, and a full one took 1-4 ms instead of 17-29 ms with 100 calls
        # up (a loop turn that long).  The price: a cycle among those
        # objects is never collected.  No pj object exists yet, so collecting
        # here, on this thread, is safe.
        gc.collect()
        gc.freeze()
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

    def on_turn_end(self, hook: Callable[[], None]) -> None:
        """Run hook at the end of every loop turn, after the turn's callbacks, hooks and commands, and
        once more when the engine stops: the hand-over of the turn's events to the appliance's loop
        (`Handover.flush`, which hands them over after a quiet turn, `idle()`), so the loop works on
        them while this thread has nothing to do."""
        self._turn_end_hooks.append(hook)

    @property
    def thread(self) -> threading.Thread:
        """The engine thread (for `Handover.defer_for`)."""
        return self._thread

    def idle(self) -> bool:
        """Engine thread, in a turn-end hook: did this turn's poll wait POLL_MS for nothing (or is the
        engine stopping)?  Then no call's message is being handled, and none came for a while."""
        return self._idle

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
            self._let_go()
            self._ready.set_exception(e)
            return
        self._ready.set_result(True)
        log.info("engine up: SIP on %s:%d, %d calls max, bridge at %d Hz",
                 self.config.sip_host, self.config.sip_port, self.config.max_calls, self.config.clock_rate)
        try:
            self._loop()
        finally:
            self._shutdown()
            self._let_go()

    def _let_go(self) -> None:
        """The library is gone: the collector may run anywhere again, and another engine may start."""
        gc.unfreeze()
        if self._gc_was_enabled:
            gc.enable()
        sys.setswitchinterval(self._switch_was)
        _ONE_PER_PROCESS.release()

    def _create(self) -> None:
        import pjsua2 as pj

        self.ep = ep = _endpoint_class(pj, self)()
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
        # The null sound device clocks the conference bridge.  pjsua closes it
        # after 1 s without calls and reopens it for the next one; closing joins
        # its clock thread, which held this thread for about 17 ms and delayed
        # the first call after a quiet second.  It stays open.
        cfg.medConfig.sndAutoCloseTime = -1
        # RTP is read on this thread too (the SIP ioqueue, polled by
        # libHandleEvents), not by a media worker thread: that thread could be
        # inside a leg's RTP callback while a hang-up here destroyed the leg's
        # media transport, and pjmedia aborted (pj_sockaddr_get_len assertion
        # in on_rx_rtp) when BYEs crossed on many calls at once.
        cfg.medConfig.hasIoqueue = False
        cfg.medConfig.threadCnt = 0
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
        registry = self.registry
        last_beat = 0.0
        while True:
            t0, cpu0 = time.perf_counter(), time.thread_time()
            self._idle = ep.libHandleEvents(POLL_MS) <= 0
            self.loop_turns += 1
            # Objects pjsua finished with are let go after each piece of work,
            # before the next one can give their call ids to new calls.
            registry.release_done()
            for hook in self._turn_hooks:
                try:
                    hook()
                except Exception:  # noqa: BLE001 - a hook must not stop the engine
                    log.exception("engine turn hook failed")
                registry.release_done()
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
                # The loop's locals must not keep the last result (a pj object) alive.
                item = fut = fn = args = kwargs = None
                registry.release_done()
            collect_garbage()
            self.turns.add(time.perf_counter() - t0, time.thread_time() - cpu0)
            self._run_turn_end_hooks()
            now = time.monotonic()
            if now - last_beat >= 1.0:
                last_beat = now
                self.on_heartbeat()

    def _run_turn_end_hooks(self) -> None:
        for hook in self._turn_end_hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001 - a hook must not stop the engine
                log.exception("engine turn-end hook failed")

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
        self._idle = True
        self._run_turn_end_hooks()  # what the hang-ups and the shutdown hooks emitted
        self._turn_end_hooks.clear()
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
        leaked = self.registry.leaked()
        if leaked:
            # Each would abort the process when freed after libDestroy.
            log.error("%d pjsua objects are still referenced at libDestroy", leaked)
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
