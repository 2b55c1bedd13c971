"""The `routing:` section of the configuration file: parse, dump, validate.

`parse(data, extensions)` turns the section (as the YAML loader gives it:
digit strings without a leading zero arrive as ints, true/false as bools,
everything else as str) into a `RoutingConfig`, or raises `ConfigError` with
the path inside the section.  `dump(config)` gives the section back in its
canonical form, so `parse(dump(c)) == c`.

`validate(config)` lists every problem that would make a call go nowhere: a
missing destination, a group with no members, a schedule with closed hours and
nowhere to send them, a loop a silent caller can never leave.  Messages name
the way a call gets there: "route 'Shop 2' → schedule 'Hours' → closed →
group 'Sales' has no members".  `parse` raises the first of them.
"""

from __future__ import annotations

from collections import deque
from datetime import date
from typing import Any, Callable, Iterable, Mapping

from ..errors import ConfigError
from . import kinds, model as m
from .model import (
    Announcement, Availability, Branch, Duty, DutyRoster, Exits, ExtensionOptions, External, Group, Hours,
    Member, Menu, NightSwitch, PersonalManager, Queue, Route, RoutingConfig, Schedule, VoicemailBox,
    Webhook, split_ref,
)
from .branch import Ranges, in_ranges, split_target
from .numbers import is_external, normalise, normalise_pattern
from .schedule import (
    DAY, format_days, minutes_label, parse_clock, parse_days, parse_range, zone,
)

Path = tuple[str | int, ...]

TOP_KEYS = ("timezone", "routes", "unmatched", "extension_defaults", "extensions", *kinds.SECTIONS)
EXIT_KEYS = ("on_fail", "on_no_answer", "on_busy", "on_unavailable", "on_failure")
AVAIL_KEYS = ("skip_busy", "skip_dnd", "skip_unregistered", "wrapup", "max_calls")


# ---- small readers ------------------------------------------------------------------------

def _mapping(value: Any, path: Path, what: str) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} should be a mapping of keys to values", path)
    return value


def _list(value: Any, path: Path, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, list):
        raise ConfigError(f"{what} should be a list", path)
    return value


def _keys(d: Mapping, allowed: Iterable[str], path: Path, what: str) -> None:
    allowed = tuple(allowed)
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{what} has no setting '{k}' (known: {', '.join(allowed)})", (*path, k))


def _str(d: Mapping, key: str, path: Path, default: str | None = None, *, required: bool = False) -> str | None:
    if key not in d or d[key] is None:
        if required:
            raise ConfigError(f"'{key}' is required", (*path, key))
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise ConfigError(f"'{key}' should be text", (*path, key))
    return str(v)


def _int(d: Mapping, key: str, path: Path, default: int, *, minimum: int = 0) -> int:
    if key not in d or d[key] is None:
        return default
    v = d[key]
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"'{key}' should be a whole number of seconds", (*path, key))
    if v < minimum:
        raise ConfigError(f"'{key}' should be at least {minimum}", (*path, key))
    return v


def _opt_int(d: Mapping, key: str, path: Path, *, minimum: int = 0) -> int | None:
    return None if d.get(key) is None else _int(d, key, path, 0, minimum=minimum)


def _float(d: Mapping, key: str, path: Path, default: float) -> float:
    if key not in d or d[key] is None:
        return default
    v = d[key]
    try:
        f = float(v) if not isinstance(v, bool) else None
    except (TypeError, ValueError):
        f = None
    if f is None or not (0 < f <= 60):
        raise ConfigError(f"'{key}' should be a number of seconds between 0 and 60, like 1.5", (*path, key))
    return f


def _bool(d: Mapping, key: str, path: Path, default: bool) -> bool:
    if key not in d or d[key] is None:
        return default
    v = d[key]
    if not isinstance(v, bool):
        raise ConfigError(f"'{key}' should be true or false", (*path, key))
    return v


def _opt_bool(d: Mapping, key: str, path: Path) -> bool | None:
    return None if d.get(key) is None else _bool(d, key, path, False)


def _ident(key: Any, path: Path) -> str:
    ident = str(key)
    if not ident or any(c in ident for c in ": \t") or isinstance(key, bool):
        raise ConfigError(f"'{ident}' is not a usable id (no spaces or colons)", path)
    return ident


