"""Calls from desk phones: extensions, groups by number, feature codes, outside calls within the dial rules, pickup.

A collaborator of the B2BUA (appliance/engine/b2bua.py), created by it and called by name;
everything here runs on the engine thread.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from appliance.routing.desk import desk_call
from appliance.routing.facts import Call as CallFacts
from appliance.routing.numbers import normalise
from appliance.routing.steps import Feature, Forward, Pickup, Refuse, Ring, Routed

from .sipmsg import Invite
from .session import CallOutcome, Leg, LegState, Session

log = logging.getLogger("appliance.engine.b2bua")


class Desk:
    """The B2BUA's calls from desk phones."""

    def __init__(self, b2bua: Any):
        self.b2bua = b2bua
        # What carries out each step routing can return for a desk phone's call.
        self.carry_out: dict[type, Callable[[Session, Any], None]] = {
            Refuse: self.refuse, Pickup: self._pickup, Feature: self._feature, Routed: self._routed,
            Ring: self._ring, Forward: self._ring,
        }
        # Feature codes followed by an extension (`*31101`): code -> handler(session, code, extension).
        self.extension_codes: dict[str, Callable[[Session, str, str], Any]] = {}

    def from_phone(self, a: Leg, inv: Invite, ext: str) -> None:
        """Routing says what the number means (desk_call); the step is carried out here."""
        number = inv.ruri_user
        row = self.b2bua.extensions[ext]
        s = Session(self.b2bua, a, "internal", ext, row.get("name") or "", number, extension=ext)
        self.b2bua.begin(s)
        active = sum(1 for o in self.b2bua.sessions.values()
                     if o is not s and o.direction == "outbound" and o.extension == ext and not o.ended)
        step = desk_call(
            ext, number, extensions=self.b2bua.extensions, features=self.b2bua.feature_codes,
            extension_codes=self.extension_codes,
            is_office_number=lambda n: self._office_number(ext, n),
            rules=json.loads(row["dial_rules"]) if row.get("dial_rules") else None,
            active=active, limit=row.get("max_outbound"), branches=self.b2bua.trunks.branch_ranges())
        self.carry_out[type(step)](s, step)

    def _office_number(self, ext: str, number: str) -> bool:
        router = self.b2bua.router
        route = router.match(CallFacts(ext, number)) if router else None
        return route is not None and bool(route.numbers) and normalise(number) in route.numbers

    def _feature(self, s: Session, step: Feature) -> None:
        s.note("feature", code=step.code)
        handler = self.b2bua.feature_codes.get(step.code)
        if handler is not None:
            return handler(s, step.code)
        code = next(c for c in self.extension_codes if step.code.startswith(c))
        self.extension_codes[code](s, code, step.code[len(code):])

    def _pickup(self, s: Session, step: Pickup) -> None:
        self.pickup(s, step.ext) if step.ext else self.group_pickup(s)

    def _routed(self, s: Session, step: Routed) -> None:
        self.b2bua.route_first(s)

    def _ring(self, s: Session, step: Ring | Forward) -> None:
        if isinstance(step, Forward):
            s.direction = "outbound"
            s.dialled = step.number
        s.step = step
        self.b2bua.execute(s, step)

    def refuse(self, s: Session, r: Refuse) -> None:
        s.outcome, s.end_reason = CallOutcome.REFUSED, r.reason
        s.note("refused", status=r.status, reason=r.reason)
        self.b2bua.emit("CallRefused", s.id, reason=r.reason, status=r.status)
        self.b2bua.end(s, code=r.status, reason=r.reason, warning=r.reason)

    def pickup(self, s: Session, ext: str) -> None:
        """**EXT: take a call ringing at extension EXT."""
        for other in list(self.b2bua.sessions.values()):
            if other is s or other.ended or other.peer is not None or other.ring is None:
                continue
            if any(l.target == ext for l in other.legs.values()):
                return self._take(other, s)
        self.refuse(s, Refuse(404, f"Nothing is ringing at extension {ext}"))

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
        self.refuse(s, Refuse(404, "No call is ringing in your groups"))

    def _take(self, ringing: Session, picker: Session) -> None:
        leg = picker.a
        # The picker's own call becomes the ringing call's answering leg.
        picker.ended = True
        picker.outcome = CallOutcome.PICKUP
        self.b2bua.sessions.pop(picker.id, None)
        # The picker's call is now a leg of the ringing call, whose record tells it.
        pid = picker.id
        self.b2bua.recorder.submit(lambda st: st.forget_call(pid))
        leg.session = ringing
        leg.role = "b"
        ringing.note("pickup", by=picker.extension)
        self.b2bua.emit("CallPickedUp", ringing.id, by=picker.extension, picker=pid)
        picker.a_answered = True
        self.b2bua.answer_a(picker)
        leg.state = LegState.ANSWERED
        self.b2bua.ringer.winner(ringing, leg, picker.extension)
