"""The `recording` section of the configuration: policies per target, the announcement, retention, disk.

    recording:
      policies:                      # ext:N, group:ID, queue:ID, trunk:NAME
        trunk:provider: always
        group:sales: {policy: on_demand, announce: true}
        ext:105: never
      announce: false                # the default for targets that do not say
      announcement: recording-notice # the prompt (DATA/prompts/<name>.wav; a tone stands in without it)
      toggle_code: "*1"              # pressed on a desk phone in an on_demand call: start, stop
      retention_days: {always: 90, on_demand: 365}
      min_free_mb: 500               # recording stops below this much free space ...
      min_free_percent: 5            # ... or below this share of the card

Every key is optional; the store keeps the checked section as the setting `recording`, and
`Settings.from_setting` reads it with the defaults filled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Collection, Mapping

from appliance.errors import ConfigError

from .policy import Policy, Rule

KEYS = ("policies", "announce", "announcement", "toggle_code", "retention_days", "min_free_mb", "min_free_percent")
POLICIES = tuple(p.value for p in Policy)
KINDS = ("ext", "group", "queue", "trunk")
DEFAULT_ANNOUNCEMENT = "recording-notice"
DEFAULT_TOGGLE = "*1"
DEFAULT_RETENTION = 90
RETENTION_RANGE = (1, 3650)
DEFAULT_MIN_FREE_MB = 500
MIN_FREE_MB_RANGE = (0, 10_000_000)
DEFAULT_MIN_FREE_PERCENT = 5
MIN_FREE_PERCENT_RANGE = (0, 90)
_PROMPT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CODE = re.compile(r"[*#][0-9*#]{1,3}")


@dataclass(frozen=True)
class Settings:
    rules: Mapping[str, Rule] = field(default_factory=dict)
    announcement: str = DEFAULT_ANNOUNCEMENT
    toggle_code: str = DEFAULT_TOGGLE
    retention_days: Mapping[str, int] = field(default_factory=lambda: {
        Policy.ALWAYS.value: DEFAULT_RETENTION, Policy.ON_DEMAND.value: DEFAULT_RETENTION})
    min_free_mb: int = DEFAULT_MIN_FREE_MB
    min_free_percent: int = DEFAULT_MIN_FREE_PERCENT

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any] | None) -> "Settings":
        """The stored section (checked by `parse_recording` when it was imported), defaults filled in."""
        s = dict(setting or {})
        default_announce = bool(s.get("announce", False))
        rules = {}
        for target, value in (s.get("policies") or {}).items():
            if isinstance(value, Mapping):
                rules[target] = Rule(Policy(value["policy"]), bool(value.get("announce", default_announce)))
            else:
                rules[target] = Rule(Policy(value), default_announce)
        days = {p: DEFAULT_RETENTION for p in (Policy.ALWAYS.value, Policy.ON_DEMAND.value)}
        days.update({str(k): int(v) for k, v in (s.get("retention_days") or {}).items()})
        return cls(rules, str(s.get("announcement") or DEFAULT_ANNOUNCEMENT),
                   str(s.get("toggle_code") or DEFAULT_TOGGLE), days, int(s.get("min_free_mb", DEFAULT_MIN_FREE_MB)),
                   int(s.get("min_free_percent", DEFAULT_MIN_FREE_PERCENT)))


def _whole(value: Any, path: tuple, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{what} must be a whole number from {low} to {high}, not {value!r}", path)
    return value


def _policy(value: Any, path: tuple) -> str:
    if value not in POLICIES:
        raise ConfigError(f"a recording policy must be one of {', '.join(POLICIES)}, not {value!r}", path)
    return value


def _target(target: Any, path: tuple, known: Mapping[str, Collection[str]]) -> str:
    kind, _, name = str(target).partition(":")
    if kind not in KINDS or not name:
        raise ConfigError(f"{target!r} is not a recording target: write ext:101, group:ID, queue:ID or trunk:NAME",
                          path)
    if name not in known[kind]:
        words = {"ext": "extension", "group": "group", "queue": "queue", "trunk": "trunk"}[kind]
        raise ConfigError(f"recording policy for {target}: no such {words}", path)
    return f"{kind}:{name}"


def parse_recording(item: Any, extensions: Collection[str], trunks: Collection[str] = (),
                    groups: Collection[str] = (), queues: Collection[str] = ()) -> dict:
    """Check the section; returns the keys given, ready to store."""
    path: tuple = ("recording",)
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise ConfigError("recording must be a mapping", path)
    known = {"ext": set(extensions), "group": set(groups), "queue": set(queues), "trunk": set(trunks)}
    out: dict[str, Any] = {}
    for key, value in item.items():
        where = (*path, key)
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r} in recording (known: {', '.join(KEYS)})", where)
        if key == "policies":
            if not isinstance(value, dict):
                raise ConfigError("policies must be a mapping from a target (ext:101, group:sales) to a policy", where)
            policies: dict[str, Any] = {}
            for target, rule in value.items():
                at = (*where, str(target))
                name = _target(target, at, known)
                if isinstance(rule, dict):
                    extra = set(rule) - {"policy", "announce"}
                    if extra or "policy" not in rule:
                        raise ConfigError("a policy written as a mapping has the keys policy and announce", at)
                    if "announce" in rule and not isinstance(rule["announce"], bool):
                        raise ConfigError("announce must be true or false", (*at, "announce"))
                    policies[name] = {"policy": _policy(rule["policy"], (*at, "policy")),
                                      **({"announce": rule["announce"]} if "announce" in rule else {})}
                else:
                    policies[name] = _policy(rule, at)
            out[key] = policies
        elif key == "announce":
            if not isinstance(value, bool):
                raise ConfigError("announce must be true or false", where)
            out[key] = value
        elif key == "announcement":
            if not isinstance(value, str) or not _PROMPT.fullmatch(value):
                raise ConfigError("announcement must be a prompt's name (letters, digits, - _ .)", where)
            out[key] = value
        elif key == "toggle_code":
            code = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(code, str) or not _CODE.fullmatch(code):
                raise ConfigError("toggle_code must be * or # and one to three keys, such as *1", where)
            out[key] = code
        elif key == "retention_days":
            if not isinstance(value, dict):
                raise ConfigError("retention_days must be a mapping such as {always: 90, on_demand: 365}", where)
            days = {}
            for policy, n in value.items():
                if policy not in (Policy.ALWAYS.value, Policy.ON_DEMAND.value):
                    raise ConfigError(f"retention_days is kept for always and on_demand, not {policy!r}",
                                      (*where, policy))
                days[policy] = _whole(n, (*where, policy), f"retention_days.{policy}", *RETENTION_RANGE)
            out[key] = days
        elif key == "min_free_mb":
            out[key] = _whole(value, where, key, *MIN_FREE_MB_RANGE)
        else:
            out[key] = _whole(value, where, key, *MIN_FREE_PERCENT_RANGE)
    return out