class _Refs:
    """Reads destination references, knowing the extensions."""

    def __init__(self, extensions: Mapping[str, str], links: Mapping[str, Ranges] | None = None):
        self.extensions = extensions
        self.links = links  # branch trunks' extension ranges; None: not known here

    def branch_member(self, base: str, ext: str, path: Path) -> str:
        """`shop2/201`: extension 201 of the shop behind branch trunk shop2, checked when the trunks are known."""
        if not base or not ext.isdigit() or ext[0] == "0":
            raise ConfigError(f"'{base}/{ext}' is not a branch's extension (write shop2/201)", path)
        if self.links is not None:
            if base not in self.links:
                raise ConfigError(f"'{base}' is not a branch trunk (kind: branch under trunks)", path)
            if not in_ranges(ext, self.links[base]):
                raise ConfigError(f"{ext} is not among branch {base}'s extensions", path)
        return f"{base}/{ext}"

    def ref(self, value: Any, path: Path, *, menu: bool = False, own_box: bool = False) -> str:
        if isinstance(value, bool) or value is None or not isinstance(value, (str, int)):
            raise ConfigError("should name a destination, like group:sales, 101 or hangup", path)
        text = str(value).strip()
        if text.isdigit() and not is_external(text):
            return self._ext(text, path)
        if text in kinds.MENU_WORDS:
            if not menu:
                raise ConfigError(f"'{text}' can only be a menu option", path)
            return text
        if text == "voicemail" and own_box:
            return "voicemail:*"
        if text == "hangup":
            return "hangup"
        kind, sep, ident = text.partition(":")
        if not sep or not ident:
            if is_external(text):
                raise ConfigError(f"'{text}' is an external number: define it under externals "
                                  "and send calls to external:<id>", path)
            raise ConfigError(f"'{text}' is not a destination; write kind:id, like group:sales "
                              f"(kinds: {', '.join(kinds.WRITTEN)})", path)
        if kind == "ext":
            return self._ext(ident, path)
        if kind not in kinds.WRITTEN:
            raise ConfigError(f"'{kind}' is not a kind of destination "
                              f"(kinds: {', '.join(kinds.WRITTEN)})", path)
        return f"{kind}:{ident}"

    def _ext(self, number: str, path: Path) -> str:
        if number not in self.extensions:
            raise ConfigError(f"{number} is not an extension", path)
        return f"ext:{number}"


def _exits(d: Mapping, path: Path, refs: _Refs, what: str, *, own_box: bool = False,
           default: Exits | None = None) -> Exits:
    base = d.get("on_fail")
    values = {}
    for key in ("on_no_answer", "on_busy", "on_unavailable", "on_failure"):
        raw = d.get(key, base)
        if raw is None:
            if default is not None:
                values[key] = getattr(default, key[3:])
                continue
            raise ConfigError(f"{what} does not say where the call goes when it fails: "
                              f"add on_fail (or {key})", (*path, "on_fail"))
        values[key] = refs.ref(raw, (*path, key if key in d else "on_fail"), own_box=own_box)
    return Exits(values["on_no_answer"], values["on_busy"], values["on_unavailable"], values["on_failure"])


def _availability(d: Mapping, path: Path, default: Availability | None) -> Availability:
    if default is None:
        return Availability(_opt_bool(d, "skip_busy", path), _opt_bool(d, "skip_dnd", path),
                            _opt_bool(d, "skip_unregistered", path), _opt_int(d, "wrapup", path),
                            _opt_int(d, "max_calls", path))
    return Availability(_bool(d, "skip_busy", path, default.skip_busy),
                        _bool(d, "skip_dnd", path, default.skip_dnd),
                        _bool(d, "skip_unregistered", path, default.skip_unregistered),
                        _int(d, "wrapup", path, default.wrapup),
                        _int(d, "max_calls", path, default.max_calls))


def _ring_time(d: Mapping, path: Path, default: int | None) -> int | None:
    """`ring_time` in seconds, or `rings` (one ring is 5 s of the 1 s on, 4 s off cadence)."""
    if d.get("rings") is not None:
        if d.get("ring_time") is not None:
            raise ConfigError("give ring_time or rings, not both", (*path, "rings"))
        return _int(d, "rings", path, 0, minimum=1) * m.SECONDS_PER_RING
    if default is None:
        return _opt_int(d, "ring_time", path, minimum=1)
    return _int(d, "ring_time", path, default, minimum=1)


# ---- sections ------------------------------------------------------------------------------

def _members(raw: Any, path: Path, refs: _Refs) -> tuple[Member, ...]:
    out: list[Member] = []
    seen: set[str] = set()
    for i, item in enumerate(_list(raw, path, "members")):
        p = (*path, i)
        if isinstance(item, Mapping):
            _keys(item, ("ext", "number", "branch", "tier", "ring_time", "rings", "confirm", *AVAIL_KEYS), p, "a member")
            if ("ext" in item) == ("number" in item) or ("branch" in item and "ext" not in item):
                raise ConfigError("a member is either ext: (with branch: for another shop's) or number:", p)
            target = item.get("ext", item.get("number"))
            if "branch" in item:
                target = f"{item['branch']}/{target}"
            opts = item
        else:
            target, opts = item, {}
        if isinstance(target, bool) or not isinstance(target, (str, int)):
            raise ConfigError("a member is an extension number, an external number or a branch's extension", p)
        text = str(target).strip()
        branch = ""
        external = "/" not in text and (is_external(text) or "number" in opts)
        if "/" in text:
            base, ext = split_target(text)
            text, branch = refs.branch_member(base.strip(), ext.strip(), p), base.strip()
        elif external:
            text = normalise(text)
            if not is_external(text):
                raise ConfigError(f"'{target}' is not an external number", p)
        elif text not in refs.extensions:
            raise ConfigError(f"{text} is not an extension", p)
        if text in seen:
            raise ConfigError(f"{text} is a member twice", p)
        seen.add(text)
        out.append(Member(text, external, _int(opts, "tier", p, 1, minimum=1), _ring_time(opts, p, None),
                          _opt_bool(opts, "confirm", p), _availability(opts, p, None), branch))
    return tuple(out)


