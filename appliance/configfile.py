"""The configuration file: what `pbx config export` writes and `pbx config import` reads.

The format is YAML with one deliberate change to YAML's guessing of types:
only plain decimal integers without a leading zero become numbers, only
`true`/`false` become booleans, and everything else stays a string.  So a
phone number such as 0671234567 or +380671234567 is never turned into an
octal or a positive integer, and `no` is not a boolean.  docs/config.md
describes every key.

An import is all or nothing: the whole file is parsed and validated before
anything is written, and then written in one transaction.  An error names the
line and the reason.

A file is read within bounds, so that a small file cannot make the reader
build something huge: at most MAX_FILE_BYTES of UTF-8 text, at most
MAX_ALIASES aliases standing for at most MAX_ALIAS_VALUES values, nesting at
most MAX_DEPTH levels deep, and no YAML tags but !!str.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from appliance.errors import ConfigError, format_path
from appliance.hw.config import parse_hw
from appliance.missed.config import parse_missed
from appliance.notify.config import parse_notify
from appliance.notify.mail import check_address, parse_mail
from appliance.recording.config import parse_recording
from appliance.store import Store, generate_password, ha1, validate_extension_number
from appliance.wallboard import parse_wallboard

FORMAT_VERSION = 1
TOP_KEYS = ("version", "timezone", "sip", "calls", "hw", "missed", "notify", "mail", "wallboard", "recording",
            "extensions", "trunks", "contacts", "routing")
RINGBACKS = ("180", "tone", "music")
DIAL_CLASSES = ("local", "mobile", "international", "premium")
# calls: whole-number keys and their (lowest, highest) values
CALL_INTS = {"confirm_seconds": (3, 120), "transfer_ring_seconds": (5, 300), "voicemail_max": (10, 3600),
             "rtp_port": (1024, 64000), "rtp_ports": (100, 20000), "session_expires": (90, 7200)}
CALL_KEYS = (*CALL_INTS, "confirm_key", "ringback", "media_address", "trunk_public", "language", "supervise_beep")
LANGUAGES = ("uk", "en")  # what the appliance says to callers and desk phones


# A real configuration is tens of kilobytes; this leaves room for about
# 10,000 contacts and bounds an import's time (the pure-Python YAML reader
# takes about 8 s for 1 MiB on a desktop x86 CPU).
MAX_FILE_BYTES = 1024 * 1024
TOO_LARGE = f"larger than {MAX_FILE_BYTES // 1024 // 1024} MiB ({MAX_FILE_BYTES} bytes), the limit for a configuration file"
# Aliases let a 2 KB file stand for a billion values ("billion laughs"); an
# exported file has none, and a hand-written one needs a few.
MAX_ALIASES = 100
MAX_ALIAS_VALUES = 10_000
# The routing nests about 7 levels; the bound keeps every recursive walk of
# the document far from Python's recursion limit.
MAX_DEPTH = 50
STR_TAG = "tag:yaml.org,2002:str"


class ConfigFileError(Exception):
    """A configuration file refused, with the line (1-based, or None) and the reason."""

    def __init__(self, line: int | None, reason: str, column: int | None = None):
        super().__init__(line, reason)
        self.line = line
        self.reason = reason
        self.column = column

    def __str__(self) -> str:
        if self.line and self.column:
            return f"line {self.line}, column {self.column}: {self.reason}"
        return f"line {self.line}: {self.reason}" if self.line else self.reason


def _refuse_at(mark: yaml.Mark, reason: str) -> ConfigFileError:
    return ConfigFileError(mark.line + 1, reason, mark.column + 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader with strict types (below) and bounds on what the document may stand for."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.alias_values = 0  # values the aliases stand for, as if each were copied out
        self._depth = 0
        self._open: set[str] = set()  # anchors of the nodes being composed
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> _measure(node)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        if event.tag not in (None, "!", STR_TAG):
            # Only the types the resolvers below give are read; a tag would let
            # `!!int x` or `!!timestamp x` fail inside the constructor.
            tag = event.tag.replace("tag:yaml.org,2002:", "!!")
            raise _refuse_at(event.start_mark, f"the YAML tag {tag} is not read: write the value plainly")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _refuse_at(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
        if event.anchor is not None:
            self._open.add(event.anchor)
        node = super().compose_node(parent, index)
        self._open.discard(event.anchor)
        self._depth -= 1
        return node

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        node = self.anchors.get(event.anchor)
        if node is None:
            return  # the composer reports the undefined alias
        if event.anchor in self._open:
            raise _refuse_at(event.start_mark, f"the YAML alias *{event.anchor} is inside its own anchor")
        values, levels = self._measure(node)
        self.aliases += 1
        self.alias_values += values
        if self.aliases > MAX_ALIASES or self.alias_values > MAX_ALIAS_VALUES:
            raise _refuse_at(event.start_mark, f"too many YAML aliases ({self.aliases}, standing for "
                             f"{self.alias_values} values); a file may have {MAX_ALIASES} standing for "
                             f"{MAX_ALIAS_VALUES}")
        if self._depth + levels > MAX_DEPTH:
            raise _refuse_at(event.start_mark, f"nested more than {MAX_DEPTH} levels deep (through *{event.anchor})")

    def _measure(self, node: yaml.Node) -> tuple[int, int]:
        """(values, levels) of a finished node with every alias in it copied out, each node measured once."""
        known = self._measured.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        parts = [self._measure(child) for child in children]
        result = (1 + sum(v for v, _ in parts), 1 + max((lv for _, lv in parts), default=0))
        self._measured[id(node)] = result
        return result


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # An export never uses aliases, so it always reads back within MAX_ALIASES.
        return True


# Replace YAML 1.1's implicit types with the few we want.  Whole numbers stop
# at 18 digits: Python refuses to convert much longer digit strings, and no
# setting needs one; a longer run of digits stays text.
_Loader.yaml_implicit_resolvers = {}
_Dumper.yaml_implicit_resolvers = {}
for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:0|-?[1-9][0-9]{0,17})$"), list("-0123456789"))
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^-?(?:0|[1-9][0-9]*)\.[0-9]+$"), list("-0123456789"))
    _cls.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))
    _cls.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|)$"), ["~", "n", ""])


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Numbers kept as strings are quoted, so other YAML tools read them right too.
    style = '"' if re.fullmatch(r"[+*#0-9][0-9*#]*", value) else None
    if "\n" in value:
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_float(dumper: yaml.SafeDumper, value: float) -> yaml.Node:
    # Plain decimals (1e-05 as 0.00001): the only form of float the loader reads untagged.
    if not math.isfinite(value):
        return dumper.represent_float(value)
    text = format(Decimal(repr(value)), "f")
    return dumper.represent_scalar("tag:yaml.org,2002:float", text if "." in text else f"{text}.0")


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(float, _represent_float)


def _line_map(root: yaml.Node | None) -> dict[tuple, int]:
    """Path of keys/indexes -> the 1-based line where that node starts."""
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                kpath = (*path, str(key.value))
                lines[kpath] = key.start_mark.line + 1
                walk(value, kpath)
                lines[kpath] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return lines


def line_of(lines: dict[tuple, int], path: tuple) -> int | None:
    path = tuple(str(p) if not isinstance(p, int) else p for p in path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


# -- reading ------------------------------------------------------------------


def _as_str(value: Any, path: tuple, what: str) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise ConfigError(f"{what} must be text", path)
    return str(value)


def _as_int(value: Any, path: tuple, what: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{what} must be a whole number", path)
    if low is not None and value < low or high is not None and value > high:
        raise ConfigError(f"{what} must be between {low} and {high}", path)
    return value


def _as_list(value: Any, path: tuple, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{what} must be a list", path)
    return value


def _check_keys(item: dict, allowed: set[str], path: tuple, what: str) -> None:
    for key in item:
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} in {what} (known: {', '.join(sorted(allowed))})", (*path, key))


def _parse_extensions(items: list, realm: str) -> list[dict]:
    out, seen = [], set()
    allowed = {"number", "name", "password", "ha1_md5", "ha1_sha256", "dnd", "dial_rules", "max_outbound", "email", "secure",
               "supervise", "kind"}
    for i, item in enumerate(items):
        path = ("extensions", i)
        if not isinstance(item, dict):
            raise ConfigError("each extension is a mapping with number and name", path)
        _check_keys(item, allowed, path, "an extension")
        if "number" not in item:
            raise ConfigError("an extension needs a number", path)
        try:
            number = validate_extension_number(_as_str(item["number"], (*path, "number"), "number"))
        except ConfigError as e:
            raise ConfigError(e.message, (*path, "number")) from None
        if number in seen:
            raise ConfigError(f"extension {number} is listed twice", (*path, "number"))
        seen.add(number)
        name = _as_str(item.get("name", ""), (*path, "name"), "name").strip()
        if not name:
            raise ConfigError(f"extension {number} needs a name", path)
        if "password" in item:
            password = _as_str(item["password"], (*path, "password"), "password")
            if len(password) < 8:
                raise ConfigError(f"the password of extension {number} is shorter than 8 characters", (*path, "password"))
            md5, sha = ha1(number, realm, password, "MD5"), ha1(number, realm, password, "SHA-256")
        elif "ha1_md5" in item and "ha1_sha256" in item:
            md5 = _as_str(item["ha1_md5"], (*path, "ha1_md5"), "ha1_md5").lower()
            sha = _as_str(item["ha1_sha256"], (*path, "ha1_sha256"), "ha1_sha256").lower()
            if not re.fullmatch(r"[0-9a-f]{32}", md5):
                raise ConfigError("ha1_md5 must be 32 hex digits", (*path, "ha1_md5"))
            if not re.fullmatch(r"[0-9a-f]{64}", sha):
                raise ConfigError("ha1_sha256 must be 64 hex digits", (*path, "ha1_sha256"))
        elif item.get("kind") == "analog":
            # An analog phone's line process sets its own secret when it starts (docs/analog.md).
            secret = generate_password()
            md5, sha = ha1(number, realm, secret, "MD5"), ha1(number, realm, secret, "SHA-256")
        else:
            raise ConfigError(f"extension {number} needs a password (or ha1_md5 and ha1_sha256)", path)
        if item.get("kind", "sip") not in ("sip", "analog"):
            raise ConfigError(f"extension {number}: kind must be sip or analog", (*path, "kind"))
        rules = _as_list(item.get("dial_rules", ["local", "mobile"]), (*path, "dial_rules"), "dial_rules")
        for j, rule in enumerate(rules):
            if rule not in DIAL_CLASSES:
                raise ConfigError(f"dial rule {rule!r} is not one of {', '.join(DIAL_CLASSES)}", (*path, "dial_rules", j))
        dnd = item.get("dnd", False)
        if not isinstance(dnd, bool):
            raise ConfigError("dnd must be true or false", (*path, "dnd"))
        email = check_address(item["email"], (*path, "email"), "email") if item.get("email") else None
        secure = item.get("secure", False)
        if not isinstance(secure, bool):
            raise ConfigError("secure must be true or false", (*path, "secure"))
        supervise = item.get("supervise", False)
        if not isinstance(supervise, bool):
            raise ConfigError("supervise must be true or false", (*path, "supervise"))
        out.append(
            {
                "number": number,
                "name": name,
                "ha1_md5": md5,
                "ha1_sha256": sha,
                "realm": realm,
                "dnd": int(dnd),
                "dial_rules": json.dumps(list(rules)),
                "max_outbound": _as_int(item.get("max_outbound", 2), (*path, "max_outbound"), "max_outbound", 0, 10),
                "email": email,
                "secure": int(secure),
                "supervise": int(supervise),
                **({"kind": "analog"} if item.get("kind") == "analog" else {}),
            }
        )
    return out


def check_lines(trunks: list[dict], lines: dict, extensions: list[dict] | None = None, phones: dict | None = None) -> None:
    """Analog lines (FXO) against their trunks, analog phones (FXS) against their extensions."""
    from appliance.analog.config import check_extensions, check_trunks

    check_trunks(trunks, lines)
    check_extensions({e["number"] for e in extensions or [] if e.get("kind") == "analog"}, phones or {})


def _parse_trunks(items: list) -> list[dict]:
    out, seen = [], set()
    allowed = {
        "name", "kind", "host", "port", "transport", "username", "password", "auth_username",
        "from_domain", "numbers", "addresses", "caller_id", "pass_caller_id", "register_expires", "enabled",
        "number",  # an analog line's own number (docs/analog.md)
        "secret", "extensions",  # a branch trunk's (docs/branches.md)
    }
    for i, item in enumerate(items):
        path = ("trunks", i)
        if not isinstance(item, dict):
            raise ConfigError("each trunk is a mapping", path)
        _check_keys(item, allowed, path, "a trunk")
        name = _as_str(item.get("name", ""), (*path, "name"), "name").strip()
        if not name:
            raise ConfigError("a trunk needs a name", path)
        if name in seen:
            raise ConfigError(f"trunk {name!r} is listed twice", (*path, "name"))
        seen.add(name)
        kind = item.get("kind", "register")
        if kind not in ("register", "ip", "analog", "branch"):
            raise ConfigError(f"trunk {name!r}: kind must be register, ip, analog or branch", (*path, "kind"))
        if kind == "branch":
            out.append(_parse_branch_trunk(item, name, path))
            continue
        for key in ("secret", "extensions"):
            if key in item:
                raise ConfigError(f"trunk {name!r}: {key} is for branch trunks (kind: branch)", (*path, key))
        if kind == "analog":
            # The line's own user agent on loopback (appliance/analog) is what the engine calls.
            item = {"host": "127.0.0.1", "port": 5072, "addresses": ["127.0.0.1"], **item}
            if "number" in item:
                item["numbers"] = [item.pop("number")]
        elif "number" in item:
            raise ConfigError(f"trunk {name!r}: number is for analog lines; a provider's are its numbers", (*path, "number"))
        if "host" not in item:
            raise ConfigError(f"trunk {name!r} needs the provider's host", path)
        transport = item.get("transport", "udp")
        if transport not in ("udp", "tcp"):
            raise ConfigError(f"trunk {name!r}: transport must be udp or tcp", (*path, "transport"))
        row = {
            "name": name,
            "kind": kind,
            "host": _as_str(item["host"], (*path, "host"), "host"),
            "port": _as_int(item.get("port", 5060), (*path, "port"), "port", 1, 65535),
            "transport": transport,
            "username": _as_str(item.get("username", ""), (*path, "username"), "username"),
            "password": _as_str(item.get("password", ""), (*path, "password"), "password"),
            "auth_username": _as_str(item.get("auth_username", ""), (*path, "auth_username"), "auth_username"),
            "from_domain": _as_str(item.get("from_domain", ""), (*path, "from_domain"), "from_domain"),
            "numbers": [_as_str(n, (*path, "numbers", j), "number") for j, n in enumerate(_as_list(item.get("numbers"), (*path, "numbers"), "numbers"))],
            "addresses": [_as_str(a, (*path, "addresses", j), "address") for j, a in enumerate(_as_list(item.get("addresses"), (*path, "addresses"), "addresses"))],
            "caller_id": _as_str(item.get("caller_id", ""), (*path, "caller_id"), "caller_id"),
            "pass_caller_id": int(bool(item.get("pass_caller_id", False))),
            "register_expires": _as_int(item.get("register_expires", 300), (*path, "register_expires"), "register_expires", 60, 3600),
            "enabled": int(bool(item.get("enabled", True))),
        }
        if kind == "register" and not row["username"]:
            raise ConfigError(f"trunk {name!r} registers, so it needs a username", path)
        if kind == "ip" and not row["addresses"]:
            raise ConfigError(f"trunk {name!r} is IP-authenticated, so it needs the provider's addresses", path)
        out.append(row)
    return out


BRANCH_SECRET_MIN = 16


def _parse_branch_trunk(item: dict, name: str, path: tuple) -> dict:
    """`kind: branch`: another shop's appliance (docs/branches.md).  The shared secret is kept in the
    password column and the extension ranges in the numbers column, which such a trunk has no other use for."""
    from appliance.routing.branch import format_ranges, parse_ranges

    _check_keys(item, {"name", "kind", "host", "port", "secret", "extensions", "addresses", "enabled"}, path,
                "a branch trunk")
    if "host" not in item:
        raise ConfigError(f"trunk {name!r} needs the other appliance's host", path)
    secret = _as_str(item.get("secret", ""), (*path, "secret"), "secret")
    if len(secret) < BRANCH_SECRET_MIN:
        raise ConfigError(f"trunk {name!r}: a branch needs a shared secret of at least {BRANCH_SECRET_MIN} "
                          "characters, the same at both ends", (*path, "secret"))
    try:
        ranges = parse_ranges(item.get("extensions"), (*path, "extensions"))
    except ConfigError as e:
        raise ConfigError(f"trunk {name!r}: {e.message}", (*path, "extensions")) from None
    host = _as_str(item["host"], (*path, "host"), "host")
    addresses = [_as_str(a, (*path, "addresses", j), "address")
                 for j, a in enumerate(_as_list(item.get("addresses"), (*path, "addresses"), "addresses"))]
    return {
        "name": name, "kind": "branch", "host": host,
        "port": _as_int(item.get("port", 5070), (*path, "port"), "port", 1, 65535),
        "transport": "udp", "username": "", "password": secret, "auth_username": "", "from_domain": "",
        "numbers": [format_ranges(ranges)], "addresses": addresses, "caller_id": "", "pass_caller_id": 0,
        "register_expires": 300, "enabled": int(bool(item.get("enabled", True))),
    }


def branch_ranges(trunks: list[dict]) -> dict:
    """Each enabled branch trunk's extension ranges, for routing (routing/branch.py)."""
    from appliance.routing.branch import parse_ranges

    return {t["name"]: parse_ranges(t["numbers"]) for t in trunks if t["kind"] == "branch" and t["enabled"]}


