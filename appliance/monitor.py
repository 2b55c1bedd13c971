"""The live monitor: every call in progress, at which stage, and for how long.

`LiveCalls` owns the model of the calls now up.  It is fed only by the
events the appliance publishes (`Appliance._emit` hands it each one on the
appliance's loop), so it never touches pjsua2 and never asks the engine
anything.  A call is, at any moment, at one `Stage`: arriving (routing
decides), greeting (an announcement), menu (which, the keys pressed), queue
(which, the position, the wait, VIP), ringing (whom), talking (with whom),
held, transferring (to whom), voicemail or webhook.  The caller's name comes
from the contacts (`ContactNames`), else from the caller's own display name.

Every change is published to control subscribers as

    {"kind": "LiveCallChanged", "at": ISO, "seq": n, "call_id": id, "call": {the call's view}}
    {"kind": "LiveCallEnded", "at": ISO, "seq": n, "call_id": id, "outcome": "answered" | ...}

where `seq` counts the monitor's own events, so a client that took a
snapshot (which carries the `seq` it reflects) skips what it already has.

Control commands:

    monitor.snapshot {}             -> {"calls": [views, oldest first], "seq": n, "now": ISO}
    monitor.take     {call_id, ext} -> {"call_id": id, "ext": ext}   ring ext for a waiting call

and, carried out by the engine (appliance/engine/moves.py, registered by attach.py):

    monitor.move  {call_id, to, by?}  a queued caller to an extension (rung), a group, a queue...
    monitor.place {call_id, position} a queued caller's place in the line
    monitor.vip   {call_id}           a queued caller ahead of everyone not a VIP

`Following` is the client side: a subscription that yields a snapshot, then
each change, and None after every `quiet` seconds without one (the panel's
server-sent events send a comment then, `pbx monitor --follow` ignores it).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
import socket
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from appliance.control import ControlClient, ControlError, ControlServer, socket_path
from appliance.handover import Handover

CHANGED, ENDED = "LiveCallChanged", "LiveCallEnded"
SNAPSHOT = "LiveCalls"       # the first item a `Following` yields
HEARTBEAT = 15.0             # seconds of quiet after which a follower hears None


class Stage(enum.StrEnum):
    """Where a call is now, as the owner would say it."""

    ARRIVING = "arriving"          # routing is deciding, nothing started yet
    GREETING = "greeting"          # an announcement plays
    MENU = "menu"                  # an IVR menu listens for keys
    QUEUE = "queue"                # waiting in a queue, nobody rung for it now
    RINGING = "ringing"            # phones (or a mobile) ring for it
    TALKING = "talking"            # bridged with someone
    HELD = "held"                  # one side put the other on hold
    TRANSFERRING = "transferring"  # a transfer is under way
    VOICEMAIL = "voicemail"        # the caller hears the greeting or leaves a message
    WEBHOOK = "webhook"            # routing waits for a webhook's answer


# The stage each routing step (StepStarted's `step`) puts a call in.
STEP_STAGES = {
    "play": Stage.GREETING, "menu": Stage.MENU, "queue": Stage.QUEUE, "ring": Stage.RINGING,
    "forward": Stage.RINGING, "voicemail": Stage.VOICEMAIL, "askwebhook": Stage.WEBHOOK,
}
# Stages in which a call can be taken to another phone (monitor.take).
TAKEABLE = frozenset({Stage.QUEUE, Stage.RINGING})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


@dataclass
class LiveCall:
    id: str
    direction: str
    caller: str
    caller_name: str
    dialled: str
    extension: str
    trunk: str
    started: datetime
    stage: Stage = Stage.ARRIVING
    since: datetime | None = None      # when it came to this stage
    vip: bool = False
    dest: str = ""                     # the routing step's destination ("menu:main", "queue:support")
    step_name: str = ""                # its name as routing words it ("menu 'Main'")
    menu: str = ""
    keys: str = ""                     # keys pressed at the current menu
    queue: str = ""
    position: int = 0
    queued: datetime | None = None     # when it joined the queue
    ringing: dict[Any, str] = field(default_factory=dict)   # leg -> target, while placed
    talking_with: str = ""
    held_by: str = ""
    transfer_to: str = ""

    def move(self, stage: Stage, at: datetime) -> None:
        if stage != self.stage:
            self.stage, self.since = stage, at

    def state(self) -> tuple:
        """What the view shows but the clock: two views at the same moment differ only if this does."""
        return (self.caller_name, self.vip, self.stage, self.since, self.dest, self.step_name, self.menu,
                self.keys, self.queue, self.position, self.queued, frozenset(self.ringing.values()),
                self.talking_with, self.held_by, self.transfer_to)

    def view(self, now: datetime) -> dict:
        since = self.since or self.started
        return {
            "id": self.id, "direction": self.direction, "caller": self.caller, "caller_name": self.caller_name,
            "vip": self.vip, "dialled": self.dialled, "extension": self.extension, "trunk": self.trunk,
            "started_at": iso(self.started), "call_s": _seconds(now - self.started),
            "stage": str(self.stage), "since": iso(since), "stage_s": _seconds(now - since),
            "dest": self.dest, "step_name": self.step_name, "menu": self.menu, "keys": self.keys,
            "queue": self.queue, "position": self.position,
            "queue_s": _seconds(now - self.queued) if self.queued else None,
            "ringing": sorted(set(self.ringing.values())), "with": self.talking_with,
            "held_by": self.held_by, "transfer_to": self.transfer_to,
        }


def _seconds(delta: Any) -> float:
    return round(max(0.0, delta.total_seconds()), 1)


class ContactNames:
    """Contact names and VIP marks by number, read again only when the contacts table changed."""

    def __init__(self, store: Any):
        self.store = store
        self._seen: int | None = None
        self._by_number: dict[str, dict] = {}

    def __call__(self, number: str) -> dict | None:
        n = self.store.changes().get("contacts", 0)
        if n != self._seen:
            self._by_number = {c["number"]: c for c in self.store.contacts()}
            self._seen = n
        return self._by_number.get(number)


class LiveCalls:
    """The calls in progress, kept from the appliance's events (on the appliance's loop)."""

    def __init__(self, publish: Callable[[dict], None] = lambda event: None,
                 contact: Callable[[str], dict | None] = lambda number: None,
                 clock: Callable[[], datetime] = utc_now):
        self.publish = publish
        self.contact = contact
        self.clock = clock
        self.calls: dict[str, LiveCall] = {}
        self.seq = 0
        self._seqs = itertools.count(1)
        # Ring the extension for a waiting call: (call_id, ext) -> a Future of the engine's answer.
        self.taker: Callable[[str, str], Future] | None = None
        # One table from event kind to what it changes.
        self.handlers: dict[str, Callable[[LiveCall, dict, datetime], None]] = {
            "StepStarted": self._step, "MenuKey": self._key,
            "QueueJoined": self._queue_joined, "QueuePosition": self._queue_position, "QueueLeft": self._queue_left,
            "LegStarted": self._leg_started, "LegEnded": self._leg_ended,
            "CallAnswered": self._answered, "CallBridged": self._bridged,
            "CallHeld": self._held, "CallResumed": self._resumed,
            "TransferStarted": self._transfer_started, "CallTransferred": self._transferred,
            "TransferFailed": self._transfer_failed, "VoicemailStarted": self._voicemail,
        }

    def register(self, control: Any) -> None:
        control.command("monitor.snapshot", lambda args: self.snapshot())
        control.command("monitor.take", self._take)

    # -- events in ----------------------------------------------------------------

    def on_event(self, event: dict) -> None:
        kind, call_id = event.get("kind"), event.get("call_id")
        if not call_id or kind in (CHANGED, ENDED):
            return
        at = self._time(event)
        if kind == "CallStarted":
            return self._changed(self._started(event, at))
        if kind == "CallEnded":
            return self._ended(str(call_id), str(event.get("outcome") or ""))
        if kind == "CallPickedUp" and event.get("picker"):
            # The picker's own call became a leg of the call it picked up.
            self._ended(str(event["picker"]), "pickup")
            event = {**event, "kind": "CallAnswered"}
            kind = "CallAnswered"
        call = self.calls.get(str(call_id))
        handler = self.handlers.get(str(kind))
        if call is None or handler is None:
            return
        before = call.state()
        handler(call, event, at)
        if call.state() != before:
            self._changed(call)

    def _time(self, event: dict) -> datetime:
        try:
            return datetime.fromisoformat(str(event["at"]))
        except (KeyError, ValueError):
            return self.clock()

    def _started(self, e: dict, at: datetime) -> LiveCall:
        caller = str(e.get("caller") or "")
        contact = self.contact(caller) if caller else None
        call = LiveCall(str(e["call_id"]), str(e.get("direction") or ""), caller,
                        (contact or {}).get("name") or str(e.get("caller_name") or ""),
                        str(e.get("dialled") or ""), str(e.get("extension") or ""), str(e.get("trunk") or ""),
                        at, since=at, vip=bool((contact or {}).get("vip")))
        self.calls[call.id] = call
        return call

    def _step(self, c: LiveCall, e: dict, at: datetime) -> None:
        stage = STEP_STAGES.get(str(e.get("step")))
        if stage is None or c.transfer_to:
            return  # a hangup step: the call ends in a moment; a transfer rings its target by its own steps
        c.ringing.clear()
        c.dest, c.step_name = str(e.get("dest") or ""), str(e.get("name") or "")
        c.menu, c.keys = (c.step_name, "") if stage is Stage.MENU else ("", "")
        if stage is not Stage.QUEUE:
            c.queue, c.position, c.queued = "", 0, None
        c.move(stage, at)

    def _key(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.keys = str(e.get("digits") or c.keys + str(e.get("digit") or ""))

    def _queue_joined(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.queue, c.position, c.queued = str(e.get("queue") or ""), int(e.get("position") or 0), at
        c.vip = c.vip or bool(e.get("vip"))
        c.move(Stage.QUEUE, at)

    def _queue_position(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.position = int(e.get("position") or c.position)
        c.vip = c.vip or bool(e.get("vip"))  # made a VIP for this call (monitor.vip)

    def _queue_left(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.position, c.queued = 0, None

    def _leg_started(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.ringing[e.get("leg")] = str(e.get("target") or "")
        if c.stage in (Stage.ARRIVING, Stage.GREETING, Stage.QUEUE):
            c.move(Stage.RINGING, at)

    def _leg_ended(self, c: LiveCall, e: dict, at: datetime) -> None:
        target = str(e.get("target") or "")
        for leg in [leg for leg, t in c.ringing.items() if t == target][:1]:
            del c.ringing[leg]
        if not c.ringing and c.stage is Stage.RINGING and c.queued is not None:
            c.move(Stage.QUEUE, at)  # nobody took it this round: back to waiting

    def _answered(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.ringing.clear()
        c.talking_with, c.transfer_to, c.held_by = str(e.get("by") or ""), "", ""
        c.position, c.queued = 0, None
        c.move(Stage.TALKING, at)

    def _bridged(self, c: LiveCall, e: dict, at: datetime) -> None:
        # The engine joins the two sides just before it reports the answer (CallAnswered).
        if c.stage not in (Stage.HELD, Stage.TRANSFERRING):
            self._answered(c, {"by": e.get("by") or c.talking_with}, at)

    def _held(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.held_by = str(e.get("by") or "")
        c.move(Stage.HELD, at)

    def _resumed(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.held_by = ""
        c.move(Stage.TALKING, at)

    def _transfer_started(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.transfer_to = str(e.get("to") or "")
        c.move(Stage.TRANSFERRING, at)

    def _transferred(self, c: LiveCall, e: dict, at: datetime) -> None:
        self._answered(c, {"by": e.get("to")}, at)

    def _transfer_failed(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.transfer_to = ""
        c.ringing.clear()
        if c.stage is Stage.TRANSFERRING:
            c.move(Stage.TALKING if c.talking_with else Stage.ARRIVING, at)

    def _voicemail(self, c: LiveCall, e: dict, at: datetime) -> None:
        c.step_name = str(e.get("box") or c.step_name)
        c.move(Stage.VOICEMAIL, at)

    # -- events out --------------------------------------------------------------

    def _changed(self, call: LiveCall) -> None:
        now = self.clock()
        self.seq = next(self._seqs)
        self.publish({"kind": CHANGED, "at": iso(now), "seq": self.seq, "call_id": call.id, "call": call.view(now)})

    def _ended(self, call_id: str, outcome: str) -> None:
        if self.calls.pop(call_id, None) is None:
            return
        now = self.clock()
        self.seq = next(self._seqs)
        self.publish({"kind": ENDED, "at": iso(now), "seq": self.seq, "call_id": call_id, "outcome": outcome})

    # -- commands ----------------------------------------------------------------

    def snapshot(self) -> dict:
        now = self.clock()
        calls = sorted(self.calls.values(), key=lambda c: c.started)
        return {"calls": [c.view(now) for c in calls], "seq": self.seq, "now": iso(now)}

    async def _take(self, args: dict) -> dict:
        call_id, ext = str(args.get("call_id") or ""), str(args.get("ext") or "")
        call = self.calls.get(call_id)
        if call is None:
            raise ControlError(f"no call {call_id!r} is in progress")
        if call.stage not in TAKEABLE:
            raise ControlError(f"call {call_id} is {call.stage}: only a waiting or ringing call can be taken")
        if self.taker is None:
            raise ControlError("the engine is not running")
        try:
            return await asyncio.wrap_future(self.taker(call_id, ext))
        except ValueError as e:  # the engine's refusal (appliance.engine.take.TakeRefused)
            raise ControlError(str(e)) from None


class MonitorLoop:
    """The live monitor and a control socket on a loop thread of their own, fed from another thread.

    What `pbx run` has around the engine (its `Handover` gives the loop each
    batch of events, whose `_emit` publishes them and feeds `LiveCalls`), for
    a process that runs the engine alone: the engine runner's `--monitor`,
    which `pbx bench calls --monitor` subscribes to.  `feeding` switches the
    feed on and off while it runs, so the same engine can be measured with and
    without it.
    """

    def __init__(self, data_dir: str | Path):
        self.loop = asyncio.new_event_loop()
        self.control = ControlServer(socket_path(data_dir))
        self.monitor = LiveCalls(self.control.publish)
        self.monitor.register(self.control)
        self.feeding = False
        self.handover = Handover(self.loop, self._emit)
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.control.path

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop.run_forever, name="monitor", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.control.start(), self.loop).result(5)

    def attach(self, engine: Any) -> None:
        """Hand the engine thread's events over at the end of its quiet turns, as `pbx run` does."""
        self.handover.defer_for(engine.thread, engine.idle)
        engine.on_turn_end(self.handover.flush)

    def feed(self, event: dict) -> None:
        """Any thread (the engine's): the event to the loop, handed over as `pbx run` hands it."""
        if self.feeding:
            self.handover.put(event)

    def _emit(self, event: dict) -> None:
        self.control.publish(event)
        self.monitor.on_event(event)

    def stop(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.control.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self._thread = None


# ---- the client side ---------------------------------------------------------------


class Following:
    """The live calls as they change, read from the control socket.

    Iterating yields the snapshot first (`{"kind": "LiveCalls", "calls":
    [...], "seq": n, "now": ISO}`), then each LiveCallChanged and LiveCallEnded
    event newer than it, and None after every `quiet` seconds without one.  It
    ends when the appliance closes the connection (it stopped) or `close()` is
    called.  One connection holds the subscription for as long as it runs; the
    snapshot is asked for on a second, short one once the subscription is in
    place, so no change falls between the two.
    """

    def __init__(self, path: str | Path, quiet: float = HEARTBEAT):
        self.path = Path(path)
        self.quiet = quiet
        self._sock: socket.socket | None = None

    def __iter__(self) -> Iterator[dict | None]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        try:
            sock.connect(str(self.path))
        except OSError as e:
            sock.close()
            raise ControlError(f"the appliance is not running (no control socket at {self.path}: {e.strerror})") from None
        self._sock = sock
        try:
            # Only the monitor's own events: the engine's many others would be encoded and sent for nothing.
            sock.sendall(json.dumps({"id": 1, "cmd": "subscribe", "args": {"kinds": [CHANGED, ENDED]}}).encode()
                         + b"\n")
            lines = self._lines(sock)
            reply = next((m for m in lines if m is not None), None)
            if not reply or not reply.get("ok"):
                raise ControlError((reply or {}).get("error") or "the appliance closed the control connection")
            with ControlClient(self.path) as client:
                snap = client.request("monitor.snapshot")
            yield {"kind": SNAPSHOT, **snap}
            for msg in lines:
                if msg is None:
                    yield None
                    continue
                event = msg.get("event") or {}
                if event.get("kind") in (CHANGED, ENDED) and event.get("seq", 0) > snap["seq"]:
                    yield event
        finally:
            self.close()

    def _lines(self, sock: socket.socket) -> Iterator[dict | None]:
        sock.settimeout(self.quiet)
        buf = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                yield None
                continue
            except OSError:
                return  # closed under us (close() from another thread)
            if not chunk:
                return
            buf += chunk
            *whole, buf = buf.split(b"\n")
            for line in whole:
                if line.strip():
                    yield json.loads(line)

    def close(self) -> None:
        """End the subscription (also from another thread: the iteration then ends)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