def _strategy(d: Mapping, path: Path, default: str) -> str:
    s = _str(d, "strategy", path, default)
    aliases = {"ring_all": "ringall", "one_by_one": "linear", "hunt": "linear", "rrmemory": "roundrobin",
               "round_robin": "roundrobin", "fewest": "fewest_calls", "leastrecent": "longest_idle",
               "memoryhunt": "memory"}
    s = aliases.get(s, s)
    if s not in m.STRATEGIES:
        raise ConfigError(f"'{s}' is not a strategy (choose from {', '.join(m.STRATEGIES)})", (*path, "strategy"))
    return s


GROUP_KEYS = ("name", "strategy", "members", "ring_time", "rings", "rounds", "widen_after", "confirm",
              "announce", *AVAIL_KEYS, *EXIT_KEYS)


def _group(ident: str, d: Mapping, path: Path, refs: _Refs) -> Group:
    _keys(d, GROUP_KEYS, path, "a group")
    dflt = Group.__dataclass_fields__["availability"].default
    return Group(ident, _str(d, "name", path, ident), _strategy(d, path, "ringall"),
                 _members(d.get("members"), (*path, "members"), refs),
                 _exits(d, path, refs, f"group '{_str(d, 'name', path, ident)}'"),
                 _ring_time(d, path, 20), _int(d, "rounds", path, 1, minimum=1),
                 _int(d, "widen_after", path, 15, minimum=1), _availability(d, path, dflt),
                 _bool(d, "confirm", path, True), _str(d, "announce", path))


QUEUE_KEYS = ("name", "strategy", "members", "ring_time", "rings", "retry", "max_wait", "widen_after",
              "announce_every", "announce_position", "announce_wait", "music", "greeting", "exit_key",
              "exit_to", "callback", "callback_key", "vip_first", "confirm", *AVAIL_KEYS, *EXIT_KEYS)


def _key(d: Mapping, key: str, path: Path, default: str | None) -> str | None:
    k = _str(d, key, path, default)
    if k is not None and (len(k) != 1 or k not in "0123456789*#"):
        raise ConfigError(f"'{key}' should be one key: 0-9, * or #", (*path, key))
    return k


def _queue(ident: str, d: Mapping, path: Path, refs: _Refs) -> Queue:
    _keys(d, QUEUE_KEYS, path, "a queue")
    dflt = Queue.__dataclass_fields__["availability"].default
    name = _str(d, "name", path, ident)
    exit_key = _key(d, "exit_key", path, None)
    exit_to = refs.ref(d["exit_to"], (*path, "exit_to")) if d.get("exit_to") is not None else None
    if (exit_key is None) != (exit_to is None):
        raise ConfigError("exit_key and exit_to go together", (*path, "exit_key" if exit_key is None else "exit_to"))
    q = Queue(ident, name, _strategy(d, path, "longest_idle"), _members(d.get("members"), (*path, "members"), refs),
              _exits(d, path, refs, f"queue '{name}'"), _ring_time(d, path, 15),
              _int(d, "retry", path, 5), _int(d, "max_wait", path, 300, minimum=1),
              _int(d, "widen_after", path, 15, minimum=1), _int(d, "announce_every", path, 60),
              _bool(d, "announce_position", path, True), _bool(d, "announce_wait", path, True),
              _str(d, "music", path, "default"), _str(d, "greeting", path), exit_key, exit_to,
              _bool(d, "callback", path, False), _key(d, "callback_key", path, "1"),
              _bool(d, "vip_first", path, True), _availability(d, path, dflt), _bool(d, "confirm", path, True))
    if q.callback and q.exit_key == q.callback_key:
        raise ConfigError("callback_key and exit_key are the same key", (*path, "callback_key"))
    return q


MENU_KEYS = ("name", "prompt", "options", "timeout", "inter_digit", "retries", "invalid_prompt",
             "timeout_prompt", "on_timeout", "on_invalid", "on_fail", "direct_dial")