def _check_branches(trunks: list[dict], extensions: list[dict]) -> None:
    """A branch's extensions are not this appliance's, nor another branch's."""
    from appliance.routing.branch import overlaps, own_clash, parse_ranges

    seen: dict[str, tuple] = {}
    for i, t in enumerate(trunks):
        if t["kind"] != "branch":
            continue
        ranges = parse_ranges(t["numbers"])
        clash = own_clash(ranges, (e["number"] for e in extensions))
        if clash is not None:
            raise ConfigError(f"trunk {t['name']!r}: extension {clash} is this appliance's own, "
                              "not the branch's", ("trunks", i, "extensions"))
        for other, theirs in seen.items():
            if overlaps(ranges, theirs):
                raise ConfigError(f"trunk {t['name']!r}: its extensions overlap branch {other!r}'s",
                                  ("trunks", i, "extensions"))
        seen[t["name"]] = ranges


def _parse_contacts(items: list, extensions: set[str]) -> list[dict]:
    from appliance.routing.numbers import normalise

    out, seen = [], set()
    for i, item in enumerate(items):
        path = ("contacts", i)
        if not isinstance(item, dict):
            raise ConfigError("each contact is a mapping with a number", path)
        _check_keys(item, {"number", "name", "manager", "vip", "note"}, path, "a contact")
        raw = _as_str(item.get("number", ""), (*path, "number"), "number")
        number = normalise(raw)
        if not number:
            raise ConfigError(f"contact number {raw!r} is not a phone number", (*path, "number"))
        if number in seen:
            raise ConfigError(f"contact {raw} is listed twice", (*path, "number"))
        seen.add(number)
        manager = item.get("manager")
        manager = None if manager is None else _as_str(manager, (*path, "manager"), "manager")
        if manager is not None and manager not in extensions:
            raise ConfigError(f"contact {raw}: manager {manager} is not an extension", (*path, "manager"))
        out.append(
            {
                "number": number,
                "name": _as_str(item.get("name", ""), (*path, "name"), "name"),
                "manager": manager,
                "vip": int(bool(item.get("vip", False))),
                "note": _as_str(item.get("note", ""), (*path, "note"), "note"),
                "learned": 0,
            }
        )
    return out


