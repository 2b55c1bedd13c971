"""Which recording policy applies to a call (pure).

A policy is set per target, named as routing names destinations: `ext:101`, `group:sales`,
`queue:support`, and `trunk:<name>` for a trunk.  A call touches up to three of them: the trunk it
came in (or went out) on, the group or queue that rang the person who answered, and the office's
extension in it (the one who answered, else the one who placed the call).  The policy that applies
is the most specific one of those that asks for recording, `always` or `on_demand`, looked at from
the extension to the group or queue to the trunk; `never` asks for nothing, so a trunk that records
every call (a legal duty) is not undone by one extension's `never`.  With none asking, `never`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence


class Policy(enum.StrEnum):
    ALWAYS = "always"        # from the moment the two sides are joined until the call ends
    NEVER = "never"
    ON_DEMAND = "on_demand"  # between presses of the feature code on a desk phone in the call


@dataclass(frozen=True)
class Rule:
    """A target's policy, and whether the parties hear that the call is recorded before they are joined."""

    policy: Policy
    announce: bool = False


@dataclass(frozen=True)
class Choice:
    policy: Policy
    target: str = ""         # the target whose rule applies ("" when none did)
    announce: bool = False

    @property
    def records(self) -> bool:
        return self.policy is not Policy.NEVER


NOTHING = Choice(Policy.NEVER)
PLACES = ("group:", "queue:")  # the kinds of destination whose rule sits between the trunk's and the extension's


def targets(trunk: str, place: str, extension: str) -> tuple[str, ...]:
    """The call's targets, most specific first: the extension, the group or queue, the trunk."""
    found = (f"ext:{extension}" if extension else "", place, f"trunk:{trunk}" if trunk else "")
    return tuple(t for t in found if t)


def choose(rules: Mapping[str, Rule], trunk: str = "", place: str = "", extension: str = "") -> Choice:
    """The policy for a call with this trunk, group or queue (`group:sales`) and extension."""
    for target in targets(trunk, place, extension):
        rule = rules.get(target)
        if rule is not None and rule.policy is not Policy.NEVER:
            return Choice(rule.policy, target, rule.announce)
    return NOTHING


def place_of(path: Sequence[Mapping]) -> str:
    """The last group or queue a call's path went to (`group:sales`), or "".

    The engine notes each routing step in the call's path as
    `{"kind": "step", "dest": "group:sales", ...}`; the last one that rang a
    group or a queue is the one whose member answered."""
    for note in reversed(path):
        dest = str(note.get("dest") or "")
        if note.get("kind") == "step" and dest.startswith(PLACES):
            return dest
    return ""


def office_extension(answered_by: str, placed_by: str, extensions: Iterable[str]) -> str:
    """The office's extension in a call: who answered when it is an extension, else who placed it."""
    known = set(extensions)
    for ext in (answered_by, placed_by):
        if ext and ext in known:
            return ext
    return ""