def _menu(ident: str, d: Mapping, path: Path, refs: _Refs) -> Menu:
    _keys(d, MENU_KEYS, path, "a menu")
    options: dict[str, str] = {}
    for k, v in _mapping(d.get("options"), (*path, "options"), "options").items():
        digits = str(k)
        if isinstance(k, bool) or not digits or any(c not in "0123456789*#" for c in digits):
            raise ConfigError(f"'{digits}' is not a key sequence (0-9, *, #)", (*path, "options", k))
        options[digits] = refs.ref(v, (*path, "options", k), menu=True)
    fail = d.get("on_fail")
    on_timeout = d.get("on_timeout", fail)
    on_invalid = d.get("on_invalid", fail)
    for key, v in (("on_timeout", on_timeout), ("on_invalid", on_invalid)):
        if v is None:
            raise ConfigError(f"menu '{_str(d, 'name', path, ident)}' does not say where a caller goes "
                              f"who presses nothing or a wrong key: add on_fail (or {key})", (*path, "on_fail"))
    dd = d.get("direct_dial", False)
    if isinstance(dd, bool):
        direct: bool | tuple[str, ...] = dd
    else:
        items = _list(dd, (*path, "direct_dial"), "direct_dial")
        direct = tuple(sorted({split_ref(refs.ref(x, (*path, "direct_dial", i)))[1] for i, x in enumerate(items)}))
        for i, x in enumerate(items):
            if not split_ref(refs.ref(x, (*path, "direct_dial", i)))[0] == "ext":
                raise ConfigError("direct_dial lists extensions", (*path, "direct_dial", i))
    return Menu(ident, _str(d, "name", path, ident), _str(d, "prompt", path, required=True), options,
                refs.ref(on_timeout, (*path, "on_timeout" if "on_timeout" in d else "on_fail")),
                refs.ref(on_invalid, (*path, "on_invalid" if "on_invalid" in d else "on_fail")),
                _int(d, "timeout", path, 5, minimum=1), _int(d, "inter_digit", path, 2, minimum=1),
                _int(d, "retries", path, 2), _str(d, "invalid_prompt", path), _str(d, "timeout_prompt", path),
                direct)


def _timezone(d: Mapping, path: Path, default: str) -> str:
    tz = _str(d, "timezone", path, default)
    try:
        zone(tz)
    except Exception:  # zoneinfo raises several kinds for a bad key
        raise ConfigError(f"'{tz}' is not a timezone (like Europe/Kyiv)", (*path, "timezone")) from None
    return tz


def _holiday(text: Any, path: Path) -> str:
    t = str(text.get("date") if isinstance(text, Mapping) else text).strip()
    parts = t.split("-")
    try:
        if len(parts) == 3 and len(parts[0]) == 4:
            date(int(parts[0]), int(parts[1]), int(parts[2]))
            return f"{int(parts[0]):04d}-{int(parts[1]):02d}-{int(parts[2]):02d}"
        if len(parts) == 2:
            date(2000, int(parts[0]), int(parts[1]))  # a leap year, so 02-29 is allowed
            return f"{int(parts[0]):02d}-{int(parts[1]):02d}"
    except ValueError:
        pass
    raise ConfigError(f"'{t}' is not a date: YYYY-MM-DD for one day, MM-DD for every year", path)


def _schedule(ident: str, d: Mapping, path: Path, refs: _Refs, tz: str) -> Schedule:
    _keys(d, ("name", "timezone", "hours", "holidays", "open", "closed"), path, "a schedule")
    hours: set[Hours] = set()
    for days, ranges in _mapping(d.get("hours"), (*path, "hours"), "hours").items():
        p = (*path, "hours", days)
        try:
            day_list = parse_days(str(days))
        except ValueError as e:
            raise ConfigError(str(e), p) from None
        for i, r in enumerate(_list(ranges, p, "hours")):
            try:
                start, end = parse_range(str(r))
            except ValueError as e:
                raise ConfigError(str(e), (*p, i)) from None
            hours.update(Hours(day, start, end) for day in day_list)
    holidays = tuple(sorted({_holiday(h, (*path, "holidays", i))
                             for i, h in enumerate(_list(d.get("holidays"), (*path, "holidays"), "holidays"))}))
    return Schedule(ident, _str(d, "name", path, ident), tuple(sorted(hours, key=lambda h: (h.day, h.start, h.end))),
                    refs.ref(d["open"], (*path, "open")) if d.get("open") is not None else None,
                    refs.ref(d["closed"], (*path, "closed")) if d.get("closed") is not None else None,
                    holidays, _timezone(d, path, tz))


def _night(ident: str, d: Mapping, path: Path, refs: _Refs) -> NightSwitch:
    _keys(d, ("name", "schedule", "day", "night"), path, "a night switch")
    for key in ("day", "night"):
        if d.get(key) is None:
            raise ConfigError(f"night switch needs '{key}': where calls go in {key} mode", (*path, key))
    sched = _str(d, "schedule", path)
    if sched is not None and sched.startswith("schedule:"):
        sched = sched[len("schedule:"):]
    return NightSwitch(ident, _str(d, "name", path, ident), refs.ref(d["day"], (*path, "day")),
                       refs.ref(d["night"], (*path, "night")), sched)


def _announcement(ident: str, d: Mapping, path: Path, refs: _Refs) -> Announcement:
    _keys(d, ("name", "prompt", "then"), path, "an announcement")
    if d.get("then") is None:
        raise ConfigError("an announcement needs 'then': where the call goes after it", (*path, "then"))
    return Announcement(ident, _str(d, "name", path, ident), _str(d, "prompt", path, required=True),
                        refs.ref(d["then"], (*path, "then")))


def _voicemail(ident: str, d: Mapping, path: Path, refs: _Refs) -> VoicemailBox:
    _keys(d, ("name", "greeting", "email"), path, "a voicemail box")
    return VoicemailBox(ident, _str(d, "name", path, ident), _str(d, "greeting", path), _str(d, "email", path))