@dataclass
class ParsedConfig:
    timezone: str
    realm: str
    extensions: list[dict]
    trunks: list[dict]
    contacts: list[dict]
    routing: dict
    calls: dict = field(default_factory=dict)
    hw: dict = field(default_factory=dict)
    missed: dict = field(default_factory=dict)
    notify: dict = field(default_factory=dict)
    mail: dict = field(default_factory=dict)
    wallboard: dict = field(default_factory=dict)
    recording: dict = field(default_factory=dict)


def _parse_ringback(value: Any, path: tuple) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if text not in RINGBACKS:
        raise ConfigError(f"ringback must be one of {', '.join(RINGBACKS)}, not {value!r}", path)
    return text


def _parse_calls(item: Any) -> dict:
    """The `calls` section: how the engine carries calls out (stored as the `engine` setting)."""
    path = ("calls",)
    if item is None:
        return {}
    if not isinstance(item, dict):
        raise ConfigError("calls must be a mapping", path)
    _check_keys(item, set(CALL_KEYS), path, "calls")
    out: dict[str, Any] = {}
    for key, (low, high) in CALL_INTS.items():
        if key in item:
            out[key] = _as_int(item[key], (*path, key), key, low, high)
    if "rtp_port" in out and out["rtp_port"] % 2:
        raise ConfigError("rtp_port must be even (RTCP takes the odd port above it)", (*path, "rtp_port"))
    first, count = out.get("rtp_port", 10000), out.get("rtp_ports", 4000)
    if first + count > 65536:
        key = "rtp_ports" if "rtp_ports" in out else "rtp_port"
        raise ConfigError(f"rtp_port {first} with {count} ports runs past port 65535", (*path, key))
    if "language" in item:
        if item["language"] not in LANGUAGES:
            raise ConfigError(f"language must be one of {', '.join(LANGUAGES)}", (*path, "language"))
        out["language"] = item["language"]
    if "confirm_key" in item:
        key = item["confirm_key"]
        key = str(key) if isinstance(key, int) and not isinstance(key, bool) else key
        if not isinstance(key, str) or len(key) != 1 or key not in "0123456789*#":
            raise ConfigError("confirm_key must be one key: 0-9, * or #", (*path, "confirm_key"))
        out["confirm_key"] = key
    if "supervise_beep" in item:
        if not isinstance(item["supervise_beep"], bool):
            raise ConfigError("supervise_beep must be true or false", (*path, "supervise_beep"))
        out["supervise_beep"] = item["supervise_beep"]
    for key in ("media_address", "trunk_public"):
        if key in item:
            value = _as_str(item[key], (*path, key), key)
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ConfigError(f"{key} must be an IP address such as 192.168.1.10, not {value!r}",
                                  (*path, key)) from None
            out[key] = value
    if "ringback" in item:
        rb = item["ringback"]
        if isinstance(rb, dict):
            out["ringback"] = {_as_str(k, (*path, "ringback"), "a destination"): _parse_ringback(v, (*path, "ringback", k))
                               for k, v in rb.items()}
        else:
            out["ringback"] = _parse_ringback(rb, (*path, "ringback"))
    return out


