"""What the LEDs show: the appliance's state folded from control events, and one table to patterns.

Pure: `Box` is what the appliance has said about itself (through control
events and `status`), `fold(box, event)` moves it on, and `lights(box)`
gives each LED its pattern and what that means.  docs/hw.md lists the table
for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping


@dataclass(frozen=True)
class Pattern:
    name: str
    on_time: float | None = None    # seconds lit per blink; None: steady
    off_time: float | None = None

    @property
    def state(self) -> str:
        """"on", "off" or "blinking", as `pbx status --json` says it."""
        if self.on_time is not None:
            return "blinking"
        return self.name


PATTERNS = {p.name: p for p in (
    Pattern("off"),
    Pattern("on"),
    Pattern("slow", 1.0, 1.0),     # starting; a trunk failing
    Pattern("fast", 0.15, 0.15),   # a fault; callers waiting; the button is down
    Pattern("long", 1.6, 0.4),     # slow blink, mostly on: night set by hand
    Pattern("wink", 0.2, 1.8),     # slow blink, mostly off: day set by hand
)}


@dataclass(frozen=True)
class Box:
    """The appliance as the LEDs see it."""

    phase: str = "starting"                                  # starting, up, fault, stopping
    trunks: Mapping[str, str] = field(default_factory=dict)  # name -> ok, registering, failing
    calls: frozenset[str] = frozenset()                      # call ids in progress
    waiting: frozenset[str] = frozenset()                    # call ids waiting in a queue
    night: Mapping[str, Mapping] = field(default_factory=dict)  # switch id -> {"mode", "how"}, in routing order
    night_switch: str | None = None                          # the switch the night LED shows (None: the first)
    missed_open: int = 0
    button: str | None = None                                # "down", "held" while the night button is pressed
    alert: str = "ok"                                        # the wallboard's worst tile: ok, amber, red
    alert_tiles: tuple[str, ...] = ()                        # the tiles at that level
    recording: str = "ok"                                    # "ok", or why call recording stopped ("disk")


# ---- events -> Box --------------------------------------------------------------------------

def _trunk(state: str | None) -> Callable[[Box, dict], Box]:
    def apply(box: Box, e: dict) -> Box:
        name = str(e.get("trunk", ""))
        trunks = dict(box.trunks)
        if state is None:
            trunks.pop(name, None)
        else:
            trunks[name] = "ok" if state == "configured" and e.get("type") == "ip" else \
                ("registering" if state == "configured" else state)
        return replace(box, trunks=trunks)
    return apply


def _call_ended(box: Box, e: dict) -> Box:
    cid = e.get("call_id")
    return replace(box, calls=box.calls - {cid}, waiting=box.waiting - {cid})


def _night(box: Box, e: dict) -> Box:
    night = dict(box.night)
    night[str(e.get("switch"))] = {"mode": e.get("mode"), "how": e.get("how")}
    return replace(box, night=night)


def _alert(box: Box, event: Mapping) -> Box:
    tiles = event.get("tiles") or {}
    return replace(box, alert=str(event.get("level") or "ok"),
                   alert_tiles=tuple(sorted(t for t, lv in tiles.items() if lv == event.get("level"))))


EVENTS: dict[str, Callable[[Box, dict], Box]] = {
    "ApplianceStarted": lambda box, e: replace(box, phase="up"),
    "TrunkConfigured": _trunk("configured"),
    "TrunkRegistered": _trunk("ok"),
    "TrunkRegistrationFailed": _trunk("failing"),
    "TrunkUnregistered": _trunk(None),
    "CallStarted": lambda box, e: replace(box, calls=box.calls | {e.get("call_id")}),
    "CallEnded": _call_ended,
    "QueueJoined": lambda box, e: replace(box, waiting=box.waiting | {e.get("call_id")}),
    "QueueLeft": lambda box, e: replace(box, waiting=box.waiting - {e.get("call_id")}),
    # Open missed-call cases (appliance/missed): one opened lights the LED at once, the last one
    # closed puts it out; a call that joins an open case or a short abandon changes nothing.
    "MissedCaseOpened": lambda box, e: _cases(box, e, +1),
    "MissedCaseClosed": lambda box, e: _cases(box, e, -1),
    "NightModeChanged": _night,
    # The wallboard's thresholds (appliance/wallboard.py): the worst tile's level, when it changes.
    "WallboardAlert": _alert,
    # Call recording's disk guard (appliance/recording/disk.py): stopped with the card nearly full, resumed.
    "RecordingStopped": lambda box, e: replace(box, recording=str(e.get("reason") or "stopped")),
    "RecordingResumed": lambda box, e: replace(box, recording="ok"),
}


def _cases(box: Box, event: Mapping, step: int) -> Box:
    case = event.get("case") or {}
    if step > 0 and case.get("status") != "open":
        return box  # a short abandon is filed closed: nothing to handle
    return replace(box, missed_open=max(0, box.missed_open + step))


def fold(box: Box, event: Mapping) -> Box:
    """The box after one control event (events the LEDs do not show leave it as it was)."""
    apply = EVENTS.get(str(event.get("kind")))
    return apply(box, dict(event)) if apply is not None else box


def from_status(box: Box, status: Mapping) -> Box:
    """What `status` says: the engine's health, open missed calls, the night switches."""
    phase = box.phase
    running = (status.get("engine") or {}).get("running")
    if phase == "up" and running is False:
        phase = "fault"
    elif phase == "fault" and running:
        phase = "up"
    night = status.get("night")
    night = {k: {"mode": v.get("mode"), "how": v.get("how")} for k, v in night.items()} if night else {}
    box = replace(box, phase=phase, missed_open=int(status.get("missed_open") or 0), night=night)
    if status.get("wallboard"):
        box = _alert(box, status["wallboard"])
    return box