def _branch(ident: str, d: Mapping, path: Path, refs: _Refs) -> Branch:
    _keys(d, ("name", "ring_time", "rings", *EXIT_KEYS), path, "a branch")
    if refs.links is not None and ident not in refs.links:
        raise ConfigError(f"'{ident}' is not a branch trunk (kind: branch under trunks)", path)
    name = _str(d, "name", path, ident)
    return Branch(ident, name, _exits(d, path, refs, f"branch '{name}'"), _ring_time(d, path, 30))


def _number(d: Mapping, key: str, path: Path) -> str:
    raw = _str(d, key, path, required=True)
    n = normalise(raw)
    if not is_external(n):
        raise ConfigError(f"'{raw}' is not an external number (like +380671234567 or 0671234567)", (*path, key))
    return n


def _external(ident: str, d: Mapping, path: Path, refs: _Refs) -> External:
    _keys(d, ("name", "number", "ring_time", "rings", "confirm", *EXIT_KEYS), path, "an external number")
    name = _str(d, "name", path, ident)
    return External(ident, name, _number(d, "number", path), _exits(d, path, refs, f"external '{name}'"),
                    _ring_time(d, path, 30), _bool(d, "confirm", path, True))


def _webhook(ident: str, d: Mapping, path: Path, refs: _Refs) -> Webhook:
    _keys(d, ("name", "url", "timeout", "fallback", "allow_numbers", "ring_time", "rings", *EXIT_KEYS),
          path, "a webhook")
    name = _str(d, "name", path, ident)
    url = _str(d, "url", path, required=True)
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"'{url}' is not an http:// or https:// address", (*path, "url"))
    if d.get("fallback") is None:
        raise ConfigError("a webhook needs 'fallback': where calls go when it does not answer", (*path, "fallback"))
    fallback = refs.ref(d["fallback"], (*path, "fallback"))
    fb = {"on_fail": d["fallback"]}
    exits = _exits({**fb, **{k: d[k] for k in EXIT_KEYS if k in d}}, path, refs, f"webhook '{name}'")
    return Webhook(ident, name, url, fallback, exits, _float(d, "timeout", path, 1.5),
                   _bool(d, "allow_numbers", path, False), _ring_time(d, path, 25))


def _manager(ident: str, d: Mapping, path: Path, refs: _Refs) -> PersonalManager:
    _keys(d, ("name", "next", "learn", "ring_time", "rings", *AVAIL_KEYS), path, "a personal manager step")
    if d.get("next") is None:
        raise ConfigError("a personal manager step needs 'next': where calls go without a manager", (*path, "next"))
    dflt = PersonalManager.__dataclass_fields__["availability"].default
    return PersonalManager(ident, _str(d, "name", path, ident), refs.ref(d["next"], (*path, "next")),
                           _bool(d, "learn", path, False), _ring_time(d, path, 20), _availability(d, path, dflt))


def _duty(ident: str, d: Mapping, path: Path, refs: _Refs, tz: str) -> DutyRoster:
    _keys(d, ("name", "roster", "nobody", "changeover", "ring_time", "rings", "confirm", "timezone", *EXIT_KEYS),
          path, "a duty roster")
    name = _str(d, "name", path, ident)
    if d.get("nobody") is None:
        raise ConfigError("a duty roster needs 'nobody': where calls go when nobody is on duty", (*path, "nobody"))
    entries: list[Duty] = []
    for i, e in enumerate(_list(d.get("roster"), (*path, "roster"), "roster")):
        p = (*path, "roster", i)
        e = _mapping(e, p, "a roster entry")
        _keys(e, ("number", "dates", "weekdays"), p, "a roster entry")
        dates = tuple(sorted({_holiday(x, (*p, "dates", j))
                              for j, x in enumerate(_list(e.get("dates"), (*p, "dates"), "dates"))}))
        if any(len(x) != 10 for x in dates):
            raise ConfigError("roster dates are full dates (YYYY-MM-DD)", (*p, "dates"))
        days: list[int] = []
        for j, x in enumerate(_list(e.get("weekdays"), (*p, "weekdays"), "weekdays")):
            try:
                days.extend(parse_days(str(x)))
            except ValueError as err:
                raise ConfigError(str(err), (*p, "weekdays", j)) from None
        if not dates and not days:
            raise ConfigError("a roster entry needs dates or weekdays", p)
        entries.append(Duty(_number(e, "number", p), dates, tuple(sorted(set(days)))))
    changeover = _str(d, "changeover", path, "08:00")
    try:
        change = parse_clock(changeover)
    except ValueError as err:
        raise ConfigError(str(err), (*path, "changeover")) from None
    return DutyRoster(ident, name, tuple(entries), refs.ref(d["nobody"], (*path, "nobody")),
                      _exits(d, path, refs, f"duty roster '{name}'"), change, _ring_time(d, path, 30),
                      _bool(d, "confirm", path, True), _timezone(d, path, tz))