def parse_document(doc: Any) -> ParsedConfig:
    """Check a whole document; raises ConfigError with the path of the first problem."""
    from appliance.routing.config import dump as dump_routing, parse as parse_routing

    if not isinstance(doc, dict):
        raise ConfigError("the file must be a mapping with keys " + ", ".join(TOP_KEYS))
    _check_keys(doc, set(TOP_KEYS), (), "the file")
    version = doc.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ConfigError(f"version {version!r} is not supported (this appliance reads version {FORMAT_VERSION})", ("version",))
    tz = _as_str(doc.get("timezone", "Europe/Kyiv"), ("timezone",), "timezone")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown timezone {tz!r} (for example Europe/Kyiv)", ("timezone",)) from None
    sip = doc.get("sip") or {}
    if not isinstance(sip, dict):
        raise ConfigError("sip must be a mapping", ("sip",))
    _check_keys(sip, {"realm"}, ("sip",), "sip")
    realm = _as_str(sip.get("realm", "pbx"), ("sip", "realm"), "realm")
    extensions = _parse_extensions(_as_list(doc.get("extensions"), ("extensions",), "extensions"), realm)
    trunks = _parse_trunks(_as_list(doc.get("trunks"), ("trunks",), "trunks"))
    _check_branches(trunks, extensions)
    numbers = {e["number"] for e in extensions}
    contacts = _parse_contacts(_as_list(doc.get("contacts"), ("contacts",), "contacts"), numbers)
    routing_doc = doc.get("routing") or {}
    if not isinstance(routing_doc, dict):
        raise ConfigError("routing must be a mapping", ("routing",))
    try:
        routing = dump_routing(parse_routing(routing_doc, {e["number"]: e["name"] for e in extensions}, timezone=tz,
                                             branches=branch_ranges(trunks)))
    except ConfigError as e:
        raise e.at("routing") from None
    calls = _parse_calls(doc.get("calls"))
    hw = parse_hw(doc.get("hw"), routing.get("night") or {})
    check_lines(trunks, hw.get("lines") or {}, extensions, hw.get("phones") or {})
    missed = parse_missed(doc.get("missed"), numbers, routing.get("schedules") or {})
    notify = parse_notify(doc.get("notify"))
    mail = parse_mail(doc.get("mail"))
    wallboard = parse_wallboard(doc.get("wallboard"))
    recording = parse_recording(doc.get("recording"), numbers, {t["name"] for t in trunks},
                                routing.get("groups") or {}, routing.get("queues") or {})
    return ParsedConfig(tz, realm, extensions, trunks, contacts, routing, calls, hw, missed, notify, mail, wallboard,
                        recording)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def decode(data: bytes) -> str:
    """A file's bytes as text, refused when over MAX_FILE_BYTES or not UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        raise ConfigFileError(None, TOO_LARGE)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigFileError(line, f"not UTF-8 text: byte {data[e.start]:#04x} at offset {e.start}") from None


def read_file(stream: BinaryIO) -> str:
    """A file's text; one byte past the limit is enough to refuse it, so a huge file is never read whole."""
    return decode(stream.read(MAX_FILE_BYTES + 1))


