"""The `missed` section of the configuration: the rules of missed-call cases.

    missed:
      callback_seconds: 10        # a call back closes the case when it talked this long
      short_abandon_seconds: 5    # a caller who gave up ringing sooner is a short abandon
      assign_to: "101"            # who gets a case when the caller has no personal manager

Every key is optional; the store keeps the keys given (setting `missed`).
"""

from __future__ import annotations

from typing import Any, Collection, Mapping

from appliance.errors import ConfigError
from appliance.missed.cases import Rules

KEYS = ("callback_seconds", "short_abandon_seconds", "assign_to")
SECONDS_RANGE = (0, 3600)


def rules_of(setting: Mapping[str, Any] | None) -> Rules:
    s = dict(setting or {})
    return Rules(float(s.get("callback_seconds", 10)), float(s.get("short_abandon_seconds", 5)))


def parse_missed(item: Any, extensions: Collection[str]) -> dict:
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
        if key == "assign_to":
            number = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(number, str) or number not in extensions:
                raise ConfigError(f"assign_to must be one of the extensions, not {value!r}", (*path, key))
            out[key] = number
            continue
        low, high = SECONDS_RANGE
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"{key} must be a number of seconds from {low} to {high}", (*path, key))
        out[key] = value
    return out
