"""What routing is told about a call and the world around it.

`Facts` is the call itself plus the clock and the random source; `State` is
everything the appliance knows at that moment (who is free, the night switch,
overrides, contacts, round-robin positions).  Both are plain frozen data so a
decision can be reproduced: `pbx trace` builds them by hand.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Iterable, Mapping

from .numbers import normalise


@dataclass(frozen=True)
class Call:
    caller: str            # as received; normalised on the way in
    dialled: str
    trunk: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "caller", normalise(self.caller))
        object.__setattr__(self, "dialled", normalise(self.dialled))


@dataclass(frozen=True)
class Facts:
    call: Call
    now: datetime          # aware
    rng: random.Random

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("Facts.now must be an aware datetime")


@dataclass(frozen=True)
class Presence:
    """An extension as the appliance sees it right now.

    `registered`, `calls`, `last_call_end`, `calls_today` are the system's state;
    `dnd` and `paused` are the person's own status (kept apart, as mod_callcenter
    does): a paused agent (on a break, at lunch, in after-call work they set
    themselves) is not rung by groups and queues, but still by a direct call.
    """

    registered: bool = True
    dnd: bool = False
    paused: bool = False
    calls: int = 0                       # calls in progress
    last_call_end: datetime | None = None
    calls_today: int = 0


IDLE = Presence()


@dataclass(frozen=True)
class Override:
    """A hand-set state of a schedule ("open"/"closed") or night switch ("day"/"night").

    Temporary overrides last until the schedule's next boundary after `since`
    (FreePBX's time condition semantics); permanent ones until removed.
    """

    state: str
    permanent: bool = False
    since: datetime | None = None


@dataclass(frozen=True)
class Contact:
    name: str = ""
    manager: str | None = None           # extension number
    vip: bool = False
    company: str = ""


@dataclass(frozen=True)
class State:
    presence: Mapping[str, Presence] = field(default_factory=dict)
    night: Mapping[str, Override] = field(default_factory=dict)       # switch id ("" = all)
    overrides: Mapping[str, Override] = field(default_factory=dict)   # schedule id
    contacts: Mapping[str, Contact] = field(default_factory=dict)     # normalised number
    learned: Mapping[str, str] = field(default_factory=dict)          # caller -> last extension that answered
    positions: Mapping[str, int] = field(default_factory=dict)        # group/queue id -> round-robin index
    answer_times: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # queue id -> recent waits
    links: Mapping[str, bool] = field(default_factory=dict)  # branch trunk -> its link is up (absent: up)

    def presence_of(self, ext: str) -> Presence:
        return self.presence.get(ext, IDLE)

    def night_override(self, switch: str) -> Override | None:
        o = self.night.get(switch)
        return o if o is not None else self.night.get("")

    def with_positions(self, positions: Mapping[str, int]) -> "State":
        return replace(self, positions={**self.positions, **positions})


def saved_switches(night: object, overrides: object) -> tuple[dict[str, Override], dict[str, Override]]:
    """The night switches' and schedules' hand-set states, from what the appliance saved.

    `night` is either one state for every switch (`{"state": "night",
    "permanent": true, "since": ISO}`) or such a state per switch id;
    `overrides` maps a schedule id to one.  What does not read as a state is
    left out: a broken row must not change how calls are routed."""
    def one(raw: object) -> Override | None:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("state"), str):
            return None
        since = raw.get("since")
        try:
            when = datetime.fromisoformat(since) if isinstance(since, str) and since else None
        except ValueError:
            when = None
        if when is not None and when.tzinfo is None:
            when = None  # a naive time cannot be placed against the schedule
        return Override(raw["state"], bool(raw.get("permanent")), when)

    switches: dict[str, Override] = {}
    if isinstance(night, Mapping):
        if "state" in night:
            if (o := one(night)) is not None:
                switches[""] = o
        else:
            switches = {str(k): o for k, v in night.items() if (o := one(v)) is not None}
    schedules = {str(k): o for k, v in overrides.items() if (o := one(v)) is not None} \
        if isinstance(overrides, Mapping) else {}
    return switches, schedules


def contacts_by_number(rows: Iterable[tuple[str, Contact]]) -> dict[str, Contact]:
    """Index contacts by normalised number, so 067..., 38067... and +38067... meet."""
    return {normalise(number): contact for number, contact in rows if normalise(number)}