def _unreadable(text: str, e: yaml.YAMLError) -> ConfigFileError:
    """A one-line ConfigFileError, with line and column, for what the YAML reader refused."""
    if isinstance(e, yaml.MarkedYAMLError) and (e.problem_mark or e.context_mark):
        return _refuse_at(e.problem_mark or e.context_mark, f"not valid YAML: {_one_line(e.problem or e.context)}")
    if isinstance(e, yaml.reader.ReaderError):
        # Control characters: pyyaml gives only the character's index in the text.
        start = text.rfind("\n", 0, e.position) + 1
        return ConfigFileError(text.count("\n", 0, e.position) + 1,
                               f"not valid YAML: character U+{e.character:04X} is not allowed",
                               e.position - start + 1)
    return ConfigFileError(None, f"not valid YAML: {_one_line(e)}")


def _read_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The document and its root node (which carries the line numbers)."""
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            return (None if root is None else loader.construct_document(root)), root
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        raise _unreadable(text, e) from None


def _not_a_mapping(root: yaml.Node | None) -> ConfigFileError:
    keys = ", ".join(TOP_KEYS)
    if root is None:
        return ConfigFileError(None, f"the file is empty: a configuration is a mapping with keys {keys}")
    kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
    return _refuse_at(root.start_mark, f"not a configuration: the file is {kind}, not a mapping with keys {keys}")


def load_text(text: str) -> ParsedConfig:
    """Parse and validate a configuration file's text, or raise ConfigFileError."""
    if len(text) > MAX_FILE_BYTES:
        # Characters, not bytes: a text this long is over the limit in UTF-8 too.
        raise ConfigFileError(None, TOO_LARGE)
    doc, root = _read_yaml(text)
    if not isinstance(doc, dict):
        raise _not_a_mapping(root)
    try:
        return parse_document(doc)
    except ConfigError as e:
        where = format_path(e.path)
        reason = f"{e.message} (at {where})" if where else e.message
        raise ConfigFileError(line_of(_line_map(root), e.path), reason) from None