def _route(d: Any, path: Path, refs: _Refs) -> Route:
    d = _mapping(d, path, "a route")
    _keys(d, ("name", "numbers", "callers", "trunks", "to"), path, "a route")
    if d.get("to") is None:
        raise ConfigError("a route needs 'to': where its calls go", (*path, "to"))
    numbers = []
    for i, n in enumerate(_list(d.get("numbers"), (*path, "numbers"), "numbers")):
        if isinstance(n, bool) or not isinstance(n, (str, int)) or not normalise(str(n)):
            raise ConfigError(f"'{n}' is not a number", (*path, "numbers", i))
        numbers.append(normalise(str(n)))
    callers = [normalise_pattern(str(c)) for c in _list(d.get("callers"), (*path, "callers"), "callers")]
    trunks = [str(t) for t in _list(d.get("trunks"), (*path, "trunks"), "trunks")]
    return Route(_str(d, "name", path, f"route {path[-1] + 1 if isinstance(path[-1], int) else ''}".strip()),
                 refs.ref(d["to"], (*path, "to")), tuple(dict.fromkeys(numbers)),
                 tuple(dict.fromkeys(callers)), tuple(dict.fromkeys(trunks)))


def _extension_options(number: str, d: Mapping, path: Path, refs: _Refs, base: ExtensionOptions) -> ExtensionOptions:
    _keys(d, ("ring_time", "rings", *AVAIL_KEYS, *EXIT_KEYS), path, "extension settings")
    return ExtensionOptions(number, _exits(d, path, refs, f"extension {number}", own_box=True, default=base.exits),
                            _ring_time(d, path, base.ring_time), _availability(d, path, base.availability))


# ---- the whole section ---------------------------------------------------------------------

def read(data: Mapping[str, Any], extensions: Mapping[Any, str], *, timezone: str | None = None,
         branches: Mapping[str, Ranges] | None = None) -> RoutingConfig:
    """The section as data, checked for shape only (see `validate` for the flow).

    `branches`: the branch trunks' extension ranges (routing/branch.py); None when the caller does
    not know the trunks, and then branch references are taken as written."""
    data = _mapping(data, (), "the routing section")
    _keys(data, TOP_KEYS, (), "the routing section")
    known = {str(k): str(v) if v is not None else "" for k, v in extensions.items()}
    links = None if branches is None else {str(k): tuple(v) for k, v in branches.items()}
    refs = _Refs(known, links)
    tz = _timezone(data, (), timezone or "Europe/Kyiv")
    routes = tuple(_route(r, ("routes", i), refs) for i, r in enumerate(_list(data.get("routes"), ("routes",), "routes")))
    unmatched = refs.ref(data["unmatched"], ("unmatched",)) if data.get("unmatched") is not None else None
    base = ExtensionOptions("", Exits(*(["voicemail:*"] * 4)))
    defaults = _extension_options("", _mapping(data.get("extension_defaults"), ("extension_defaults",), "extension_defaults"),
                                  ("extension_defaults",), refs, base)
    ext_opts = {}
    for k, v in _mapping(data.get("extensions"), ("extensions",), "extensions").items():
        number = str(k)
        if number not in known:
            raise ConfigError(f"{number} is not an extension", ("extensions", k))
        ext_opts[number] = _extension_options(number, _mapping(v, ("extensions", k), "extension settings"),
                                              ("extensions", k), refs, defaults)

    def section(name: str, build: Callable[..., Any], *extra: Any) -> dict[str, Any]:
        out = {}
        for k, v in _mapping(data.get(name), (name,), name).items():
            ident = _ident(k, (name, k))
            out[ident] = build(ident, _mapping(v, (name, k), name), (name, k), refs, *extra)
        return out

    return RoutingConfig(
        routes, unmatched, tz, defaults, ext_opts,
        section("groups", _group), section("queues", _queue), section("menus", _menu),
        section("schedules", _schedule, tz), section("night", _night), section("announcements", _announcement),
        section("voicemail", _voicemail), section("externals", _external), section("webhooks", _webhook),
        section("managers", _manager), section("duty", _duty, tz), section("branches", _branch), known, links,
    )


def parse(data: Mapping[str, Any], extensions: Mapping[Any, str], *, timezone: str | None = None,
          branches: Mapping[str, Ranges] | None = None) -> RoutingConfig:
    """The routing section as a checked `RoutingConfig`, or the first `ConfigError`."""
    config = read(data, extensions, timezone=timezone, branches=branches)
    problems = validate(config)
    if problems:
        raise problems[0]
    return config


# ---- validation ----------------------------------------------------------------------------

