"""Calling missed customers back automatically: the rules, as pure functions (time, cases and presence passed in).

Each turn of the missed service's timer asks `plan` what to do with the open
cases, oldest first.  A case is called back when all of these hold:

- the `missed.auto_callback` setting is on;
- the office is open: the `missed.working_hours` schedule is open now, or,
  without one, `DEFAULT_HOURS` (Monday to Friday, 09:00-18:00, office time);
  a night switch set to night closes it too;
- it has a number (a withheld caller cannot be called);
- no attempt of it is under way, fewer than `attempts` were made, and the
  last one started at least `spacing` ago;
- the customer is not on a call with the office right now;
- an agent is free: the case's person (its assignee, the caller's personal
  manager when it has none), else, with `missed.callback_anyone`, any free
  member of the group or queue the call was for.  Free means registered, not
  on do-not-disturb, on no call, not ringing, past their wrap-up, and not
  already given another callback (one outstanding callback per agent).

The answer is one `Dial` or `Wait` per open case; a `Wait` says why in words
(for the log and the tests).  `attempt_result` reads how a callback call went
from its record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

DEFAULT_ATTEMPTS = 3
DEFAULT_SPACING_MINUTES = 10.0
# Without a working-hours schedule, automatic callbacks ring only on weekdays
# in these office-local hours: never at night, never at a weekend.
DEFAULT_HOURS = (range(0, 5), time(9, 0), time(18, 0))


@dataclass(frozen=True)
class Settings:
    enabled: bool = False
    attempts: int = DEFAULT_ATTEMPTS
    spacing: timedelta = timedelta(minutes=DEFAULT_SPACING_MINUTES)
    anyone: bool = True           # when the case's person is not free, any free member of the call's group


@dataclass(frozen=True)
class Agent:
    """An extension as the engine sees it now (the presence routing uses, plus ringing legs)."""

    ext: str
    registered: bool = True
    dnd: bool = False
    calls: int = 0
    ringing: bool = False
    last_call_end: datetime | None = None
    wrapup: int = 0               # seconds after a call before it is rung again (routing's wrap-up)


@dataclass(frozen=True)
class Attempt:
    """One automatic callback of a case: started at `at`, `result` None while it is under way."""

    case_id: int
    at: datetime
    ext: str
    call_id: str | None = None
    result: str | None = None
    ok: bool = False

    @property
    def pending(self) -> bool:
        return self.result is None


@dataclass(frozen=True)
class Waiting:
    """An open case as the planner needs it."""

    id: int
    caller: str                   # normalised; "" when withheld
    person: str | None            # the case's assignee (the caller's manager, else the default)
    group: tuple[str, ...] = ()   # the members of the group or queue the call was for, in order
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Dial:
    case_id: int
    ext: str
    number: str


@dataclass(frozen=True)
class Wait:
    case_id: int
    why: str


def not_free(agent: Agent | None, now: datetime) -> str | None:
    """Why an agent cannot take a callback now, None when it can."""
    if agent is None:
        return "not an extension"
    if not agent.registered:
        return "no phone registered"
    if agent.dnd:
        return "paused (do not disturb)"
    if agent.calls:
        return "on a call"
    if agent.ringing:
        return "ringing"
    if agent.wrapup and agent.last_call_end is not None and (now - agent.last_call_end).total_seconds() < agent.wrapup:
        return "in wrap-up"
    return None


def default_hours_open(now: datetime, tz: str) -> bool:
    days, start, end = DEFAULT_HOURS
    local = now.astimezone(ZoneInfo(tz))
    return local.weekday() in days and start <= local.time() < end


def due(case: Waiting, settings: Settings, now: datetime) -> str | None:
    """Why a case is not to be called back now by its own history, None when it is due."""
    if not case.caller:
        return "the number is withheld"
    if any(a.pending for a in case.attempts):
        return "an attempt is under way"
    if len(case.attempts) >= settings.attempts:
        return f"all {settings.attempts} attempts were made"
    if case.attempts:
        next_at = max(a.at for a in case.attempts) + settings.spacing
        if now < next_at:
            return f"the next attempt is due at {next_at.isoformat(timespec='seconds')}"
    return None


def plan(now: datetime, cases: Sequence[Waiting], agents: Mapping[str, Agent], on_call: Iterable[str],
         office_open: bool, settings: Settings) -> list[Dial | Wait]:
    """What to do with each open case now (oldest first: the earlier case gets the free agent)."""
    if not settings.enabled:
        return [Wait(c.id, "automatic callback is off") for c in cases]
    if not office_open:
        return [Wait(c.id, "outside working hours") for c in cases]
    talking = set(on_call)
    # One outstanding callback per agent: those under way hold theirs.
    taken = {a.ext for c in cases for a in c.attempts if a.pending}
    out: list[Dial | Wait] = []
    for case in cases:
        why = due(case, settings, now)
        if why is None and case.caller in talking:
            why = "the customer is on a call with the office"
        if why is not None:
            out.append(Wait(case.id, why))
            continue
        ext, why = _agent_for(case, agents, taken, settings, now)
        if ext is None:
            out.append(Wait(case.id, why))
            continue
        taken.add(ext)
        out.append(Dial(case.id, ext, case.caller))
    return out


def _agent_for(case: Waiting, agents: Mapping[str, Agent], taken: set[str], settings: Settings,
               now: datetime) -> tuple[str | None, str]:
    def free(ext: str) -> str | None:
        return "calling back another case" if ext in taken else not_free(agents.get(ext), now)

    person_why = None
    if case.person:
        person_why = free(case.person)
        if person_why is None:
            return case.person, ""
    if settings.anyone:
        for ext in case.group:
            if ext != case.person and free(ext) is None:
                return ext, ""
    if case.person:
        rest = ", nor anyone of the group" if settings.anyone and case.group else ""
        return None, f"{case.person} is {person_why}{rest}"
    return None, "nobody of the group is free" if settings.anyone and case.group else "nobody to call back"


def attempt_result(record: Mapping | None) -> tuple[str, bool] | None:
    """How a finished callback call went (words, whether the customer was reached); None while it is not over."""
    if record is None or record.get("outcome") in (None, "", "in progress"):
        return None
    if record.get("answered_by") and not _failure(record):
        return "the customer answered", True
    failure = _failure(record)
    if failure:
        return failure, False
    return str(_end_reason(record) or record.get("outcome") or "failed"), False


def _failure(record: Mapping) -> str | None:
    for step in reversed(record.get("path") or []):
        if isinstance(step, dict) and step.get("kind") == "origination_failed":
            return str(step.get("reason") or step.get("side") or "failed")
    return None


def _end_reason(record: Mapping) -> str | None:
    path = record.get("path") or []
    end = path[-1] if path and isinstance(path[-1], dict) and path[-1].get("kind") == "end" else {}
    return end.get("reason")


def group_members(path: Sequence, groups: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The members of the last group or queue a call's path went to (`groups`: "group:sales" -> members)."""
    for step in reversed(path or []):
        if isinstance(step, dict) and step.get("dest") in groups:
            return tuple(groups[step["dest"]])
    return ()


def whisper(name: str, minutes: int, english: bool) -> str:
    """What the agent hears before the customer is called: who, and how long ago they called."""
    if minutes >= 90:
        hours = round(minutes / 60)
        if english:
            return f"Missed call: {name}, called {hours} hours ago."
        return f"Пропущений дзвінок: {name}, дзвонили {hours} {_plural_uk(hours, 'годину', 'години', 'годин')} тому."
    minutes = max(1, minutes)
    if english:
        return f"Missed call: {name}, called {minutes} minute{'s' if minutes != 1 else ''} ago."
    return f"Пропущений дзвінок: {name}, дзвонили {minutes} {_plural_uk(minutes, 'хвилину', 'хвилини', 'хвилин')} тому."


def _plural_uk(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many
