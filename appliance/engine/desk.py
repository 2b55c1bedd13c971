"""Calls from desk phones: extensions, groups by number, feature codes, outside calls within the dial rules, pickup.

A collaborator of the B2BUA (appliance/engine/b2bua.py), created by it and called by name;
everything here runs on the engine thread.
"""

from __future__ import annotations

import json
import logging
from typing import Any


from appliance.routing.facts import Call as CallFacts
from appliance.routing.numbers import normalise
from appliance.routing.steps import Forward, Leg as LegSpec, Ring

from . import dialplan
from .sipmsg import Invite
from .session import INTERNAL_RING_SECONDS, Leg, Session

log = logging.getLogger("appliance.engine.b2bua")


class Desk:
    """The B2BUA's calls from desk phones."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua

    def from_phone(self, a: Leg, inv: Invite, ext: str) -> None:
        number = inv.ruri_user
        name = self.b2bua.extensions[ext].get("name") or ""
        s = Session(self.b2bua, a, "internal", ext, name, number, extension=ext)
        self.b2bua.begin(s)
        if not dialplan.valid(number):
            return self.refuse(s, dialplan.Refused(484, f"'{number}' is not a number: only digits, *, # and +"))
        if number.startswith("**") and number[2:] in self.b2bua.extensions:
            return self.pickup(s, number[2:])
        if number == "*8":
            return self.group_pickup(s)
        if number[0] in "*#":
            handler = self.b2bua.feature_codes.get(number)
            if handler is None:
                return self.refuse(s, dialplan.Refused(404, f"No feature code {number}"))
            s.note("feature", code=number)
            handler(s, number)
            return
        if number in self.b2bua.extensions:
            if number == ext:
                return self.refuse(s, dialplan.Refused(486, "You called your own extension"))
            s.step = Ring(f"ext:{number}", f"extension {number}",
                          (LegSpec(number, 0, INTERNAL_RING_SECONDS),), INTERNAL_RING_SECONDS)
            return self.b2bua.execute(s, s.step)
        route = self.b2bua.router.match(CallFacts(ext, number)) if self.b2bua.router else None
        if route is not None and route.numbers and normalise(number) in route.numbers:
            s.direction = "internal"
            return self.b2bua.route_first(s)
        self._outbound(s, number)

    def _outbound(self, s: Session, number: str) -> None:
        ext = s.extension
        row = self.b2bua.extensions[ext]
        try:
            d = dialplan.classify(number)
            rules = json.loads(row["dial_rules"]) if row.get("dial_rules") else None
            active = sum(1 for o in self.b2bua.sessions.values()
                         if o is not s and o.direction == "outbound" and o.extension == ext and not o.ended)
            dialplan.check_outbound(d, ext, rules, active, row.get("max_outbound"))
        except dialplan.Refused as r:
            return self.refuse(s, r)
        s.direction = "outbound"
        s.dialled = d.number
        s.step = Forward(f"number:{d.number}", d.number, d.number, 120, confirm=False)
        self.b2bua.execute(s, s.step)

    def refuse(self, s: Session, r: dialplan.Refused) -> None:
        s.outcome, s.end_reason = "refused", r.text
        s.note("refused", status=r.status, reason=r.text)
        self.b2bua.emit("CallRefused", s.id, reason=r.text, status=r.status)
        self.b2bua.end(s, code=r.status, reason=r.text, warning=r.text)

    def pickup(self, s: Session, ext: str) -> None:
        """**EXT: take a call ringing at extension EXT."""
        for other in list(self.b2bua.sessions.values()):
            if other is s or other.ended or other.peer is not None or other.ring is None:
                continue
            if any(l.target == ext for l in other.legs.values()):
                return self._take(other, s)
        self.refuse(s, dialplan.Refused(404, f"Nothing is ringing at extension {ext}"))

    def group_pickup(self, s: Session) -> None:
        """*8: take a call ringing any member of a group the caller belongs to."""
        mates: set[str] = set()
        config = getattr(self.b2bua.router, "config", None)
        for g in (config.groups.values() if config else ()):
            targets = {m.target for m in g.members}
            if s.extension in targets:
                mates |= targets
        mates.discard(s.extension)
        for other in sorted(self.b2bua.sessions.values(), key=lambda o: o.t0):
            if other is s or other.ended or other.peer is not None or other.ring is None:
                continue
            if any(l.target in mates for l in other.legs.values()):
                return self._take(other, s)
        self.refuse(s, dialplan.Refused(404, "No call is ringing in your groups"))

    def _take(self, ringing: Session, picker: Session) -> None:
        leg = picker.a
        # The picker's own call becomes the ringing call's answering leg.
        picker.ended = True
        picker.outcome = "pickup"
        self.b2bua.sessions.pop(picker.id, None)
        # The picker's call is now a leg of the ringing call, whose record tells it.
        pid = picker.id
        self.b2bua.recorder.submit(lambda st: st.forget_call(pid))
        leg.session = ringing
        leg.role = "b"
        ringing.note("pickup", by=picker.extension)
        self.b2bua.emit("CallPickedUp", ringing.id, by=picker.extension)
        picker.a_answered = True
        self.b2bua.answer_a(picker)
        leg.state = "answered"
        self.b2bua.ringer.winner(ringing, leg, picker.extension)
