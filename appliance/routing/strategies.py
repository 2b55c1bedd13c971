"""Hunt strategies: a sort key per strategy, and the ringing plan it produces.

As in Asterisk's app_queue and FreeSWITCH's mod_callcenter, a strategy is
only an order: each member gets a key (its position, calls taken today, when
its last call ended, a random draw, its tier) and members are rung in key
order.  How the ordered members are rung over time is the strategy's shape:

    all         every member from 0 to the ring time              (ringall)
    sequential  one at a time, each for its ring time, N rounds    (linear, roundrobin,
                                                                    random, fewest_calls,
                                                                    longest_idle)
    memory      1, then 1+2, then 1+2+3 ... until the round ends   (memory)
    tiers       tier k joins after k * widen_after and keeps ringing, so the caller
                never loses their place while the group widens     (tiers)
    levels      each tier (level) rings alone for its ring time    (escalation)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from .facts import Presence
from .model import Availability, Member
from .steps import Leg


@dataclass(frozen=True)
class Candidate:
    position: int          # index in the configured member list
    member: Member
    presence: Presence


@dataclass(frozen=True)
class Context:
    start: int             # round robin: the position to start from
    count: int             # members configured
    rng: random.Random


def _position(c: Candidate, x: Context) -> float:
    return c.position


def _roundrobin(c: Candidate, x: Context) -> float:
    return (c.position - x.start) % max(x.count, 1)


def _random(c: Candidate, x: Context) -> float:
    return x.rng.random()


def _fewest_calls(c: Candidate, x: Context) -> tuple[int, int]:
    return (c.presence.calls_today, c.position)


def _longest_idle(c: Candidate, x: Context) -> tuple[float, int]:
    end = c.presence.last_call_end
    return (-math.inf if end is None else end.timestamp(), c.position)


def _tier(c: Candidate, x: Context) -> tuple[int, int]:
    return (c.member.tier, c.position)


SortKey = Callable[[Candidate, Context], object]

# Strategy name -> (sort key, shape).
STRATEGIES: dict[str, tuple[SortKey, str]] = {
    "ringall": (_position, "all"),
    "linear": (_position, "sequential"),
    "memory": (_position, "memory"),
    "roundrobin": (_roundrobin, "sequential"),
    "random": (_random, "sequential"),
    "fewest_calls": (_fewest_calls, "sequential"),
    "longest_idle": (_longest_idle, "sequential"),
    "tiers": (_tier, "tiers"),
    "escalation": (_tier, "levels"),
}

DESCRIPTIONS = {
    "ringall": "ring all",
    "linear": "one by one",
    "memory": "memory hunt",
    "roundrobin": "round robin",
    "random": "random order",
    "fewest_calls": "fewest calls today first",
    "longest_idle": "longest idle first",
    "tiers": "priority tiers",
    "escalation": "escalation",
}


def order(strategy: str, candidates: Sequence[Candidate], ctx: Context) -> list[Candidate]:
    key, _shape = STRATEGIES[strategy]
    return sorted(candidates, key=lambda c: key(c, ctx))


def unavailable_reason(p: Presence, a: Availability, now: datetime) -> str | None:
    """Why a member is skipped, or None if it may be rung.

    `a` is fully resolved (no None fields).  A member in a call is busy only
    when it has reached its simultaneous-call limit (0: no limit).
    """
    if not p.registered and a.skip_unregistered:
        return "unregistered"
    if p.dnd and a.skip_dnd:
        return "dnd"
    if a.max_calls and p.calls >= a.max_calls and a.skip_busy:
        return "busy"
    if a.wrapup and p.calls == 0 and p.last_call_end is not None:
        if (now - p.last_call_end).total_seconds() < a.wrapup:
            return "wrap-up"
    return None


def resolve(member: Availability, group: Availability) -> Availability:
    """A member's availability settings, with the group's filling the gaps."""
    return Availability(
        group.skip_busy if member.skip_busy is None else member.skip_busy,
        group.skip_dnd if member.skip_dnd is None else member.skip_dnd,
        group.skip_unregistered if member.skip_unregistered is None else member.skip_unregistered,
        group.wrapup if member.wrapup is None else member.wrapup,
        group.max_calls if member.max_calls is None else member.max_calls,
    )


def plan(strategy: str, ordered: Sequence[Candidate], *, ring_time: int, rounds: int,
         widen_after: int, confirm: bool) -> tuple[tuple[Leg, ...], int]:
    """The legs for members already in strategy order, and the step's length in seconds."""
    shape = STRATEGIES[strategy][1]
    rounds = max(rounds, 1)

    def leg(c: Candidate, start: int, stop: int) -> Leg:
        m = c.member
        return Leg(m.target, start, stop, m.external,
                   (confirm if m.confirm is None else m.confirm) if m.external else False, m.branch)

    def rt(c: Candidate) -> int:
        return c.member.ring_time or ring_time

    legs: list[Leg] = []
    if shape == "all":
        legs = [leg(c, 0, ring_time) for c in ordered]
        return tuple(legs), ring_time
    if shape == "tiers":
        tiers = sorted({c.member.tier for c in ordered})
        join = {t: k * widen_after for k, t in enumerate(tiers)}
        total = max(ring_time, join[tiers[-1]] + widen_after) if tiers else ring_time
        legs = [leg(c, join[c.member.tier], total) for c in ordered]
        return tuple(legs), total
    t = 0
    for _ in range(rounds):
        if shape == "sequential":
            for c in ordered:
                legs.append(leg(c, t, t + rt(c)))
                t += rt(c)
        elif shape == "memory":
            starts = []
            for c in ordered:
                starts.append(t)
                t += rt(c)
            legs.extend(leg(c, s, t) for c, s in zip(ordered, starts))
        elif shape == "levels":
            levels: dict[int, list[Candidate]] = {}
            for c in ordered:
                levels.setdefault(c.member.tier, []).append(c)
            for tier in sorted(levels):
                length = max(rt(c) for c in levels[tier])
                legs.extend(leg(c, t, t + length) for c in levels[tier])
                t += length
        else:  # pragma: no cover - the table above names every shape
            raise ValueError(f"unknown strategy shape {shape!r}")
    return tuple(legs), t
