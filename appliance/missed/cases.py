"""A missed-call case's lifecycle, as pure functions: no store, no clock (`now` is passed in).

A customer call nobody answered opens a case for the caller's number; more
calls from that number while it is open join it.  It is assigned (the
caller's personal manager, else a default), may be reassigned, and is closed
by a call (an extension called the number back and talked long enough, the
customer called again and someone answered, a callback succeeded) or by a
person with a note.  A short abandon (the caller hung up while ringing
within a few seconds) is counted apart: a case born closed, flagged short.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from appliance.routing.numbers import normalise


class CaseError(ValueError):
    """A change the case cannot take: closing a closed case, assigning to nobody."""


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Ending(enum.StrEnum):
    """How a case ended (`missed_cases.ended_how`)."""

    CALLED_BACK = "called back"       # an extension's outbound call, answered, long enough
    ANSWERED = "answered"             # the customer called again and someone answered
    CALLBACK = "callback"             # the appliance's automatic callback succeeded
    DONE = "done"                     # a person closed it, with a note
    SHORT_ABANDON = "short abandon"   # never open: counted apart


class CallKind(enum.StrEnum):
    """What a finished call means for the cases."""

    MISSED = "missed"
    SHORT_ABANDON = "short abandon"
    CALLED_BACK = "called back"
    ANSWERED = "answered"
    OTHER = "other"


@dataclass(frozen=True)
class Rules:
    callback_seconds: float = 10.0       # a call back counts when it talked at least this long
    short_abandon_seconds: float = 5.0   # a caller who gave up ringing sooner is a short abandon


# The end reasons the engine writes when the caller hangs up before anyone answered.
CALLER_GAVE_UP = frozenset({"caller hung up", "caller gave up"})
MISSED_OUTCOMES = frozenset({"missed", "voicemail", "interrupted"})


@dataclass(frozen=True)
class Call:
    """What the rules read of a finished `calls` record."""

    id: str
    direction: str
    number: str            # the customer's, normalised: the caller inbound, the dialled number outbound
    dialled: str
    at: str                # when it ended
    outcome: str
    answered_by: str | None
    extension: str | None  # the extension that placed an outbound call
    wait_s: float
    talk_s: float
    reason: str            # why it ended (the path's last step)
    gave_up: str           # where: the kind of the last step before the end

    @classmethod
    def from_record(cls, row: Mapping[str, Any], path: list[dict]) -> "Call":
        direction = row.get("direction") or ""
        steps = [p for p in path if isinstance(p, dict)]
        end = steps[-1] if steps and steps[-1].get("kind") == "end" else {}
        before = [p for p in steps if p.get("kind") != "end"]
        number = row.get("dialled") if direction == "outbound" else row.get("caller")
        return cls(
            id=str(row["id"]), direction=direction, number=normalise(number or ""),
            dialled=row.get("dialled") or "", at=row.get("ended_at") or row.get("started_at") or "",
            outcome=row.get("outcome") or "", answered_by=row.get("answered_by") or None,
            extension=row.get("extension") or None, wait_s=float(row.get("wait_s") or 0.0),
            talk_s=float(row.get("talk_s") or 0.0), reason=str(end.get("reason") or ""),
            gave_up=str(before[-1].get("kind") or "") if before else "",
        )


def classify(call: Call, rules: Rules) -> CallKind:
    if call.direction == "inbound":
        if call.answered_by:
            return CallKind.ANSWERED
        if call.outcome not in MISSED_OUTCOMES:
            return CallKind.OTHER
        if (call.outcome == "missed" and call.reason in CALLER_GAVE_UP
                and call.wait_s < rules.short_abandon_seconds):
            return CallKind.SHORT_ABANDON
        return CallKind.MISSED
    if (call.direction == "outbound" and call.extension and call.answered_by
            and call.talk_s >= rules.callback_seconds):
        return CallKind.CALLED_BACK
    return CallKind.OTHER


@dataclass(frozen=True)
class Case:
    id: int | None
    caller: str
    dialled: str
    status: CaseStatus
    opened_at: str
    last_at: str
    count: int = 1
    short: bool = False
    waited_s: float = 0.0
    gave_up: str = ""
    assigned_to: str | None = None
    assigned_at: str | None = None
    assigned_by: str | None = None
    closed_at: str | None = None
    ended_how: Ending | None = None
    closed_by: str | None = None
    closed_call: str | None = None
    note: str | None = None
    took_s: float | None = None

    @property
    def is_open(self) -> bool:
        return self.status == CaseStatus.OPEN

    def as_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["short"] = int(self.short)
        row["status"] = str(self.status)
        row["ended_how"] = None if self.ended_how is None else str(self.ended_how)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Case":
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in row.items() if k in names}
        data["status"] = CaseStatus(data["status"])
        data["short"] = bool(data.get("short"))
        data["ended_how"] = Ending(data["ended_how"]) if data.get("ended_how") else None
        return cls(**data)


def _iso(now: datetime) -> str:
    return now.isoformat(timespec="milliseconds")


def aware(iso: str) -> datetime:
    # The store writes UTC with its offset; a time without one is read as UTC too.
    at = datetime.fromisoformat(iso)
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def open_case(call: Call, assigned_to: str | None, now: datetime) -> Case:
    """A new case for a missed call, assigned by the system (None: nobody known yet)."""
    return Case(id=None, caller=call.number, dialled=call.dialled, status=CaseStatus.OPEN,
                opened_at=call.at or _iso(now), last_at=call.at or _iso(now), waited_s=call.wait_s,
                gave_up=call.gave_up, assigned_to=assigned_to,
                assigned_at=_iso(now) if assigned_to else None, assigned_by="system" if assigned_to else None)


def short_abandon(call: Call, now: datetime) -> Case:
    """A short abandon: recorded as a case that is closed from the start, so no one is asked to act."""
    at = call.at or _iso(now)
    return Case(id=None, caller=call.number, dialled=call.dialled, status=CaseStatus.CLOSED, opened_at=at,
                last_at=at, short=True, waited_s=call.wait_s, gave_up=call.gave_up, closed_at=at,
                ended_how=Ending.SHORT_ABANDON, closed_by="system", took_s=0.0)


def join(case: Case, call: Call) -> Case:
    """Another call from the number while the case is open."""
    if not case.is_open:
        raise CaseError(f"case {case.id} is closed: a new call opens a new case")
    return dataclasses.replace(case, count=case.count + 1, last_at=call.at or case.last_at,
                               waited_s=round(case.waited_s + call.wait_s, 3), gave_up=call.gave_up or case.gave_up)


def assign(case: Case, extension: str, by: str, now: datetime) -> Case:
    if not case.is_open:
        raise CaseError(f"case {case.id} is closed")
    if not extension:
        raise CaseError("say whom to assign the case to (an extension)")
    return dataclasses.replace(case, assigned_to=extension, assigned_at=_iso(now), assigned_by=by)


def close(case: Case, how: Ending, by: str, now: datetime, *, note: str | None = None,
          call_id: str | None = None) -> Case:
    if not case.is_open:
        raise CaseError(f"case {case.id} is already closed ({case.ended_how}, by {case.closed_by})")
    took = max(0.0, (now - aware(case.opened_at)).total_seconds())
    return dataclasses.replace(case, status=CaseStatus.CLOSED, closed_at=_iso(now), ended_how=how,
                               closed_by=by, note=note, closed_call=call_id, took_s=round(took, 3))


def closing(call: Call, kind: CallKind) -> tuple[Ending, str] | None:
    """How and by whom a finished call closes the number's open case; None when it does not."""
    if kind == CallKind.CALLED_BACK:
        return Ending.CALLED_BACK, call.extension or ""
    if kind == CallKind.ANSWERED:
        return Ending.ANSWERED, call.answered_by or ""
    return None


def describe(case: Case) -> str:
    """One line for `pbx missed`."""
    who = case.caller or "withheld number"
    times = f", {case.count} calls" if case.count > 1 else ""
    if case.is_open:
        to = f", assigned to {case.assigned_to}" if case.assigned_to else ", not assigned"
        return f"#{case.id} {who} since {case.opened_at}{times}{to}"
    how = f"{case.ended_how}" + (f" by {case.closed_by}" if case.closed_by and case.closed_by != "system" else "")
    note = f": {case.note}" if case.note else ""
    return f"#{case.id} {who} {case.opened_at}{times}, closed ({how}){note}"