def import_config(store: Store, text: str) -> ParsedConfig:
    """Replace the appliance's configuration with the file's, all or nothing."""
    cfg = load_text(text)
    apply_config(store, cfg)
    return cfg


def apply_config(store: Store, cfg: ParsedConfig) -> None:
    """Write a checked configuration over the appliance's, in one transaction (nested: a savepoint)."""
    with store.transaction():
        store.set_setting("timezone", cfg.timezone)
        store.set_setting("sip_realm", cfg.realm)
        store.set_setting("engine", cfg.calls)
        store.set_setting("hw", cfg.hw)
        store.set_setting("missed", cfg.missed)
        store.set_setting("notify", cfg.notify)
        store.set_setting("mail", cfg.mail)
        store.set_setting("wallboard", cfg.wallboard)
        store.set_setting("recording", cfg.recording)
        store.remove_extensions_except([e["number"] for e in cfg.extensions])
        for row in cfg.extensions:
            # kind: analog is kept as the phone's entry under hw.phones
            store.put_extension({k: v for k, v in row.items() if k != "kind"})
        store.remove_trunks()
        for row in cfg.trunks:
            store.put_trunk(row)
        store.remove_listed_contacts()
        for row in cfg.contacts:
            store.put_contact(row)
        store.set_routing_document(cfg.routing)
        store.set_setting("seeded", True)


