"""The kinds of destination, in one table: where each is kept, how it is named, where it sends calls.

A destination reference is `kind:id` (see model.py).  What depends on the
kind is a field of the kind's row in `KINDS`, never an `if kind == ...`
chain, so the validator, the describer, the flow graph and the router all
read the same answers:

    section    the RoutingConfig field (and configuration key) that keeps
               them by id: "groups"; None for ext, number and hangup
    label      the noun in messages and traces: "group" in "group 'Sales'"
    edges      where one can send a call, as `Edge`s (the flow graph)
    problems   what makes one lose calls by itself ("has no members")
    exits      where the call goes when its step fails (ringing, a forward);
               None for kinds whose steps do not fail that way
    exists     whether `kind:id` names something; None: "its id is in section"
    describe   its words; None: "<label> '<name>'"

Every function in a row takes the configuration and the id (the part after
the colon).  Adding a kind of destination: its dataclass in model.py, its
reader and dumper in config.py, a row here, a handler in router.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from .branch import in_ranges, split_target
from .model import Exits, RoutingConfig, split_ref
from .schedule import uncovered, week_label

Path = tuple[str | int, ...]

# Menu options only: back to the menu before, or this menu again.
MENU_WORDS = {"parent": "the menu before", "repeat": "the same menu"}
OWN_BOX = "voicemail:*"        # an extension's exits: that extension's own mailbox


class Edge(NamedTuple):
    """One way a destination can send a call on."""

    label: str                 # "on busy", "option 1", "closed"
    to: str                    # a destination reference, "parent"/"repeat", or OWN_BOX
    path: Path                 # where the configuration says so
    forced: bool               # taken without the caller choosing it (menu options and exit keys are chosen)


Problem = tuple[str, Path]    # (what is wrong, in words; where)


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    section: str | None = None
    edges: Callable[[RoutingConfig, str], list[Edge]] | None = None
    problems: Callable[[RoutingConfig, str, bool], list[Problem]] | None = None
    exits: Callable[[RoutingConfig, str], Exits] | None = None
    exists: Callable[[RoutingConfig, str], bool] | None = None
    describe: Callable[[RoutingConfig, str], str] | None = None

    def item(self, config: RoutingConfig, ident: str) -> Any:
        """The configured destination with this id, or None."""
        return getattr(config, self.section).get(ident) if self.section else None


# ---- edges ----------------------------------------------------------------------------------

def exit_edges(exits: Exits, path: Path, own: str = "") -> list[Edge]:
    """The on_* exits as edges; one `on fail` edge when all four go to the same place."""
    pairs = [("on no answer", exits.no_answer, "on_no_answer"), ("on busy", exits.busy, "on_busy"),
             ("on unavailable", exits.unavailable, "on_unavailable"), ("on failure", exits.failure, "on_failure")]
    if len({p[1] for p in pairs}) == 1:
        pairs = [("on fail", exits.no_answer, "on_fail")]
    out = []
    for label, ref, key in pairs:
        if ref == OWN_BOX and own:
            ref = f"voicemail:{own}"
        out.append(Edge(label, ref, (*path, key), True))
    return out


def _extension_path(c: RoutingConfig, ident: str) -> Path:
    return ("extensions", ident) if ident in c.extensions else ("extension_defaults",)


def _extension_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    return exit_edges(c.extension(ident).exits, _extension_path(c, ident), ident)


def _group_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    return exit_edges(c.groups[ident].exits, ("groups", ident))


def _queue_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    q = c.queues[ident]
    out = exit_edges(q.exits, ("queues", ident))
    if q.exit_to:
        out.append(Edge(f"key {q.exit_key}", q.exit_to, ("queues", ident, "exit_to"), False))
    return out


def _menu_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    mn = c.menus[ident]
    out = [Edge(f"option {d}", to, ("menus", ident, "options", d), False)
           for d, to in mn.options.items() if to not in MENU_WORDS]
    out.append(Edge("on timeout", mn.on_timeout, ("menus", ident, "on_timeout"), True))
    out.append(Edge("on invalid entry", mn.on_invalid, ("menus", ident, "on_invalid"), True))
    return out


def _schedule_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    s = c.schedules[ident]
    return [Edge(label, to, ("schedules", ident, label), True)
            for label, to in (("open", s.open), ("closed", s.closed)) if to is not None]


def _night_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    n = c.night[ident]
    return [Edge("day", n.day, ("night", ident, "day"), True), Edge("night", n.night, ("night", ident, "night"), True)]


def _announcement_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    return [Edge("then", c.announcements[ident].then, ("announcements", ident, "then"), True)]


def _external_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    return exit_edges(c.externals[ident].exits, ("externals", ident))


def _webhook_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    w = c.webhooks[ident]
    # Its exits apply to the extension or number the webhook chose, which has no own box.
    chosen = [Edge(f"chosen destination {e.label}", e.to, e.path, True)
              for e in exit_edges(w.exits, ("webhooks", ident)) if e.to != OWN_BOX]
    return [Edge("fallback", w.fallback, ("webhooks", ident, "fallback"), True), *chosen]


def _manager_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    return [Edge("next", c.managers[ident].next, ("managers", ident, "next"), True)]


def _duty_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    r = c.duty[ident]
    return [Edge("nobody on duty", r.nobody, ("duty", ident, "nobody"), True),
            *exit_edges(r.exits, ("duty", ident))]


def _branch_edges(c: RoutingConfig, ident: str) -> list[Edge]:
    return exit_edges(c.branches[ident].exits, ("branches", ident))


# ---- problems -------------------------------------------------------------------------------

def _group_problems(c: RoutingConfig, ident: str, reached: bool) -> list[Problem]:
    return [] if c.groups[ident].members else [("has no members", ("groups", ident, "members"))]


def _queue_problems(c: RoutingConfig, ident: str, reached: bool) -> list[Problem]:
    return [] if c.queues[ident].members else [("has no members", ("queues", ident, "members"))]


def _menu_problems(c: RoutingConfig, ident: str, reached: bool) -> list[Problem]:
    mn = c.menus[ident]
    if mn.options or mn.direct_dial:
        return []
    return [("has no options and no direct dial", ("menus", ident, "options"))]


def _schedule_problems(c: RoutingConfig, ident: str, reached: bool) -> list[Problem]:
    s = c.schedules[ident]
    if not (reached or s.open or s.closed):
        return []  # only a night switch's calendar
    out: list[Problem] = []
    if s.open is None:
        out.append(("does not say where calls go while open: add 'open'", ("schedules", ident, "open")))
    if s.closed is None:
        gap = uncovered(s.hours)
        if gap is not None:
            out.append((f"leaves {week_label(gap[0])}–{week_label(gap[1])} with nowhere to go: add 'closed'",
                        ("schedules", ident, "closed")))
        elif s.holidays:
            out.append((f"leaves holidays ({s.holidays[0]}...) with nowhere to go: add 'closed'",
                        ("schedules", ident, "closed")))
    return out


def _night_problems(c: RoutingConfig, ident: str, reached: bool) -> list[Problem]:
    n = c.night[ident]
    if n.schedule is None or n.schedule in c.schedules:
        return []
    return [(f"follows schedule '{n.schedule}', which does not exist", ("night", ident, "schedule"))]


# ---- exits, existence, words ----------------------------------------------------------------

def _manager_exits(c: RoutingConfig, ident: str) -> Exits:
    nxt = c.managers[ident].next
    return Exits(nxt, nxt, nxt, nxt)


def _extension_exists(c: RoutingConfig, ident: str) -> bool:
    return ident in c.known_extensions


def _box_exists(c: RoutingConfig, ident: str) -> bool:
    return ident in c.voicemail or ident in c.known_extensions   # a shared box, or an extension's own


def _describe_extension(c: RoutingConfig, ident: str) -> str:
    name = c.known_extensions.get(ident)
    return f"extension {ident}" + (f" ({name})" if name else "")


def _describe_box(c: RoutingConfig, ident: str) -> str:
    if ident == "*":
        return "own voicemail"
    box = c.voicemail.get(ident)
    return f"voicemail {ident}" if box is None else f"voicemail '{box.name}'"


def _branch_exists(c: RoutingConfig, ident: str) -> bool:
    """`shop2` or `shop2/201`: a `branches` entry, and (when the trunks are known) a branch trunk
    whose extensions include 201."""
    base, ext = split_target(ident)
    if base not in c.branches or (ext and not ext.isdigit()):
        return False
    if c.links is None:
        return True
    return base in c.links and (not ext or in_ranges(ext, c.links[base]))


def _describe_branch(c: RoutingConfig, ident: str) -> str:
    base, ext = split_target(ident)
    b = c.branches.get(base)
    where = f"branch '{b.name if b is not None else base}'"
    return f"extension {ext} at {where}" if ext else where


def _branch_exits(c: RoutingConfig, ident: str) -> Exits:
    return c.branches[split_target(ident)[0]].exits


def _always(c: RoutingConfig, ident: str) -> bool:
    return True


def _never(c: RoutingConfig, ident: str) -> bool:
    return False


# The order is the configuration's: sections are read, listed and checked in it.
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("ext", "extension", edges=_extension_edges, exits=lambda c, i: c.extension(i).exits,
         exists=_extension_exists, describe=_describe_extension),
    Kind("group", "group", "groups", edges=_group_edges, problems=_group_problems,
         exits=lambda c, i: c.groups[i].exits),
    Kind("queue", "queue", "queues", edges=_queue_edges, problems=_queue_problems,
         exits=lambda c, i: c.queues[i].exits),
    Kind("menu", "menu", "menus", edges=_menu_edges, problems=_menu_problems),
    Kind("schedule", "schedule", "schedules", edges=_schedule_edges, problems=_schedule_problems),
    Kind("night", "night switch", "night", edges=_night_edges, problems=_night_problems),
    Kind("announcement", "announcement", "announcements", edges=_announcement_edges),
    Kind("voicemail", "voicemail", "voicemail", exists=_box_exists, describe=_describe_box),
    Kind("external", "external", "externals", edges=_external_edges, exits=lambda c, i: c.externals[i].exits),
    # Only a webhook's answer leads to a number; the configuration never names one.
    Kind("number", "number", exists=_never, describe=lambda c, i: i),
    Kind("webhook", "webhook", "webhooks", edges=_webhook_edges),
    Kind("manager", "personal manager", "managers", edges=_manager_edges, exits=_manager_exits),
    Kind("duty", "duty roster", "duty", edges=_duty_edges, exits=lambda c, i: c.duty[i].exits),
    # Another shop's appliance over a branch trunk: its routing (branch:shop2) or an extension (branch:shop2/201).
    Kind("branch", "branch", "branches", edges=_branch_edges, exits=_branch_exits,
         exists=_branch_exists, describe=_describe_branch),
    Kind("hangup", "hang up", exists=_always, describe=lambda c, i: "hang up"),
)}
SECTIONS = tuple(k.section for k in KINDS.values() if k.section)
WRITTEN = tuple(name for name in KINDS if name != "number")   # what an owner may write before the colon
HANG_UP = Exits("hangup", "hangup", "hangup", "hangup")


def exists(config: RoutingConfig, ref: str) -> bool:
    """Whether `ref` names a destination this configuration has."""
    name, ident = split_ref(ref)
    kind = KINDS.get(name)
    if kind is None:
        return False
    if kind.exists is not None:
        return kind.exists(config, ident)
    return kind.item(config, ident) is not None


def item(config: RoutingConfig, ref: str) -> Any:
    """The configured destination `ref` names (a Group, a Menu...), or None."""
    name, ident = split_ref(ref)
    kind = KINDS.get(name)
    return kind.item(config, ident) if kind is not None else None


def describe(config: RoutingConfig, ref: str) -> str:
    """A destination in words: "group 'Sales'", "extension 101 (Reception)", "hang up"."""
    if ref in MENU_WORDS:
        return MENU_WORDS[ref]
    name, ident = split_ref(ref)
    kind = KINDS[name]
    if kind.describe is not None:
        return kind.describe(config, ident)
    item = kind.item(config, ident)
    return f"{kind.label} '{item.name if item is not None else ident}'"


def edges(config: RoutingConfig, ref: str) -> list[Edge]:
    """Where a destination can send a call; none for one that does not exist."""
    name, ident = split_ref(ref)
    kind = KINDS.get(name)
    if kind is None or kind.edges is None or (kind.section and kind.item(config, ident) is None):
        return []
    return kind.edges(config, ident)


def problems(config: RoutingConfig, ref: str, reached: bool) -> list[Problem]:
    """What makes an existing destination lose calls by itself; `reached`: something sends calls to it."""
    name, ident = split_ref(ref)
    kind = KINDS[name]
    return kind.problems(config, ident, reached) if kind.problems is not None else []


def exits(config: RoutingConfig, ref: str) -> Exits:
    """Where the call goes when the step for `ref` fails (hang up for kinds without exits)."""
    name, ident = split_ref(ref)
    kind = KINDS[name]
    return kind.exits(config, ident) if kind.exits is not None else HANG_UP
