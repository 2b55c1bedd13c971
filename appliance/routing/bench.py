"""`pbx bench routing`: decisions per second on a 50-extension, 10-group office.

The configuration is built here, in memory, so the figure does not depend on
an owner's data.  Each call is decided from its first step through every
failure until it ends (voicemail or hang up), with a fresh mix of callers,
dialled numbers, times (day, night, weekend, holiday) and presence, so the
figure covers schedules, the night switch, personal managers, every strategy,
menus and the duty roster.  The clock is read only to time the whole run.
"""

from __future__ import annotations

import random
import time as wallclock
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .config import parse
from .facts import Call, Contact, Facts, Presence, State
from .model import STRATEGIES
from .router import Router
from .steps import TERMINAL, AskWebhook, Forward, Menu, Outcome, Play, Queue, Ring


def office(extensions: int = 50, groups: int = 10) -> tuple[dict[str, Any], dict[str, str]]:
    """A routing section and its extensions: `groups` hunt groups over `extensions` extensions."""
    exts = {str(100 + i): f"Desk {i + 1}" for i in range(extensions)}
    numbers = list(exts)
    strategies = [s for s in STRATEGIES]
    section: dict[str, Any] = {
        "timezone": "Europe/Kyiv",
        "routes": [
            {"name": f"Line {i + 1}", "numbers": [f"04420000{i:02d}"], "to": "manager:personal"}
            for i in range(groups)
        ] + [{"name": "Anonymous", "callers": ["anonymous"], "to": "announcement:closed"},
             {"name": "Other", "to": "menu:main"}],
        "extension_defaults": {"ring_time": 20, "on_fail": "voicemail"},
        "groups": {},
        "queues": {"support": {"name": "Support", "strategy": "longest_idle", "members": numbers[:5],
                               "on_fail": "voicemail:common"}},
        "menus": {"main": {"name": "Main", "prompt": "main", "direct_dial": True, "on_fail": "group:g0",
                           "options": {str(i): f"group:g{i}" for i in range(1, min(groups, 10))}}},
        "managers": {"personal": {"name": "Personal manager", "learn": True, "next": "schedule:hours"}},
        "schedules": {"hours": {"name": "Office hours", "hours": {"mon-fri": "09:00-18:00", "sat": "10:00-14:00"},
                                "holidays": ["01-01", "2025-06-09"], "open": "night:office",
                                "closed": "duty:after_hours"}},
        "night": {"office": {"name": "Office", "day": "menu:main", "night": "duty:after_hours"}},
        "duty": {"after_hours": {"name": "After hours", "nobody": "announcement:closed",
                                 "on_fail": "voicemail:common",
                                 "roster": [{"weekdays": "mon-fri", "number": "+380671110001"},
                                            {"weekdays": "sat", "number": "+380671110002"}]}},
        "announcements": {"closed": {"name": "Closed", "prompt": "closed", "then": "voicemail:common"}},
        "voicemail": {"common": {"name": "Common"}},
    }
    per = max(extensions // groups, 1)
    for g in range(groups):
        members: list[Any] = [
            {"ext": int(n), "tier": 1 + (j % 3)} for j, n in enumerate(numbers[g * per:(g + 1) * per])
        ]
        members.append({"number": f"+38050111{g:04d}", "tier": 3})
        section["groups"][f"g{g}"] = {
            "name": f"Group {g}", "strategy": strategies[g % len(strategies)], "members": members,
            "ring_time": 20, "rounds": 2, "on_fail": "queue:support" if g else "voicemail:common",
        }
    section["queues"]["support"]["on_fail"] = "voicemail:common"
    return section, exts


@dataclass(frozen=True)
class Result:
    decisions: int
    calls: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.decisions / self.seconds if self.seconds else 0.0


def _outcome(step, rng: random.Random) -> tuple[Outcome, dict[str, Any]]:
    if isinstance(step, (Ring, Forward)):
        r = rng.random()
        if r < 0.35 and isinstance(step, Ring) and step.legs:
            return Outcome.ANSWERED, {"by": step.legs[int(r * 100) % len(step.legs)].target}
        return (Outcome.BUSY if r > 0.9 else Outcome.NO_ANSWER), {}
    if isinstance(step, Menu):
        if rng.random() < 0.6:
            return Outcome.DIGITS, {"digits": rng.choice("1234567890")}
        return Outcome.TIMEOUT, {}
    if isinstance(step, Queue):
        return Outcome.NO_ANSWER, {}
    if isinstance(step, AskWebhook):
        return Outcome.TIMEOUT, {}
    if isinstance(step, Play):
        return Outcome.PLAYED, {}
    raise TypeError(type(step).__name__)


def run(calls: int = 20000, seed: int = 1) -> Result:
    section, exts = office()
    router = Router(parse(section, exts))
    rng = random.Random(seed)
    base = datetime(2025, 3, 3, tzinfo=timezone.utc)  # a Monday
    numbers = list(exts)
    contacts = {f"+38067{i:07d}": Contact(f"Customer {i}", numbers[i % len(numbers)], vip=i % 7 == 0)
                for i in range(0, 2000, 3)}
    # Prepare the inputs first, so the timing covers routing only.
    inputs = []
    for i in range(calls):
        presence = {n: Presence(registered=rng.random() > 0.1, dnd=rng.random() < 0.05,
                                calls=1 if rng.random() < 0.2 else 0, calls_today=rng.randrange(20),
                                last_call_end=base + timedelta(minutes=rng.randrange(600)))
                    for n in rng.sample(numbers, 15)}
        state = State(presence=presence, contacts=contacts)
        call = Call(f"+38067{rng.randrange(2000):07d}" if rng.random() < 0.95 else "",
                    f"+3804420000{rng.randrange(12):02d}")
        now = base + timedelta(minutes=rng.randrange(60 * 24 * 14))
        inputs.append((Facts(call, now, random.Random(i)), state))
    decisions = 0
    start = wallclock.perf_counter()
    for facts, state in inputs:
        d = router.first_step(facts, state)
        decisions += 1
        steps = 0
        while not isinstance(d.step, TERMINAL) and steps < 40:
            outcome, kw = _outcome(d.step, facts.rng)
            d = router.next_step(d.step, outcome, facts, state, **kw)
            decisions += 1
            steps += 1
    seconds = wallclock.perf_counter() - start
    return Result(decisions, calls, seconds)