# ---- Box -> LEDs ----------------------------------------------------------------------------

def _ready(box: Box) -> tuple[str, str]:
    if box.phase == "up" and box.recording == "disk":
        return "fast", "call recording stopped: the disk is nearly full"
    return {"starting": ("slow", "starting"), "up": ("on", "edge and engine up"),
            "fault": ("fast", "the call engine is down"), "stopping": ("off", "stopping")}[box.phase]


def _trunk_light(box: Box) -> tuple[str, str]:
    if not box.trunks:
        return "off", "no trunk"
    bad = sorted(n for n, s in box.trunks.items() if s != "ok")
    if bad:
        how = ", ".join(f"{n} {box.trunks[n]}" for n in bad)
        return "slow", f"not every trunk is up: {how}"
    return "on", "every trunk registered or reachable"


def _calls(box: Box) -> tuple[str, str]:
    if box.alert == "red":
        return "fast", f"a wallboard tile is red: {', '.join(box.alert_tiles) or 'see the wallboard'}"
    if box.waiting:
        return "fast", f"{len(box.waiting)} waiting in a queue"
    if box.calls:
        return "on", f"{len(box.calls)} in progress"
    return "off", "no calls"


NIGHT_PATTERNS = {("night", "auto"): ("on", "night by the schedule"), ("day", "auto"): ("off", "day by the schedule"),
                  ("night", "temporary"): ("long", "night set by hand until the schedule's next boundary"),
                  ("night", "permanent"): ("long", "night set by hand until returned to automatic"),
                  ("day", "temporary"): ("wink", "day set by hand until the schedule's next boundary"),
                  ("day", "permanent"): ("wink", "day set by hand until returned to automatic")}


def _night_light(box: Box) -> tuple[str, str]:
    if box.button == "down":
        return "fast", "the night button is pressed"
    if box.button == "held":
        return "on", "long press taken: let go"
    sid = box.night_switch if box.night_switch in box.night else next(iter(box.night), None)
    if sid is None:
        return "off", "no night switch"
    s = box.night[sid]
    pattern, means = NIGHT_PATTERNS.get((s.get("mode"), s.get("how")), ("off", "unknown"))
    return pattern, f"{sid}: {means}"


def _missed(box: Box) -> tuple[str, str]:
    if box.missed_open:
        return "on", f"{box.missed_open} missed calls to handle"
    return "off", "no missed calls waiting"


TABLE: dict[str, Callable[[Box], tuple[str, str]]] = {
    "ready": _ready, "trunk": _trunk_light, "calls": _calls, "night": _night_light, "missed": _missed,
}


def lights(box: Box) -> dict[str, tuple[Pattern, str]]:
    """Each LED's pattern and what it means."""
    out = {}
    for led, rule in TABLE.items():
        name, means = rule(box)
        out[led] = (PATTERNS[name], means)
    return out