def validate(config: RoutingConfig) -> list[ConfigError]:
    """Every reason this configuration could leave a call with nowhere to go."""
    c = config
    problems: list[ConfigError] = []
    seen_msgs: set[str] = set()

    def add(message: str, path: Path) -> None:
        if message not in seen_msgs:
            seen_msgs.add(message)
            problems.append(ConfigError(message, path))

    # Routes: something must take every call, and no route may hide behind another.
    catch_all = None
    for i, r in enumerate(c.routes):
        if catch_all is not None:
            add(f"route '{r.name}' can never take a call: route '{catch_all}' above it takes them all",
                ("routes", i))
        if not r.numbers and not r.callers and not r.trunks:
            catch_all = catch_all or r.name
    if catch_all is None and c.unmatched is None:
        add("calls that match no route go nowhere: add 'unmatched' (for example unmatched: hangup) "
            "or a route with no numbers", ("unmatched",))

    # Every destination that exists, plus extensions the flow names.
    nodes = [f"{kind.name}:{ident}" for kind in kinds.KINDS.values() if kind.section
             for ident in getattr(c, kind.section)]
    starts = [(f"route '{r.name}'", r.to, ("routes", i, "to")) for i, r in enumerate(c.routes)]
    if c.unmatched is not None:
        starts.append(("calls that match no route", c.unmatched, ("unmatched",)))

    # Breadth first from the routes: how each destination is first reached, in words.
    how: dict[str, str] = {}
    queue: deque[str] = deque()
    for words, to, _p in starts:
        if to not in how and kinds.exists(c, to):
            how[to] = f"{words} → {kinds.describe(c, to)}"
            queue.append(to)
    while queue:
        ref = queue.popleft()
        for label, to, _p, _forced in kinds.edges(c, ref):
            if to in how or not kinds.exists(c, to):
                continue
            how[to] = f"{how[ref]} → {label} → {kinds.describe(c, to)}"
            queue.append(to)

    def where(ref: str) -> str:
        return how.get(ref, kinds.describe(c, ref))

    for words, to, p in starts:
        if not kinds.exists(c, to):
            add(f"{words} → {to}: no such destination", p)
    targeted = {to for n in list(how) + nodes for _l, to, _p, _f in kinds.edges(c, n)} | {to for _w, to, _p in starts}
    ext_refs = {to for to in targeted if to.startswith("ext:")}
    for ref in nodes + sorted(ext_refs):
        for label, to, p, _forced in kinds.edges(c, ref):
            if to not in kinds.MENU_WORDS and to != kinds.OWN_BOX and not kinds.exists(c, to):
                add(f"{where(ref)} → {label} → {to}: no such destination", p)
        for message, p in kinds.problems(c, ref, ref in targeted):
            add(f"{where(ref)} {message}", p)

    # Loops a caller who does nothing can never leave (forced edges only).
    for cycle in _forced_cycles(c, nodes + sorted(ext_refs)):
        first = cycle[0]
        steps = " → ".join(f"{label} → {kinds.describe(c, to)}" for _frm, label, to, _p in cycle)
        add(f"{where(first[0])} → {steps} goes round in a loop that never reaches voicemail or hang up",
            first[3])
    return problems


def _forced_cycles(c: RoutingConfig, nodes: list[str]) -> list[list[tuple[str, str, str, Path]]]:
    """Each distinct cycle of forced edges, as (from, label, to, config path) hops."""
    graph: dict[str, list[tuple[str, str, Path]]] = {}
    for n in nodes:
        graph[n] = [(label, to, p) for label, to, p, forced in kinds.edges(c, n) if forced and kinds.exists(c, to)]
    colour: dict[str, int] = {}
    stack: list[tuple[str, str, str, Path]] = []
    found: list[list[tuple[str, str, str, Path]]] = []
    reported: set[frozenset[str]] = set()

    def visit(n: str) -> None:
        colour[n] = 1
        for label, to, p in graph.get(n, ()):
            stack.append((n, label, to, p))
            if colour.get(to) == 1:
                i = next(i for i, hop in enumerate(stack) if hop[0] == to)
                cycle = stack[i:]
                key = frozenset(h[0] for h in cycle)
                if key not in reported:
                    reported.add(key)
                    found.append(list(cycle))
            elif colour.get(to, 0) == 0:
                if to not in graph:
                    graph[to] = [(l, t, pp) for l, t, pp, f in kinds.edges(c, to) if f and kinds.exists(c, t)]
                visit(to)
            stack.pop()
        colour[n] = 2

    for n in nodes:
        if colour.get(n, 0) == 0:
            visit(n)
    return found


# ---- dump ------------------------------------------------------------------------------------

def _dump_ref(ref: str) -> str:
    return "voicemail" if ref == "voicemail:*" else ref


def _dump_exits(exits: Exits, base: Exits | None = None) -> dict[str, str]:
    vals = (exits.no_answer, exits.busy, exits.unavailable, exits.failure)
    if len(set(vals)) == 1:
        return {"on_fail": _dump_ref(vals[0])}
    return {k: _dump_ref(v) for k, v in zip(("on_no_answer", "on_busy", "on_unavailable", "on_failure"), vals)}


def _dump_avail(a: Availability) -> dict[str, Any]:
    return {k: getattr(a, k) for k in AVAIL_KEYS if getattr(a, k) is not None}


def _dump_member(mb: Member) -> Any:
    d: dict[str, Any] = {"number" if mb.external else "ext": mb.target}
    if mb.branch:
        d = {"branch": mb.branch, "ext": split_target(mb.target)[1]}
    if mb.tier != 1:
        d["tier"] = mb.tier
    if mb.ring_time is not None:
        d["ring_time"] = mb.ring_time
    if mb.confirm is not None:
        d["confirm"] = mb.confirm
    d.update(_dump_avail(mb.availability))
    return d


def _fmt_range(h: Hours) -> str:
    return f"{minutes_label(h.start)}-{minutes_label(h.end if h.end <= DAY else h.end - DAY)}"


