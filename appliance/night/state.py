"""The night switch as a state machine: pure, with the time passed in.

A night switch is in day or night mode, set one of three ways:

- `auto`: the schedule decides (night while its schedule is closed; day
  when the switch follows no schedule);
- `temporary`: set by hand until the schedule's next boundary, the next
  moment the schedule would change by itself (FreePBX's time conditions;
  without a schedule, until switched back);
- `permanent`: set by hand until someone returns it to automatic.

Every function takes the state before, the switch (its schedule compiled
by routing) and `now`, and returns the state after; nothing here reads the
clock or the store.  The boundary is always routing's own
(`Clock.next_boundary` after the override's `since`), so a temporary
override ends here exactly when routing stops following it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Iterable, Mapping

from appliance.night.saved import NightRow, routing_copy
from appliance.routing.facts import Override
from appliance.routing.model import RoutingConfig
from appliance.routing.schedule import Clock, zone

MODES = ("day", "night")
HOWS = ("auto", "temporary", "permanent")
BY_SCHEDULE = "schedule"
# A switch left alone while the appliance was off for a long time: how many
# boundaries are stepped through to find when its mode last changed.
MAX_STEPS = 1000


@dataclass(frozen=True)
class Switch:
    """A night switch as routing defines it, with its schedule compiled (None: it follows none)."""

    id: str
    name: str
    clock: Clock | None = None
    schedule: str | None = None

    def automatic(self, now: datetime) -> str:
        """The mode the schedule gives at `now`."""
        if self.clock is None:
            return "day"
        return "day" if self.clock.natural(now) else "night"

    def boundary(self, after: datetime) -> datetime | None:
        """The schedule's next boundary after `after` (None without a schedule, or one that never changes)."""
        return self.clock.next_boundary(after) if self.clock is not None else None


def switches_of(config: RoutingConfig) -> dict[str, Switch]:
    """The routing's night switches, each with its schedule compiled."""
    out = {}
    for sid, n in config.night.items():
        sched = config.schedules.get(n.schedule) if n.schedule else None
        out[sid] = Switch(sid, n.name, Clock(sched) if sched is not None else None, n.schedule)
    return out


@dataclass(frozen=True)
class NightState:
    """One switch's state: the mode, how it was set, since and until when, and who set it."""

    switch: str
    mode: str                       # "day" or "night"
    how: str = "auto"               # "auto", "temporary" or "permanent"
    since: datetime | None = None   # aware; when this mode and way of setting began
    until: datetime | None = None   # aware; when it changes by itself (None: not by itself)
    by: str = BY_SCHEDULE           # "button", "extension 102", "panel user owner", "command line", "schedule"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"night mode is day or night, not {self.mode!r}")
        if self.how not in HOWS:
            raise ValueError(f"a night switch is set {', '.join(HOWS)}, not {self.how!r}")

    @property
    def override(self) -> Override | None:
        """What routing's State.night holds for this switch (None in automatic mode)."""
        if self.how == "auto":
            return None
        return Override(self.mode, self.how == "permanent", self.since)

    def differs(self, other: "NightState") -> bool:
        """A change worth an event: another mode or another way of setting it."""
        return (self.mode, self.how) != (other.mode, other.how)

    def as_dict(self) -> NightRow:
        return {"switch": self.switch, "mode": self.mode, "how": self.how, "since": _iso(self.since),
                "until": _iso(self.until), "by": self.by}

    @classmethod
    def from_dict(cls, d: Mapping) -> "NightState":
        return cls(str(d["switch"]), str(d["mode"]), str(d.get("how") or "auto"), _when(d.get("since")),
                   _when(d.get("until")), str(d.get("by") or BY_SCHEDULE))


def _iso(when: datetime | None) -> str | None:
    """UTC, as the store keeps every time."""
    return when.astimezone(timezone.utc).isoformat() if when is not None else None


