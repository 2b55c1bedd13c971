"""Taking a waiting call to a chosen phone (the live monitor's "take", `monitor.take`).

Like a pickup (desk.py), but asked for from the panel: the engine rings the
extension for a call that waits in a queue or rings elsewhere, alongside
whatever rings for it now, and the first answer wins as in any Ring step
(`Ringing.winner`: bridged, the others cancelled, the queue left).  If the
extension does not answer within `TAKE_RING_SECONDS`, the call goes on as
before: a queued caller keeps their place, a ringing call keeps ringing.

Runs on the engine thread (`engine.submit(take, b2bua, call_id, ext)`).
"""

from __future__ import annotations

from typing import Any

from appliance.routing.steps import Leg as LegSpec, Queue, Ring

TAKE_RING_SECONDS = 30


class TakeRefused(ValueError):
    """The call cannot be taken: it is gone, answered, or the extension is unknown."""


def take(b2bua: Any, call_id: str, ext: str) -> dict:
    s = b2bua.sessions.get(call_id)
    if s is None or s.ended:
        raise TakeRefused(f"call {call_id} has ended")
    if ext not in b2bua.extensions:
        raise TakeRefused(f"there is no extension {ext}")
    if s.peer is not None or s.transfer is not None:
        raise TakeRefused(f"call {call_id} has been answered")
    if not b2bua.lookups.bindings_for(b2bua.store, ext):
        raise TakeRefused(f"extension {ext} is not registered")
    queued = isinstance(s.step, Queue)
    if s.ring is None and not queued:
        raise TakeRefused(f"call {call_id} is neither waiting in a queue nor ringing")
    if any(leg.target == ext and leg.spec >= 0 for leg in s.legs.values()):
        return {"call_id": call_id, "ext": ext}  # it rings there already
    spec = LegSpec(ext, 0, TAKE_RING_SECONDS)
    s.note("take", ext=ext)
    if s.ring is None:
        # Waiting in a queue with nobody rung for it now: a round of ringing
        # of its own, which ends back in the queue if unanswered.
        b2bua.queues.queue_ring_agents(s, Ring(s.step.dest, s.step.name, (spec,), TAKE_RING_SECONDS))
    else:
        # Ringing already: one more leg of the same run, with its own stop.
        run = s.ring
        i = len(run.specs)
        run.specs = (*run.specs, spec)
        s.after(TAKE_RING_SECONDS, lambda: b2bua.ringer.leg_stop(s, run, i))
        b2bua.ringer.leg_start(s, run, i)
    return {"call_id": call_id, "ext": ext}
