"""The wallboard: the office's figures for a screen on the wall, and the thresholds that colour them.

The owner sets, per tile, an amber and a red threshold (the `wallboard`
section of the configuration, `parse_wallboard`).  Everything here but
`WallboardWatch` is pure:

- `waiting(calls)`: the callers waiting now and the longest wait, from the
  live monitor's call views (`monitor.snapshot`);
- `agents(extensions, registered, calls)`: each extension's state (in a
  call, ringing, free, not registered);
- `day_figures(store, ...)`: answered and missed calls today and the service
  level, by the reports' own definitions (appliance.reports.figures);
- `Thresholds.level(tile, value)`: ok, amber or red.

`WallboardWatch` runs inside `pbx run` on the appliance's loop (never on the
engine thread): every few seconds it reads the live calls, the open
missed-call cases and (every 30 s) the day's figures, and publishes

    {"kind": "WallboardAlert", "at": ISO, "level": "ok" | "amber" | "red", "tiles": {tile: level}}

when the worst level changes.  appliance/hw/lights.py makes the calls LED
blink fast while it is red.  The panel's wallboard page (web/areas/wallboard.py)
computes the same figures itself, from the same functions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

from appliance.errors import ConfigError

log = logging.getLogger("appliance.wallboard")

ALERT = "WallboardAlert"
OK, AMBER, RED = "ok", "amber", "red"
RANK = {OK: 0, AMBER: 1, RED: 2}

# Each tile with a threshold: which way is worse, and the values a threshold may take.
ABOVE, BELOW = "above", "below"
TILES: dict[str, tuple[str, int, int]] = {
    "waiting": (ABOVE, 1, 1000),            # callers waiting now
    "longest_wait": (ABOVE, 1, 86400),      # seconds the longest-waiting caller has waited
    "service_level": (BELOW, 0, 100),       # % of today's offered calls answered within N s
    "missed_open": (ABOVE, 1, 10000),       # missed-call cases not yet handled
}
LEVELS = (AMBER, RED)
ANSWER_WITHIN = (1, 600)                    # the service level's N seconds: the range allowed ...
DEFAULT_ANSWER_WITHIN = 20                  # ... and the default
KEYS = (*TILES, "answer_within_seconds", "led")

# Live stages in which an inbound caller still waits for a person.
WAITING_STAGES = frozenset({"queue", "ringing"})
# Stages in which the people on a call are talking to each other.
TALKING_STAGES = frozenset({"talking", "held", "transferring"})
AGENT_STATES = ("talking", "ringing", "free", "offline")


# ---- the configuration section ------------------------------------------------------------


def parse_wallboard(item: Any) -> dict:
    """Check the `wallboard` section; returns the keys given, ready to store.

        wallboard:
          answer_within_seconds: 20          # the service level counts calls answered this soon
          waiting: {amber: 2, red: 4}        # callers waiting now
          longest_wait: {amber: 60, red: 120}
          service_level: {amber: 80, red: 60}   # % answered within N s: lower is worse
          missed_open: {amber: 1, red: 5}
          led: true                          # the calls LED blinks fast while a tile is red
    """
    path: tuple = ("wallboard",)
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise ConfigError("wallboard must be a mapping", path)
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r} in wallboard (known: {', '.join(KEYS)})", (*path, key))
        if key == "led":
            if not isinstance(value, bool):
                raise ConfigError("led must be true or false", (*path, key))
            out[key] = value
        elif key == "answer_within_seconds":
            out[key] = _whole(value, (*path, key), key, *ANSWER_WITHIN)
        else:
            out[key] = _tile(key, value, (*path, key))
    return out


def _whole(value: Any, path: tuple, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{what} must be a whole number from {low} to {high}", path)
    return value


def _tile(tile: str, value: Any, path: tuple) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{tile} must be a mapping with amber and red", path)
    worse, low, high = TILES[tile]
    out: dict[str, int] = {}
    for level, n in value.items():
        if level not in LEVELS:
            raise ConfigError(f"unknown key {level!r} in {tile} (known: amber, red)", (*path, level))
        out[level] = _whole(n, (*path, level), f"{tile}'s {level} threshold", low, high)
    if AMBER in out and RED in out:
        if worse == ABOVE and out[RED] <= out[AMBER]:
            raise ConfigError(f"{tile}'s red threshold must be above its amber one ({out[AMBER]})", (*path, RED))
        if worse == BELOW and out[RED] >= out[AMBER]:
            raise ConfigError(f"{tile}'s red threshold must be below its amber one ({out[AMBER]})", (*path, RED))
    return out


@dataclass(frozen=True)
class Thresholds:
    limits: Mapping[str, Mapping[str, int]] = field(default_factory=dict)   # tile -> {"amber": n, "red": n}
    answer_within: int = DEFAULT_ANSWER_WITHIN
    led: bool = True

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any] | None) -> "Thresholds":
        s = dict(setting or {})
        return cls({t: dict(s.get(t) or {}) for t in TILES},
                   int(s.get("answer_within_seconds") or DEFAULT_ANSWER_WITHIN), bool(s.get("led", True)))

    def level(self, tile: str, value: float | None) -> str:
        """ok, amber or red: a count reaches its threshold at or above it, the service level below it."""
        if value is None:
            return OK
        worse = TILES[tile][0]
        limits = self.limits.get(tile) or {}
        for name in (RED, AMBER):
            n = limits.get(name)
            if n is not None and (value >= n if worse == ABOVE else value < n):
                return name
        return OK

    def levels(self, values: Mapping[str, float | None]) -> dict[str, str]:
        return {tile: self.level(tile, values.get(tile)) for tile in TILES}


def worst(levels: Iterable[str]) -> str:
    return max(levels, key=RANK.__getitem__, default=OK)


# ---- figures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    count: int = 0
    longest_s: float = 0.0
    since: str | None = None        # when the longest-waiting call started (ISO), for a ticking clock


def waiting(calls: Iterable[Mapping[str, Any]]) -> Waiting:
    """Inbound callers waiting for a person now (in a queue, or their phones ringing), from call views.

    A caller's wait counts from the start of the call, as a record's `wait_s` does."""
    count, longest, since = 0, 0.0, None
    for c in calls:
        if c.get("direction") != "inbound" or c.get("stage") not in WAITING_STAGES:
            continue
        count += 1
        seconds = float(c.get("call_s") or 0.0)
        if since is None or seconds > longest:
            longest, since = seconds, str(c.get("started_at") or "") or None
    return Waiting(count, longest, since)


@dataclass(frozen=True)
class Agent:
    number: str
    name: str
    state: str                      # one of AGENT_STATES: set by the system
    status: str = "available"       # set by the person (appliance.store.agents): available, break, lunch, wrapup


def agents(extensions: Iterable[Mapping[str, Any]], registered: Iterable[str],
           calls: Iterable[Mapping[str, Any]], statuses: Mapping[str, str] | None = None) -> list[Agent]:
    """Each extension's state: in a call (it placed the call, or talks on it), ringing, free
    (registered and neither), or offline (no phone registered for it); and the status its person
    set (`statuses`: extension -> status; none: available)."""
    busy: set[str] = set()
    ringing: set[str] = set()
    for c in calls:
        if c.get("extension"):
            busy.add(str(c["extension"]))
        if c.get("stage") in TALKING_STAGES:
            busy.update(str(x) for x in (c.get("with"), c.get("held_by")) if x)
        ringing.update(str(t) for t in c.get("ringing") or ())
    online = set(registered)
    out = []
    for e in extensions:
        n = str(e["number"])
        state = ("talking" if n in busy else "ringing" if n in ringing else "free" if n in online else "offline")
        out.append(Agent(n, str(e.get("name") or ""), state, (statuses or {}).get(n) or "available"))
    return out


@dataclass(frozen=True)
class DayFigures:
    day: date
    answered: int = 0
    missed: int = 0
    within: int = 0
    offered: int = 0

    @property
    def service_level(self) -> float | None:
        """Per cent of the offered calls answered within N s; None before any was offered."""
        return 100.0 * self.within / self.offered if self.offered else None


def day_figures(store: Any, tz: str, now: datetime, answer_within: float, short_abandon: float) -> DayFigures:
    """Today's inbound calls (the office's day in its time zone), counted as the reports count them."""
    from appliance.reports.figures import Tally
    from appliance.reports.periods import Period
    from appliance.store.reports import ReportTables

    today = now.astimezone(ZoneInfo(tz)).date()
    period = Period(today, today, tz)
    rows = ReportTables(store).totals("all", period.start_utc, period.end_utc, period.shifts(),
                                      answer_within, short_abandon)
    tally = Tally.of(rows[0][1:]) if rows else Tally()
    return DayFigures(today, tally.answered, tally.missed, tally.within, tally.offered)


def values(wait: Waiting, day: DayFigures, missed_open: int) -> dict[str, float | None]:
    """The figures the thresholds apply to, by tile."""
    return {"waiting": wait.count, "longest_wait": wait.longest_s if wait.count else None,
            "service_level": day.service_level, "missed_open": missed_open}


# ---- inside pbx run ------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class WallboardWatch:
    """Evaluates the thresholds on the appliance's loop and publishes WallboardAlert when the worst level changes.

    `calls` gives the live monitor's call views, `missed_open` the open cases'
    count; the store is read for the setting and (every `day_every` seconds, or
    after a call ended) the day's figures.  With `led: false` the level it
    reports is always ok, so the calls LED keeps its usual meaning.
    """

    TICK = 2.0          # seconds between evaluations (the longest wait grows without any event)
    DAY_EVERY = 30.0    # seconds between readings of the day's figures

    def __init__(self, store: Any, publish: Callable[[dict], None], calls: Callable[[], list[dict]],
                 missed_open: Callable[[], int], clock: Callable[[], datetime] = utc_now):
        self.store = store
        self.publish = publish
        self.calls = calls
        self.missed_open = missed_open
        self.clock = clock
        self.level = OK
        self.tiles: dict[str, str] = {t: OK for t in TILES}
        self._day: DayFigures | None = None
        self._day_at: datetime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def on_event(self, event: Mapping[str, Any]) -> None:
        if event.get("kind") == "CallEnded":
            self._day_at = None   # read the day's figures again at the next evaluation

    def evaluate(self) -> str:
        """Work the levels out now; publish when the worst one changed.  Returns it."""
        now = self.clock()
        setting = self.store.get_setting("wallboard")
        limits = Thresholds.from_setting(setting)
        if self._day_at is None or (now - self._day_at).total_seconds() >= self.DAY_EVERY:
            from appliance.reports import short_abandon_seconds

            self._day = day_figures(self.store, self.store.timezone, now, limits.answer_within,
                                    short_abandon_seconds(self.store))
            self._day_at = now
        tiles = limits.levels(values(waiting(self.calls()), self._day, self.missed_open()))
        level = worst(tiles.values()) if limits.led else OK
        if level != self.level:
            self.level, self.tiles = level, tiles
            self.publish({"kind": ALERT, "at": now.isoformat(timespec="milliseconds"), "level": level,
                          "tiles": {t: lv for t, lv in tiles.items() if lv != OK}})
        self.tiles = tiles
        return level

    def status(self) -> dict:
        return {"level": self.level, "tiles": {t: lv for t, lv in self.tiles.items() if lv != OK}}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._tick()

    def _tick(self) -> None:
        try:
            self.evaluate()
        except Exception:  # the I/O edge: a bad moment of the store must not stop the watch
            log.exception("the wallboard's thresholds could not be evaluated")
        if self._loop is not None:
            self._timer = self._loop.call_later(self.TICK, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop = None