def _when(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else None


# ---- the transitions -----------------------------------------------------------------------


def automatic(switch: Switch, now: datetime, by: str = BY_SCHEDULE, since: datetime | None = None) -> NightState:
    """The switch left to its schedule, as of `now`."""
    return NightState(switch.id, switch.automatic(now), "auto", since or now, switch.boundary(now), by)


def settle(state: NightState | None, switch: Switch, now: datetime) -> NightState:
    """What holds at `now`: a temporary override past its boundary has ended, an
    automatic switch follows its schedule.  The same state when nothing moved."""
    if state is None:
        return automatic(switch, now)
    if state.how == "permanent":
        return state
    if state.how == "temporary":
        until = switch.boundary(state.since) if state.since is not None else None
        if until is None or now < until:
            return state if until == state.until else replace(state, until=until)
        return automatic(switch, now, since=_last_boundary(switch, until, now))
    if state.until is not None and state.until <= now:
        return automatic(switch, now, since=_last_boundary(switch, state.until, now))
    if switch.automatic(now) != state.mode:
        return automatic(switch, now)  # another schedule since the state was saved
    until = switch.boundary(now)
    return state if until == state.until else replace(state, until=until)


def _last_boundary(switch: Switch, first: datetime, now: datetime) -> datetime:
    """The last boundary at or before `now`, stepping on from `first` (one that has passed)."""
    last = first
    for _ in range(MAX_STEPS):
        nxt = switch.boundary(last)
        if nxt is None or nxt > now:
            return last
        last = nxt
    return now


def set_mode(state: NightState | None, switch: Switch, mode: str, *, permanent: bool, by: str,
             now: datetime) -> NightState:
    """Day or night by hand.  A temporary override to the mode the schedule
    gives anyway is no override: the switch returns to automatic."""
    if mode not in MODES:
        raise ValueError(f"night mode is day or night, not {mode!r}")
    current = settle(state, switch, now)
    if permanent:
        if (current.mode, current.how) == (mode, "permanent"):
            return current
        return NightState(switch.id, mode, "permanent", now, None, by)
    if mode == switch.automatic(now):
        return current if current.how == "auto" else automatic(switch, now, by)
    if (current.mode, current.how) == (mode, "temporary"):
        return current
    return NightState(switch.id, mode, "temporary", now, switch.boundary(now), by)


def to_auto(state: NightState | None, switch: Switch, *, by: str, now: datetime) -> NightState:
    """Back to the schedule."""
    current = settle(state, switch, now)
    return current if current.how == "auto" else automatic(switch, now, by)


def toggle(state: NightState | None, switch: Switch, *, by: str, now: datetime) -> NightState:
    """The other mode until the schedule's next boundary (the button's short press, *28)."""
    current = settle(state, switch, now)
    return set_mode(current, switch, "day" if current.mode == "night" else "night", permanent=False,
                    by=by, now=now)


def hold(state: NightState | None, switch: Switch, *, by: str, now: datetime) -> NightState:
    """The button's long press: a permanent override returns to automatic; otherwise
    the mode the switch is in now is kept until someone returns it to automatic."""
    current = settle(state, switch, now)
    if current.how == "permanent":
        return automatic(switch, now, by)
    return set_mode(current, switch, current.mode, permanent=True, by=by, now=now)


# ---- what routing reads ----------------------------------------------------------------------


def saved_for_routing(states: Iterable[NightState]) -> dict[str, dict]:
    """The hand-set states as the store keeps them for routing (`routing_state` key
    "night", read by routing.facts.saved_switches): switch id -> {"state",
    "permanent", "since"}; a switch in automatic mode is left out."""
    return routing_copy(s.as_dict() for s in states)


def night_for_routing(states: Iterable[NightState]) -> dict[str, Override]:
    """Routing's State.night from the switches' states: switch id -> Override."""
    return {s.switch: o for s in states if (o := s.override) is not None}


# ---- in words --------------------------------------------------------------------------------

HOW_WORDS = {"auto": "automatic", "temporary": "temporary override", "permanent": "permanent override"}


def local_time(when: datetime, tz: str, now: datetime | None = None) -> str:
    """"Tue 11 Mar 09:00" in the office's timezone ("09:00" alone today)."""
    local = when.astimezone(zone(tz))
    if now is not None and local.date() == now.astimezone(zone(tz)).date():
        return f"{local:%H:%M}"
    return f"{local:%a %d %b %H:%M}"


def describe(state: NightState, switch: Switch | None, tz: str, now: datetime) -> str:
    """"night, temporary override until Tue 11 Mar 09:00 (by button at 20:15)"."""
    if state.how == "auto":
        how = f"automatic (schedule '{switch.schedule}')" if switch and switch.schedule else "automatic (no schedule)"
    else:
        how = HOW_WORDS[state.how]
    if state.until is not None:
        until = f" until {local_time(state.until, tz, now)}"
    elif state.how == "permanent":
        until = " until returned to automatic"
    elif state.how == "temporary":
        until = " until switched back"
    else:
        until = ""
    since = f" at {local_time(state.since, tz, now)}" if state.since is not None else ""
    return f"{state.mode}, {how}{until} (by {state.by}{since})"
