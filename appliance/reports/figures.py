"""The figures of a report, from the sums the store gives (appliance.store.reports): pure functions.

A `Tally` holds additive sums (calls, answered, seconds waited ...) and the
answered calls' waits as a histogram of whole seconds (rounded up), so tallies
of hours add up to days and weekdays, and the 90th percentile of the wait is
exact to the second: rounding up keeps the order of the waits, so the
histogram's nearest-rank percentile is the true one rounded up.

Definitions (docs/reports.md): *offered* inbound calls are those answered
plus those missed; a *short abandon* (the caller hung up within the
missed-call rules' seconds) is counted apart and is neither.  The service
level is the share of offered calls answered within N seconds.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any, Callable, Iterable, Mapping

PERCENTILE = 0.9

# Where a lost caller was when they gave up, by the kind of the path's last step.
GAVE_UP_AT = {"menu": "menu", "queue": "queue", "ring": "ringing", "forward": "ringing"}
WHERE = ("menu", "queue", "ringing", "other")


@dataclass(frozen=True)
class Tally:
    calls_in: int = 0
    calls_out: int = 0
    answered: int = 0
    wait_sum: float = 0.0
    talk_sum: float = 0.0
    within: int = 0
    lost: int = 0          # nobody answered (short abandons included)
    abandoned: int = 0     # of the lost: the caller hung up (short abandons included)
    short: int = 0
    voicemail: int = 0
    out_answered: int = 0
    out_talk_sum: float = 0.0
    waits: tuple[tuple[int, int], ...] = field(default=())   # (whole seconds, answered calls), ascending

    @classmethod
    def of(cls, measures: Iterable[Any], waits: Mapping[int, int] | None = None) -> "Tally":
        names = [f.name for f in fields(cls) if f.name != "waits"]
        values = [v or 0 for v in measures]
        return cls(**dict(zip(names, values)), waits=tuple(sorted((waits or {}).items())))

    def __add__(self, other: "Tally") -> "Tally":
        merged: Counter = Counter(dict(self.waits))
        merged.update(dict(other.waits))
        sums = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name != "waits"}
        return Tally(**sums, waits=tuple(sorted(merged.items())))

    @property
    def missed(self) -> int:
        return self.lost - self.short

    @property
    def offered(self) -> int:
        return self.answered + self.missed

    @property
    def avg_wait(self) -> float | None:
        return self.wait_sum / self.answered if self.answered else None

    @property
    def p90_wait(self) -> int | None:
        """The 90th percentile of the answered calls' wait, nearest rank, in whole seconds (rounded up)."""
        total = sum(n for _, n in self.waits)
        if not total:
            return None
        rank = math.ceil(PERCENTILE * total)
        seen = 0
        for seconds, n in self.waits:
            seen += n
            if seen >= rank:
                return seconds
        return self.waits[-1][0]   # pragma: no cover - the ranks add up to total

    @property
    def service_level(self) -> float | None:
        return self.within / self.offered if self.offered else None

    @property
    def avg_talk(self) -> float | None:
        return self.talk_sum / self.answered if self.answered else None

    @property
    def avg_out_talk(self) -> float | None:
        return self.out_talk_sum / self.out_answered if self.out_answered else None

    def row(self) -> dict[str, Any]:
        """The figures a table shows, by name (None: nothing to show)."""
        return {"calls_in": self.calls_in, "calls_out": self.calls_out, "offered": self.offered,
                "answered": self.answered, "missed": self.missed, "abandoned": self.abandoned - self.short,
                "short": self.short, "voicemail": self.voicemail, "avg_wait": _round(self.avg_wait),
                "p90_wait": self.p90_wait, "service_level": _round(self.service_level, 3),
                "avg_talk": _round(self.avg_talk)}


COLUMNS = ("calls_in", "calls_out", "offered", "answered", "missed", "abandoned", "short", "voicemail", "avg_wait",
           "p90_wait", "service_level", "avg_talk")


