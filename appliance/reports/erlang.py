"""Erlang C: how many agents a call load needs for a service level.

Traffic `a` in Erlangs is calls per hour times the average handle time in
hours.  With `n` agents and callers who wait (and do not give up), Erlang C
gives the probability that a call waits at all, and from it the share of
calls answered within `t` seconds:

    SL = 1 - C(n, a) * exp(-(n - a) * t / aht)

C is computed from Erlang B by its recursion B(0) = 1,
B(k) = a B(k-1) / (k + a B(k-1)), which stays between 0 and 1 at every
step, so it neither overflows (a^n / n! does, for n beyond ~170) nor loses
precision; then C = n B / (n - a (1 - B)).
"""

from __future__ import annotations

import math

MAX_AGENTS = 1000


def erlang_b(agents: int, traffic: float) -> float:
    """Probability that a call finds every one of `agents` busy, with no queue (blocking)."""
    if agents < 0 or traffic < 0:
        raise ValueError("agents and traffic must not be negative")
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a call has to wait, with `agents` and `traffic` Erlangs; 1 when agents <= traffic."""
    if agents <= traffic:
        return 1.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1 - b))


def service_level(agents: int, traffic: float, aht_s: float, within_s: float) -> float:
    """Share of calls answered within `within_s` seconds (aht_s: the average handle time)."""
    if traffic <= 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    return 1.0 - erlang_c(agents, traffic) * math.exp(-(agents - traffic) * within_s / aht_s)


def agents_needed(calls_per_hour: float, aht_s: float, target: float, within_s: float) -> int:
    """The fewest agents that answer `target` (0..1) of the calls within `within_s` seconds."""
    if calls_per_hour <= 0 or aht_s <= 0:
        return 0
    traffic = calls_per_hour * aht_s / 3600.0
    n = max(1, math.floor(traffic) + 1)
    while service_level(n, traffic, aht_s, within_s) < target:
        n += 1
        if n > MAX_AGENTS:
            raise ValueError(f"more than {MAX_AGENTS} agents for {traffic:.1f} Erlangs")
    return n