def dump(config: RoutingConfig) -> dict[str, Any]:
    """The canonical `routing:` section for `config`."""
    c = config
    out: dict[str, Any] = {"timezone": c.timezone}
    out["routes"] = []
    for r in c.routes:
        d: dict[str, Any] = {"name": r.name}
        if r.numbers:
            d["numbers"] = list(r.numbers)
        if r.callers:
            d["callers"] = list(r.callers)
        if r.trunks:
            d["trunks"] = list(r.trunks)
        d["to"] = r.to
        out["routes"].append(d)
    if c.unmatched is not None:
        out["unmatched"] = c.unmatched
    dflt = c.extension_defaults
    out["extension_defaults"] = {"ring_time": dflt.ring_time, **_dump_exits(dflt.exits),
                                 **_dump_avail(dflt.availability)}
    out["extensions"] = {n: {"ring_time": o.ring_time, **_dump_exits(o.exits), **_dump_avail(o.availability)}
                         for n, o in c.extensions.items()}
    out["groups"] = {i: {
        "name": g.name, "strategy": g.strategy, "members": [_dump_member(x) for x in g.members],
        "ring_time": g.ring_time, "rounds": g.rounds, "widen_after": g.widen_after, "confirm": g.confirm,
        **({"announce": g.announce} if g.announce else {}), **_dump_avail(g.availability), **_dump_exits(g.exits),
    } for i, g in c.groups.items()}
    out["queues"] = {i: {
        "name": q.name, "strategy": q.strategy, "members": [_dump_member(x) for x in q.members],
        "ring_time": q.ring_time, "retry": q.retry, "max_wait": q.max_wait, "widen_after": q.widen_after,
        "announce_every": q.announce_every, "announce_position": q.announce_position,
        "announce_wait": q.announce_wait, "music": q.music,
        **({"greeting": q.greeting} if q.greeting else {}),
        **({"exit_key": q.exit_key, "exit_to": q.exit_to} if q.exit_to else {}),
        "callback": q.callback, "callback_key": q.callback_key, "vip_first": q.vip_first, "confirm": q.confirm,
        **_dump_avail(q.availability), **_dump_exits(q.exits),
    } for i, q in c.queues.items()}
    out["menus"] = {i: {
        "name": mn.name, "prompt": mn.prompt, "options": dict(mn.options), "timeout": mn.timeout,
        "inter_digit": mn.inter_digit, "retries": mn.retries,
        **({"invalid_prompt": mn.invalid_prompt} if mn.invalid_prompt else {}),
        **({"timeout_prompt": mn.timeout_prompt} if mn.timeout_prompt else {}),
        "on_timeout": mn.on_timeout, "on_invalid": mn.on_invalid,
        "direct_dial": mn.direct_dial if isinstance(mn.direct_dial, bool) else list(mn.direct_dial),
    } for i, mn in c.menus.items()}
    out["schedules"] = {}
    for i, s in c.schedules.items():
        hours: dict[str, list[str]] = {}
        for h in s.hours:
            hours.setdefault(m.WEEKDAYS[h.day], []).append(_fmt_range(h))
        d = {"name": s.name, "timezone": s.timezone, "hours": hours, "holidays": list(s.holidays)}
        if s.open is not None:
            d["open"] = s.open
        if s.closed is not None:
            d["closed"] = s.closed
        out["schedules"][i] = d
    out["night"] = {i: {"name": n.name, **({"schedule": n.schedule} if n.schedule else {}),
                        "day": n.day, "night": n.night} for i, n in c.night.items()}
    out["announcements"] = {i: {"name": a.name, "prompt": a.prompt, "then": a.then}
                            for i, a in c.announcements.items()}
    out["voicemail"] = {i: {"name": v.name, **({"greeting": v.greeting} if v.greeting else {}),
                            **({"email": v.email} if v.email else {})} for i, v in c.voicemail.items()}
    out["externals"] = {i: {"name": e.name, "number": e.number, "ring_time": e.ring_time, "confirm": e.confirm,
                            **_dump_exits(e.exits)} for i, e in c.externals.items()}
    out["webhooks"] = {i: {"name": w.name, "url": w.url, "timeout": w.timeout, "fallback": w.fallback,
                           "allow_numbers": w.allow_numbers, "ring_time": w.ring_time, **_dump_exits(w.exits)}
                       for i, w in c.webhooks.items()}
    out["managers"] = {i: {"name": p.name, "next": p.next, "learn": p.learn, "ring_time": p.ring_time,
                           **_dump_avail(p.availability)} for i, p in c.managers.items()}
    out["duty"] = {i: {
        "name": r.name, "timezone": r.timezone, "changeover": minutes_label(r.changeover),
        "ring_time": r.ring_time, "confirm": r.confirm, "nobody": r.nobody, **_dump_exits(r.exits),
        "roster": [{"number": e.number, **({"dates": list(e.dates)} if e.dates else {}),
                    **({"weekdays": [format_days(e.weekdays)]} if e.weekdays else {})} for e in r.entries],
    } for i, r in c.duty.items()}
    out["branches"] = {i: {"name": b.name, "ring_time": b.ring_time, **_dump_exits(b.exits)}
                       for i, b in c.branches.items()}
    return out
