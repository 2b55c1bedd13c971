"""Following a call through the flow without placing it: `pbx trace` and the panel's preview.

A `Scenario` says how the world answers (who is busy or unregistered, who
picks up, what the caller presses, what the webhook says); `follow` asks the
router step after step, as the engine would, until the call ends, and keeps
every explanation.  Nothing here does I/O either.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from .facts import Call, Contact, Facts, Override, Presence, State
from .numbers import normalise
from .router import Router
from .schedule import zone
from .steps import (
    AskWebhook, Decision, Forward, Menu, Outcome, Play, Queue, Ring, TERMINAL, TraceEntry,
)

MAX_STEPS = 60


@dataclass(frozen=True)
class Scenario:
    busy: frozenset[str] = frozenset()           # extensions in a call
    unregistered: frozenset[str] = frozenset()
    dnd: frozenset[str] = frozenset()
    answer: str | None = None                    # who picks up when rung (extension or number)
    press: tuple[str, ...] = ()                  # what the caller enters at each menu, in turn
    webhook_answer: Any = None                   # None: the webhook does not answer in time
    night: bool | None = None                    # the night switch set by hand
    contacts: Mapping[str, Contact] = field(default_factory=dict)
    learned: Mapping[str, str] = field(default_factory=dict)


def state_for(scenario: Scenario, extensions: Mapping[str, str], *, saved_night: Mapping[str, Override] | None = None,
              saved_overrides: Mapping[str, Override] | None = None,
              saved_positions: Mapping[str, int] | None = None) -> State:
    """The state a trace runs in: everyone registered and free unless the scenario says
    otherwise; the appliance's saved night switch, overrides and positions if given."""
    presence = {}
    for ext in set(extensions) | scenario.busy | scenario.unregistered | scenario.dnd:
        presence[ext] = Presence(registered=ext not in scenario.unregistered, dnd=ext in scenario.dnd,
                                 calls=1 if ext in scenario.busy else 0)
    night = dict(saved_night or {})  # switch id ("" = every switch) -> hand-set state
    if scenario.night is not None:
        night[""] = Override("night" if scenario.night else "day", permanent=True)
    return State(presence=presence, night=night, overrides=dict(saved_overrides or {}),
                 contacts=dict(scenario.contacts), positions=dict(saved_positions or {}),
                 learned={normalise(k): v for k, v in scenario.learned.items()})


@dataclass(frozen=True)
class Trace:
    call: Call
    at: datetime
    timezone: str
    entries: tuple[TraceEntry, ...]
    result: str                                  # answered, voicemail, hangup, ...
    result_details: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        local = self.at.astimezone(zone(self.timezone))
        return {
            "call": {"caller": self.call.caller, "dialled": self.call.dialled, "trunk": self.call.trunk},
            "at": local.isoformat(timespec="seconds"), "timezone": self.timezone,
            "steps": [e.as_dict() for e in self.entries],
            "result": {"kind": self.result, **self.result_details},
        }

    def text(self) -> str:
        local = self.at.astimezone(zone(self.timezone))
        head = (f"Call from {self.call.caller or 'a withheld number'} to {self.call.dialled or '?'}"
                f"{' on trunk ' + self.call.trunk if self.call.trunk else ''}, "
                f"{local:%a %Y-%m-%d %H:%M} {self.timezone}")
        lines = [head]
        for i, e in enumerate(self.entries):
            lines.append(("  " if i == 0 else "→ ") + e.text)
        lines.append(f"Result: {self.result}" + (f" ({self.result_details['text']})"
                                                 if self.result_details.get("text") else ""))
        return "\n".join(lines)


def _ring_outcome(targets: list[str], scenario: Scenario) -> tuple[Outcome, str]:
    answer = normalise(scenario.answer) if scenario.answer else None
    for t in targets:
        if answer is not None and (t == scenario.answer or t == answer):
            return Outcome.ANSWERED, t
    if targets and all(t in scenario.busy for t in targets):
        return Outcome.BUSY, ""
    return Outcome.NO_ANSWER, ""


def follow(router: Router, call: Call, at: datetime, scenario: Scenario, *, seed: int = 0,
           saved_night: Mapping[str, Override] | None = None, saved_overrides: Mapping[str, Override] | None = None,
           saved_positions: Mapping[str, int] | None = None) -> Trace:
    """Walk the call to its end, step by step, as the engine would."""
    facts = Facts(call, at, random.Random(seed))
    state = state_for(scenario, router.known, saved_night=saved_night, saved_overrides=saved_overrides,
                      saved_positions=saved_positions)
    entries: list[TraceEntry] = []
    presses = list(scenario.press)
    decision: Decision = router.first_step(facts, state)
    for _ in range(MAX_STEPS):
        entries.extend(decision.trace)
        if decision.updates.positions:
            state = state.with_positions(decision.updates.positions)
        step = decision.step
        if isinstance(step, TERMINAL):
            break
        kw: dict[str, Any] = {}
        if isinstance(step, Ring):
            outcome, by = _ring_outcome([l.target for l in step.legs], scenario)
            kw["by"] = by
        elif isinstance(step, Forward):
            outcome, by = _ring_outcome([step.number], scenario)
            kw["by"] = by
        elif isinstance(step, Queue):
            ring = router.queue_ring(step, facts, state)
            entries.extend(ring.trace)
            outcome, by = _ring_outcome([l.target for l in ring.step.legs], scenario)
            if outcome is Outcome.BUSY:
                outcome = Outcome.NO_ANSWER
            kw["by"] = by
        elif isinstance(step, Menu):
            if presses:
                kw["digits"] = presses.pop(0)
                outcome = Outcome.DIGITS
            else:
                outcome = Outcome.TIMEOUT
        elif isinstance(step, AskWebhook):
            if scenario.webhook_answer is None:
                outcome = Outcome.TIMEOUT
            else:
                outcome = Outcome.WEBHOOK_ANSWER
                kw["answer"] = scenario.webhook_answer
        elif isinstance(step, Play):
            outcome = Outcome.PLAYED
        else:  # pragma: no cover - every step kind is handled above
            raise TypeError(type(step).__name__)
        decision = router.next_step(step, outcome, facts, state, **kw)
    else:
        entries.append(TraceEntry("hangup", f"stopped after {MAX_STEPS} steps", {"reason": "too many steps"}))
    step = decision.step
    kind = type(step).__name__.lower()
    details: dict[str, Any] = {}
    if kind == "connected":
        kind, details = "answered", {"by": step.by, "text": f"answered by {step.by}"}
    elif kind == "voicemail":
        details = {"box": step.box, "text": f"voicemail box '{step.name}'"}
    elif kind == "hangup":
        details = {"reason": step.reason, "callback": step.callback, "text": step.reason}
    return Trace(call, at, router.config.timezone, tuple(entries), kind, details)