def _round(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


def tallies(totals: Iterable[tuple], waits: Iterable[tuple]) -> dict[Any, Tally]:
    """The store's rows (key, *measures) and (key, seconds, calls) as one Tally per key."""
    hist: dict[Any, dict[int, int]] = defaultdict(dict)
    for key, seconds, n in waits:
        hist[key][int(seconds)] = n
    return {row[0]: Tally.of(row[1:], hist.get(row[0])) for row in totals}


def fold(by_key: Mapping[Any, Tally], into: Callable[[Any], Any]) -> dict[Any, Tally]:
    """Tallies added up under new keys (local hours into hours of the day, weekdays, days).

    Sums are gathered in place and each Tally made once: a year has 8,760 hours, and adding
    immutable tallies one by one copied every histogram each time."""
    names = [f.name for f in fields(Tally) if f.name != "waits"]
    sums: dict[Any, list] = {}
    waits: dict[Any, Counter] = {}
    for key, t in by_key.items():
        k = into(key)
        if k not in sums:
            sums[k], waits[k] = [0] * len(names), Counter()
        acc = sums[k]
        for i, name in enumerate(names):
            acc[i] += getattr(t, name)
        for seconds, n in t.waits:
            waits[k][seconds] += n
    out = {k: Tally(**dict(zip(names, acc)), waits=tuple(sorted(waits[k].items()))) for k, acc in sums.items()}
    return dict(sorted(out.items(), key=lambda kv: (kv[0] is None, kv[0])))


def hour_of(local_hour: str) -> int:
    """'2025-03-03 10' -> 10."""
    return int(local_hour[11:13])


def day_of(local_hour: str) -> date:
    return date.fromisoformat(local_hour[:10])


def weekday_of(local_hour: str) -> int:
    return day_of(local_hour).weekday()


# -- the lost calls, groups, queues and menus (from paths) --------------------------------------


def gave_up_at(step: str | None) -> str:
    return GAVE_UP_AT.get(step or "", "other")


def abandoned_where(lost: Iterable[Mapping[str, Any]], gave_up: Iterable[str], short_s: float) -> dict[str, int]:
    """Abandoned calls (short abandons apart) by where the caller was: menu, queue, ringing, other."""
    reasons = set(gave_up)
    out = {w: 0 for w in WHERE}
    for call in lost:
        if call["reason"] not in reasons:
            continue
        if call["outcome"] == "missed" and (call["wait_s"] or 0) < short_s:
            continue
        out[gave_up_at(call["step"])] += 1
    return out


@dataclass
class DestTally:
    """One group's or queue's calls: entered it, answered there, lost there (their last destination)."""

    name: str = ""
    entered: int = 0
    answered: int = 0
    lost: int = 0
    abandoned: int = 0
    wait_sum: float = 0.0

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "entered": self.entered, "answered": self.answered, "lost": self.lost,
                "abandoned": self.abandoned,
                "avg_wait": _round(self.wait_sum / self.answered) if self.answered else None}


@dataclass
class MenuTally:
    """One IVR menu: callers who reached it, went on (and where to), or ended there."""

    name: str = ""
    entered: int = 0
    went_on: int = 0
    gave_up: int = 0       # hung up while in the menu
    ended: int = 0         # ended in the menu otherwise (no choice, the menu's own end)
    next: Counter = field(default_factory=Counter)

    def row(self) -> dict[str, Any]:
        top = ", ".join(f"{dest} {n}" for dest, n in self.next.most_common(5))
        return {"name": self.name, "entered": self.entered, "went_on": self.went_on, "gave_up": self.gave_up,
                "ended": self.ended, "went_to": top}


ROUTED = ("ring", "queue")


def destinations(routes: Iterable[tuple], gave_up: Iterable[str]) -> tuple[dict[str, DestTally], dict[str, MenuTally]]:
    """Groups and queues, and menus, from each inbound call's (answered, wait, lost, reason, steps)."""
    reasons = set(gave_up)
    dests: dict[str, DestTally] = {}
    menus: dict[str, MenuTally] = {}
    for answered, wait, lost, reason, steps in routes:
        routed = [(s, d, n) for s, d, n in steps if s in ROUTED and (d or "").split(":")[0] in ("group", "queue")]
        for _, dest, name in {d: (s, d, n) for s, d, n in routed}.values():
            t = dests.setdefault(dest, DestTally(name or dest))
            t.entered += 1
        if routed:
            last = dests[routed[-1][1]]
            if answered:
                last.answered += 1
                last.wait_sum += wait
            elif lost:
                last.lost += 1
                last.abandoned += reason in reasons
        for i, (step, dest, name) in enumerate(steps):
            if step != "menu":
                continue
            m = menus.setdefault(dest or "", MenuTally(name or dest or ""))
            m.entered += 1
            if i + 1 < len(steps):
                m.went_on += 1
                m.next[steps[i + 1][2] or steps[i + 1][1] or steps[i + 1][0]] += 1
            elif lost and reason in reasons:
                m.gave_up += 1
            else:
                m.ended += 1
    return dict(sorted(dests.items())), dict(sorted(menus.items()))


# -- missed-call cases and call-backs -------------------------------------------------------------


def case_figures(groups: Iterable[tuple]) -> dict[str, Any]:
    """Cases opened in the range: how many, how they ended, how long handling took.  `groups`: the store's
    counts by (short, closed, how it ended): cases, seconds taken added up, the longest."""
    opened = short = closed = 0
    took_sum, longest = 0.0, None
    how: Counter = Counter()
    for is_short, is_closed, ended_how, n, took, most in groups:
        if is_short:
            short += n
            continue
        opened += n
        if is_closed:
            closed += n
            how[ended_how or ""] += n
            took_sum += took
            longest = most if longest is None else max(longest, most)
    return {"opened": opened, "short": short, "open": opened - closed, "closed": closed,
            "ended_how": dict(sorted(how.items())),
            "avg_took_s": _round(took_sum / closed) if closed else None,
            "longest_took_s": _round(float(longest)) if closed else None,
            "called_back": how.get("called back", 0) + how.get("callback", 0)}


def callback_figures(groups: Iterable[tuple]) -> dict[str, Any]:
    """Call-back requests made in the range (a queue's call-back key): how they went.  `groups`: the
    store's counts by status: requests, attempts."""
    status: Counter = Counter()
    attempts = 0
    for name, n, tried in groups:
        status[name] += n
        attempts += int(tried)
    handled, failed = status.get("handled", 0), status.get("failed", 0)
    return {"requested": sum(status.values()), "called_back": handled, "failed": failed,
            "open": status.get("open", 0), "attempts": attempts,
            "success": _round(handled / (handled + failed), 3) if handled + failed else None}
