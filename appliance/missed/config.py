"""The `missed` section of the configuration: the rules of missed-call cases.

    missed:
      callback_seconds: 10        # a call back closes the case when it talked this long
      short_abandon_seconds: 5    # a caller who gave up ringing sooner is a short abandon
      assign_to: "101"            # who gets a case when the caller has no personal manager
      deadline_minutes: 60        # an open case nobody acted on this long (working time) ...
      escalate_to: "100"          # ... is given to this extension
      working_hours: schedule:office   # the deadline counts only while this schedule is open
      auto_callback: true         # call missed customers back by themselves (only in working hours)
      callback_attempts: 3        # at most this many automatic attempts per case ...
      callback_spacing_minutes: 10   # ... this far apart
      callback_anyone: true       # the case's person busy: any free member of the call's group

Every key is optional; the store keeps the keys given (setting `missed`).
Escalation needs both `deadline_minutes` and `escalate_to`; without
`working_hours` the deadline counts every minute of the week, and automatic
callbacks ring only Monday to Friday, 09:00-18:00 office time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Collection, Mapping

from appliance.errors import ConfigError
from appliance.missed.autocall import DEFAULT_ATTEMPTS, DEFAULT_SPACING_MINUTES
from appliance.missed.autocall import Settings as AutoSettings
from appliance.missed.cases import Rules

KEYS = ("callback_seconds", "short_abandon_seconds", "assign_to", "deadline_minutes", "escalate_to", "working_hours",
        "auto_callback", "callback_attempts", "callback_spacing_minutes", "callback_anyone")
FLAGS = ("auto_callback", "callback_anyone")
ATTEMPTS_RANGE = (1, 10)
SPACING_RANGE = (0.1, 24 * 60)
SECONDS_RANGE = (0, 3600)
DEADLINE_RANGE = (1, 7 * 24 * 60)
SCHEDULE_PREFIX = "schedule:"


@dataclass(frozen=True)
class Escalation:
    deadline_minutes: int
    escalate_to: str
    schedule: str | None    # the id of the schedule whose open hours count; None: every minute counts


def escalation_of(setting: Mapping[str, Any] | None) -> Escalation | None:
    """The escalation rule, or None when the section does not set one."""
    s = dict(setting or {})
    if not s.get("deadline_minutes") or not s.get("escalate_to"):
        return None
    hours = str(s.get("working_hours") or "")
    return Escalation(int(s["deadline_minutes"]), str(s["escalate_to"]),
                      hours[len(SCHEDULE_PREFIX):] if hours.startswith(SCHEDULE_PREFIX) else None)


def autocall_of(setting: Mapping[str, Any] | None) -> AutoSettings:
    """The automatic callback's settings (off unless `auto_callback` is true)."""
    s = dict(setting or {})
    return AutoSettings(bool(s.get("auto_callback", False)), int(s.get("callback_attempts", DEFAULT_ATTEMPTS)),
                        timedelta(minutes=float(s.get("callback_spacing_minutes", DEFAULT_SPACING_MINUTES))),
                        bool(s.get("callback_anyone", True)))


def rules_of(setting: Mapping[str, Any] | None) -> Rules:
    s = dict(setting or {})
    return Rules(float(s.get("callback_seconds", 10)), float(s.get("short_abandon_seconds", 5)))


def _extension(value: Any, key: str, path: tuple, extensions: Collection[str]) -> str:
    number = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(number, str) or number not in extensions:
        raise ConfigError(f"{key} must be one of the extensions, not {value!r}", path)
    return number


def parse_missed(item: Any, extensions: Collection[str], schedules: Collection[str] = ()) -> dict:
    """Check the section; returns the keys given, ready to store."""
    path: tuple = ("missed",)
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise ConfigError("missed must be a mapping", path)
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r} in missed (known: {', '.join(KEYS)})", (*path, key))
        if key in ("assign_to", "escalate_to"):
            out[key] = _extension(value, key, (*path, key), extensions)
            continue
        if key == "deadline_minutes":
            low, high = DEADLINE_RANGE
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"deadline_minutes must be a whole number of minutes from {low} to {high}",
                                  (*path, key))
            out[key] = value
            continue
        if key == "working_hours":
            ident = value[len(SCHEDULE_PREFIX):] if isinstance(value, str) and value.startswith(SCHEDULE_PREFIX) else None
            if ident is None or ident not in schedules:
                known = ", ".join(f"{SCHEDULE_PREFIX}{s}" for s in schedules) or "none is defined under routing.schedules"
                raise ConfigError(f"working_hours must name a schedule as schedule:<id> ({known}), not {value!r}",
                                  (*path, key))
            out[key] = value
            continue
        if key in FLAGS:
            if not isinstance(value, bool):
                raise ConfigError(f"{key} must be true or false, not {value!r}", (*path, key))
            out[key] = value
            continue
        if key == "callback_attempts":
            low, high = ATTEMPTS_RANGE
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"callback_attempts must be a whole number from {low} to {high}", (*path, key))
            out[key] = value
            continue
        if key == "callback_spacing_minutes":
            low, high = SPACING_RANGE
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ConfigError(f"callback_spacing_minutes must be a number of minutes from {low} to {high}",
                                  (*path, key))
            out[key] = value
            continue
        low, high = SECONDS_RANGE
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"{key} must be a number of seconds from {low} to {high}", (*path, key))
        out[key] = value
    if ("deadline_minutes" in out) != ("escalate_to" in out):
        missing = "escalate_to" if "deadline_minutes" in out else "deadline_minutes"
        raise ConfigError(f"escalation needs both deadline_minutes and escalate_to; {missing} is missing",
                          (*path, missing))
    return out