# -- writing ------------------------------------------------------------------


def _routing_in_use(store: Store) -> dict:
    """The routing the appliance follows, written out even before any was saved.

    An appliance that has never run (or got its extensions by command before
    its first run) keeps no routing, and then hangs up every call.  The file
    says so in words an import accepts, where an empty section would be
    refused as a flow that leaves calls nowhere to go.
    """
    document = store.routing_document()
    if document:
        return document
    from appliance.routing.config import dump, parse

    extensions = {e["number"]: e["name"] for e in store.extensions()}
    return dump(parse({"unmatched": "hangup"}, extensions, timezone=store.timezone))


def export_config(store: Store) -> str:
    return dump_document(export_document(store))


def dump_document(doc: dict) -> str:
    """A configuration document as the file `pbx config export` writes."""
    header = (
        "# Configuration of the office PBX appliance (format version 1).\n"
        "# Import it with: pbx config import FILE   (see docs/config.md for every key)\n"
        "# Extensions carry password digests, not passwords: keep this file private.\n"
    )
    return header + yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False, default_flow_style=False)


def export_document(store: Store) -> dict[str, Any]:
    """The whole configuration as the mapping the file holds (parse_document reads it back)."""
    doc: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "timezone": store.timezone,
        "sip": {"realm": store.realm},
        "calls": {k: v for k, v in (store.get_setting("engine", {}) or {}).items() if k in CALL_KEYS},
        **({"hw": store.get_setting("hw")} if store.get_setting("hw") else {}),
        **{key: store.get_setting(key) for key in ("missed", "notify", "mail", "wallboard", "recording")
           if store.get_setting(key)},
        "extensions": [],
        "trunks": [],
        "contacts": [],
        "routing": _routing_in_use(store),
    }
    analog = set(((store.get_setting("hw") or {}).get("phones") or {}))
    for e in store.extensions():
        doc["extensions"].append(
            {
                "number": e["number"],
                "name": e["name"],
                **({"kind": "analog"} if e["number"] in analog else {}),
                "ha1_md5": e["ha1_md5"],
                "ha1_sha256": e["ha1_sha256"],
                "dnd": bool(e["dnd"]),
                "dial_rules": json.loads(e["dial_rules"] or "[]"),
                "max_outbound": e["max_outbound"],
                **({"email": e["email"]} if e.get("email") else {}),
                **({"secure": True} if e.get("secure") else {}),
                **({"supervise": True} if e.get("supervise") else {}),
            }
        )
    for t in store.trunks():
        row = {k: v for k, v in t.items()}
        if row["kind"] == "branch":
            doc["trunks"].append({"name": row["name"], "kind": "branch", "host": row["host"], "port": row["port"],
                                  "secret": row["password"], "extensions": ", ".join(row["numbers"]),
                                  **({"addresses": row["addresses"]} if row["addresses"] else {}),
                                  "enabled": bool(row["enabled"])})
            continue
        row["pass_caller_id"] = bool(row["pass_caller_id"])
        row["enabled"] = bool(row["enabled"])
        doc["trunks"].append(row)
    for c in store.contacts():
        if c["learned"]:
            continue
        item = {"number": c["number"], "name": c["name"] or "", "vip": bool(c["vip"]), "note": c["note"] or ""}
        if c["manager"]:
            item["manager"] = c["manager"]
        doc["contacts"].append(item)
    return doc
