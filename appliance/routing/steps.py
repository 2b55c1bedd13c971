"""What routing tells the engine to do next, and what the engine reports back.

Every step is frozen data.  Each carries `path`, the call's position in the
flow (which route, which destinations it went through, the menu stack and the
retry count); the engine hands the step back to `Router.next_step` with the
outcome, so routing keeps no per-call memory of its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping


class Outcome(enum.Enum):
    """How a step ended, as the engine saw it."""

    ANSWERED = "answered"          # Ring/Forward/Queue: someone took the call (give `by`)
    NO_ANSWER = "no_answer"        # rang out; Queue: max wait reached
    BUSY = "busy"                  # every target was busy
    UNAVAILABLE = "unavailable"    # nobody reachable (unregistered, DND, no agents)
    FAILED = "failed"              # a leg or the trunk failed; a prompt could not play
    PLAYED = "played"              # Play finished
    DIGITS = "digits"              # Menu: the caller entered `digits`; Queue: pressed a key
    TIMEOUT = "timeout"            # Menu: nothing entered; AskWebhook: no answer in time
    WEBHOOK_ANSWER = "webhook_answer"  # AskWebhook: the owner's URL answered with `answer`
    CALLBACK = "callback"          # Queue: the caller accepted the call-back offer
    FINISHED = "finished"          # Voicemail: message left (or the caller hung up)


@dataclass(frozen=True)
class Path:
    route: str = ""
    via: tuple[str, ...] = ()      # destinations entered, in order
    menus: tuple[str, ...] = ()    # menu stack, innermost last
    tries: int = 0                 # menu: invalid entries and timeouts so far
    reason: str = ""               # why the call came to this step ("busy", "no answer"...)
    owner: str = ""                # a webhook whose exits apply to the step it chose


@dataclass(frozen=True)
class Leg:
    """One target rung by a Ring step, from `start` to `stop` seconds after the step began."""

    target: str                    # extension number, "+380..." for an external number, "shop2/201" in a branch
    start: int
    stop: int
    external: bool = False
    confirm: bool = False          # external: the callee must press a key to take the call
    branch: str = ""               # rung over this branch trunk ("shop2" alone: that shop's own routing)


@dataclass(frozen=True)
class Ring:
    """Ring `legs` by their timers; the first answer wins, the rest are cancelled.

    A leg's start/stop are offsets from the moment the step began; the step
    ends with NO_ANSWER at `for_seconds` if nobody answered.
    """

    dest: str
    name: str
    legs: tuple[Leg, ...]
    for_seconds: int
    path: Path = Path()
    announce: str | None = None    # play to the caller first (then ringback)
    priority: int = 0              # 1 for VIP callers


@dataclass(frozen=True)
class Forward:
    """Call an external number on a trunk and bridge it (a mobile, a duty phone)."""

    dest: str
    name: str
    number: str
    for_seconds: int
    confirm: bool = True
    path: Path = Path()


@dataclass(frozen=True)
class Play:
    dest: str
    name: str
    prompt: str
    path: Path = Path()


class Entry(enum.Enum):
    """Where digits entered so far stand in a menu."""

    COMPLETE = "complete"          # act now: nothing longer starts with these digits
    MORE = "more"                  # wait up to inter_digit seconds for another digit
    INVALID = "invalid"            # nothing starts with these digits


@dataclass(frozen=True)
class Menu:
    """Play `prompt` and collect digits.

    After each digit the engine asks `entry(digits)`: COMPLETE or INVALID ends
    collecting; MORE waits `inter_digit` seconds, and when that passes the
    engine reports what it has.  So "1" is not taken while "123" is possible,
    yet a caller who wants "1" waits only `inter_digit` seconds.
    """

    dest: str
    name: str
    prompts: tuple[str, ...]       # played in order (an "invalid" prompt, then the menu's own)
    entries: frozenset[str]        # complete entries: option digits and direct-dial extensions
    timeout: int
    inter_digit: int
    path: Path = Path()

    def entry(self, digits: str) -> Entry:
        longer = any(e != digits and e.startswith(digits) for e in self.entries)
        if longer:
            return Entry.MORE
        return Entry.COMPLETE if digits in self.entries else Entry.INVALID


@dataclass(frozen=True)
class Queue:
    """Hold the caller in a queue; ring agents with `ring_plan(...)` when it is their turn.

    `priority` orders callers (VIP first), then time of joining.  Every
    `announce_every` seconds the engine calls `Router.queue_announcement`.
    """

    dest: str
    name: str
    max_wait: int
    music: str
    priority: int = 0
    announce_every: int = 0
    exit_key: str | None = None
    callback_key: str | None = None
    greeting: str | None = None
    ring_time: int = 15
    retry: int = 5
    path: Path = Path()


@dataclass(frozen=True)
class Voicemail:
    dest: str
    name: str
    box: str
    greeting: str = "unavailable"  # or "busy"
    path: Path = Path()
    prompt: str | None = None      # the box's own recorded greeting, played instead of the standard one


@dataclass(frozen=True)
class AskWebhook:
    """POST `request` as JSON to `url`; report WEBHOOK_ANSWER with the parsed body,
    or TIMEOUT after `timeout` seconds, or FAILED."""

    dest: str
    name: str
    url: str
    timeout: float
    request: Mapping[str, Any]
    path: Path = Path()


@dataclass(frozen=True)
class Hangup:
    dest: str
    reason: str
    path: Path = Path()
    callback: bool = False         # the caller asked to be called back (queue offer)


@dataclass(frozen=True)
class Connected:
    """The call was answered: routing has nothing more to do."""

    by: str
    path: Path = Path()


@dataclass(frozen=True)
class Refuse:
    """A desk phone's call or transfer the PBX will not place: `status` and a sentence for the user."""

    status: int
    reason: str
    path: Path = Path()


@dataclass(frozen=True)
class Pickup:
    """A desk phone takes a call ringing elsewhere: at extension `ext`, or in its groups when empty."""

    ext: str = ""
    path: Path = Path()


@dataclass(frozen=True)
class Feature:
    """A feature code dialled on a desk phone (`*28`...), carried out by the engine's handler for it."""

    code: str
    path: Path = Path()


@dataclass(frozen=True)
class Routed:
    """A desk phone dialled one of the office's own numbers: the call takes that number's route."""

    number: str
    path: Path = Path()


Step = Ring | Forward | Play | Menu | Queue | Voicemail | AskWebhook | Hangup | Connected
# What a desk phone's dialling can mean besides ringing (routing/desk.py); not steps of a route's flow.
DeskStep = Refuse | Pickup | Feature | Routed
TERMINAL = (Voicemail, Hangup, Connected)


@dataclass(frozen=True)
class TraceEntry:
    kind: str                      # route, schedule, night, duty, manager, group, ring, skip, ...
    text: str                      # one line an owner can read
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, **self.details}


@dataclass(frozen=True)
class Updates:
    """State the engine should store after this decision."""

    positions: Mapping[str, int] = field(default_factory=dict)   # round-robin index per group/queue
    answered: tuple[str, str] | None = None                      # (caller, extension) that answered


NO_UPDATES = Updates()


@dataclass(frozen=True)
class Decision:
    step: Step
    trace: tuple[TraceEntry, ...] = ()
    updates: Updates = NO_UPDATES

    @property
    def terminal(self) -> bool:
        return isinstance(self.step, TERMINAL)
