"""Moving a caller who waits in a queue: the live monitor's actions on a queued call.

- `move(b2bua, call_id, to, by)`: to an extension (`102` or `ext:102`), that extension rings for
  the call as `monitor.take` rings it (take.py) and the caller keeps their place meanwhile; to any
  other destination (`group:sales`, `queue:support`, `voicemail:101`...) the caller leaves this
  queue and routing takes the call there as a route would, in the same session: one call record,
  its path going on, with a `moved` entry saying to where and by whom.
- `place(b2bua, call_id, position, by)`: the caller's place in the line (1 is next); the callers
  between move by one, later announcements and the monitor (QueuePosition) follow.
- `vip(b2bua, call_id, by)`: VIP for this call: ahead of every caller who is not, behind those
  who are, as a queue's `vip_first` puts a VIP contact.

Runs on the engine thread (`engine.call(move, b2bua, ...)`).  A refusal is `MoveRefused`, its
text the reason: the call ended, was answered, is not waiting in a queue, or the destination is
unknown.  `commands(engine, b2bua)` are the control commands `monitor.move`, `monitor.place` and
`monitor.vip` (registered by attach.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from appliance.routing import kinds
from appliance.routing.model import Route, split_ref
from appliance.routing.steps import Queue

from .queues import Waiting
from .session import Session
from .take import take

# Kinds a queued caller cannot be moved to: ending the call is not a move.
NOT_DESTINATIONS = frozenset({"hangup", "parent", "repeat"})


class MoveRefused(ValueError):
    """The caller cannot be moved: the call is gone, not waiting in a queue, or the destination unknown."""


def queued(b2bua: Any, call_id: str) -> tuple[Session, Waiting]:
    """The session of a caller waiting in a queue now, and their place; else MoveRefused."""
    s = b2bua.sessions.get(call_id)
    if s is None or s.ended:
        raise MoveRefused(f"call {call_id} has ended")
    if s.peer is not None or s.transfer is not None:
        raise MoveRefused(f"call {call_id} has been answered")
    w = b2bua.queues.waiting.find(call_id)
    if w is None or not isinstance(s.step, Queue):
        raise MoveRefused(f"call {call_id} is not waiting in a queue")
    return s, w


def destination(b2bua: Any, to: str) -> str:
    """`to` as routing writes it (`102` -> `ext:102`), if this office has it; else MoveRefused."""
    ref = to.strip()
    if ref.isdigit():
        ref = f"ext:{ref}"
    kind, ident = split_ref(ref)
    if not ident or kind in NOT_DESTINATIONS or not kinds.exists(b2bua.router.config, ref):
        raise MoveRefused(f"there is no destination {to!r} to move the call to")
    if kind == "ext" and ident not in b2bua.extensions:
        raise MoveRefused(f"there is no extension {ident}")
    return ref


def move(b2bua: Any, call_id: str, to: str, by: str = "panel") -> dict:
    s, w = queued(b2bua, call_id)
    ref = destination(b2bua, to)
    kind, ident = split_ref(ref)
    if kind == "ext":
        answer = take(b2bua, call_id, ident)  # refuses an extension with no phone registered
        s.note("moved", to=ref, by=by, queue=w.queue, keeps_place=True)
        b2bua.emit("CallMoved", s.id, queue=w.queue, to=ref, by=by)
        return {**answer, "to": ref}
    if ref == s.step.dest:
        raise MoveRefused(f"call {call_id} waits in {ref} already")
    # Decided before the caller leaves the queue: a routing error refuses the move and changes nothing.
    decision = _router_to(b2bua, ref, by).first_step(b2bua.facts(s), b2bua.state())
    queue = w.queue
    b2bua.queues.move_out(s)
    s.note("moved", to=ref, by=by, queue=queue)
    b2bua.emit("CallMoved", s.id, queue=queue, to=ref, by=by)
    b2bua.decided(s, decision)
    return {"call_id": call_id, "to": ref}


def _router_to(b2bua: Any, ref: str, by: str) -> Any:
    """The office's routing with one route, to `ref`: what routing does with a call sent there.

    Routing's public question is "where does a new call go"; asked of this
    configuration it walks `ref` exactly as a route to it would (schedules,
    free members, exits), and the trace names the move.
    """
    from appliance.routing.router import Router

    config = b2bua.router.config
    return Router(replace(config, routes=(Route(f"moved by {by}", ref),)))


def place(b2bua: Any, call_id: str, position: int, by: str = "panel") -> dict:
    s, w = queued(b2bua, call_id)
    if position < 1:
        raise MoveRefused(f"a place in the queue is 1 or more, not {position}")
    now = b2bua.queues.put_at(w, position)
    s.note("placed", queue=w.queue, position=now, by=by)
    return {"call_id": call_id, "queue": w.queue, "position": now}


def vip(b2bua: Any, call_id: str, by: str = "panel") -> dict:
    s, w = queued(b2bua, call_id)
    now = b2bua.queues.make_vip(w)
    s.note("vip", queue=w.queue, position=now, by=by)
    return {"call_id": call_id, "queue": w.queue, "position": now, "vip": True}


def commands(engine: Any, b2bua: Any) -> dict[str, Callable[[dict], dict]]:
    """The control commands, each answering or refusing with the engine's reason."""
    from appliance.control import ControlError

    def on_engine(fn: Callable[..., dict], *args: Any) -> dict:
        try:
            return engine.call(fn, b2bua, *args, timeout=5)
        except ValueError as e:  # MoveRefused, TakeRefused
            raise ControlError(str(e)) from None

    def call_id(args: dict) -> str:
        cid = str(args.get("call_id") or "")
        if not cid:
            raise ControlError("say which call: {call_id, ...}")
        return cid

    def move_command(args: dict) -> dict:
        to = str(args.get("to") or "")
        if not to:
            raise ControlError("say where the call goes: {call_id, to: \"ext:102\" | \"group:sales\" | ...}")
        return on_engine(move, call_id(args), to, str(args.get("by") or "panel"))

    def place_command(args: dict) -> dict:
        try:
            position = int(args.get("position"))
        except (TypeError, ValueError):
            raise ControlError("say the place in the queue as a number: {call_id, position}") from None
        return on_engine(place, call_id(args), position, str(args.get("by") or "panel"))

    def vip_command(args: dict) -> dict:
        return on_engine(vip, call_id(args), str(args.get("by") or "panel"))

    return {"monitor.move": move_command, "monitor.place": place_command, "monitor.vip": vip_command}
