"""The routing configuration as frozen data: inbound routes and destinations.

Destinations point at each other by reference strings, written the way owners
write them in the configuration file:

    ext:101  group:sales  queue:support  menu:main  schedule:hours  night:main
    announcement:closed  voicemail:sales  voicemail:101  external:director
    number:+380671234567  webhook:crm  manager:personal  duty:after_hours  hangup
    branch:shop2  branch:shop2/201

and, inside a menu only, `parent` (back to the menu that led here) and
`repeat` (play this menu again).  `config.parse` turns the owner's spelling
(`101`, `group:sales`) into these canonical strings; `kinds.KINDS` says what
each kind is (its section, its words, where it sends calls).  Nothing here
does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

# Ring strategies (see strategies.py for what each one means).
STRATEGIES = (
    "ringall", "linear", "memory", "roundrobin", "random", "fewest_calls",
    "longest_idle", "tiers", "escalation",
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# One ring of the Ukrainian ring cadence (1 s on, 4 s off): "three rings" is 15 s.
SECONDS_PER_RING = 5


def split_ref(ref: str) -> tuple[str, str]:
    """("group", "sales") for "group:sales"; ("hangup", "") for "hangup"."""
    kind, _, ident = ref.partition(":")
    return kind, ident


@dataclass(frozen=True)
class Exits:
    """Where a step that can fail sends the call, per way of failing."""

    no_answer: str
    busy: str
    unavailable: str
    failure: str

    def refs(self) -> tuple[tuple[str, str], ...]:
        return (("no answer", self.no_answer), ("busy", self.busy),
                ("unavailable", self.unavailable), ("failure", self.failure))


@dataclass(frozen=True)
class Availability:
    """When a member counts as free.  None means "as the group says"."""

    skip_busy: bool | None = None
    skip_dnd: bool | None = None
    skip_unregistered: bool | None = None
    wrapup: int | None = None      # seconds after a call before ringing again
    max_calls: int | None = None   # simultaneous calls before the member is busy


@dataclass(frozen=True)
class Member:
    target: str                    # an extension number, "+380..." for an external number, "shop2/201" in a branch
    external: bool = False
    tier: int = 1
    ring_time: int | None = None   # None: the group's ring time
    confirm: bool | None = None    # external numbers: answer with a key press (None: group's)
    availability: Availability = Availability()
    branch: str = ""               # the branch trunk an extension in another shop is reached by


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    strategy: str
    members: tuple[Member, ...]
    exits: Exits
    ring_time: int = 20            # per member for one-by-one strategies, total for ring all / tiers
    rounds: int = 1
    widen_after: int = 15          # tiers: tier k joins at (k - 1) * widen_after
    availability: Availability = Availability(True, True, True, 0, 1)
    confirm: bool = True           # external members confirm with a key press
    announce: str | None = None    # prompt played to the caller before ringing


@dataclass(frozen=True)
class Queue:
    id: str
    name: str
    strategy: str
    members: tuple[Member, ...]
    exits: Exits                   # no_answer: max wait reached; unavailable: nobody logged in
    ring_time: int = 15            # one attempt on an agent
    retry: int = 5                 # pause between attempts
    max_wait: int = 300
    widen_after: int = 15
    announce_every: int = 60       # 0: never
    announce_position: bool = True
    announce_wait: bool = True
    music: str = "default"
    greeting: str | None = None
    exit_key: str | None = None
    exit_to: str | None = None
    callback: bool = False         # offer a call back instead of waiting
    callback_key: str = "1"
    vip_first: bool = True
    availability: Availability = Availability(True, True, True, 10, 1)
    confirm: bool = True


@dataclass(frozen=True)
class Menu:
    id: str
    name: str
    prompt: str
    options: Mapping[str, str]     # digits -> destination
    on_timeout: str
    on_invalid: str
    timeout: int = 5               # waiting for the first digit after the prompt
    inter_digit: int = 2           # waiting for the next digit of a longer entry
    retries: int = 2               # the prompt is played again this many times
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None
    direct_dial: bool | tuple[str, ...] = False  # True: any extension; a tuple: those only


@dataclass(frozen=True)
class Hours:
    """One weekly opening range: from `start` minutes after midnight of `day`
    (0 = Monday) to `end` minutes, where end > 1440 crosses midnight."""

    day: int
    start: int
    end: int


@dataclass(frozen=True)
class Schedule:
    id: str
    name: str
    hours: tuple[Hours, ...]
    open: str | None
    closed: str | None
    holidays: tuple[str, ...] = ()    # "2025-01-01" once, "12-25" every year
    timezone: str = "Europe/Kyiv"


@dataclass(frozen=True)
class NightSwitch:
    id: str
    name: str
    day: str
    night: str
    schedule: str | None = None       # automatic: night while this schedule is closed


@dataclass(frozen=True)
class Announcement:
    id: str
    name: str
    prompt: str
    then: str


@dataclass(frozen=True)
class VoicemailBox:
    id: str
    name: str
    greeting: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class External:
    id: str
    name: str
    number: str
    exits: Exits
    ring_time: int = 30
    confirm: bool = True


@dataclass(frozen=True)
class Webhook:
    id: str
    name: str
    url: str
    fallback: str                  # timeout, error or an answer that names nothing usable
    exits: Exits                   # when the destination it chose does not answer
    timeout: float = 1.5
    allow_numbers: bool = False    # may it send calls to external numbers (paid calls)?
    ring_time: int = 25


@dataclass(frozen=True)
class PersonalManager:
    id: str
    name: str
    next: str                      # unknown caller, no manager, manager away or not answering
    learn: bool = False            # use the last extension that answered this caller
    ring_time: int = 20
    availability: Availability = Availability(True, True, True, 0, 1)


@dataclass(frozen=True)
class Duty:
    """One roster entry: a date ("2025-05-01") or weekdays, and the mobile on duty."""

    number: str
    dates: tuple[str, ...] = ()
    weekdays: tuple[int, ...] = ()


@dataclass(frozen=True)
class DutyRoster:
    id: str
    name: str
    entries: tuple[Duty, ...]
    nobody: str                    # nobody on duty today
    exits: Exits
    changeover: int = 8 * 60       # minutes: before 08:00 the previous day's duty holds
    ring_time: int = 30
    confirm: bool = True
    timezone: str = "Europe/Kyiv"


@dataclass(frozen=True)
class Branch:
    """Calls sent to another shop over its branch trunk (`branch:shop2`, `branch:shop2/201`).

    `branch:shop2` hands the call to that appliance's own routing (its routes
    may name this link's trunk); `branch:shop2/201` rings its extension 201.
    The exits apply when the link is down (unavailable) or nobody there answers."""

    id: str                        # the branch trunk's name
    name: str
    exits: Exits
    ring_time: int = 30


@dataclass(frozen=True)
class ExtensionOptions:
    """How ringing one extension goes when a route or menu sends a call to it."""

    number: str
    exits: Exits
    ring_time: int = 25
    availability: Availability = Availability(False, True, True, 0, 0)


@dataclass(frozen=True)
class Route:
    name: str
    to: str
    numbers: tuple[str, ...] = ()  # dialled numbers (normalised); empty: any
    callers: tuple[str, ...] = ()  # caller patterns (normalised); empty: any
    trunks: tuple[str, ...] = ()   # trunk names; empty: any


@dataclass(frozen=True)
class RoutingConfig:
    routes: tuple[Route, ...]
    unmatched: str | None = None   # calls that match no route
    timezone: str = "Europe/Kyiv"
    extension_defaults: ExtensionOptions = field(default_factory=lambda: ExtensionOptions(
        "", Exits("voicemail:*", "voicemail:*", "voicemail:*", "voicemail:*")))
    extensions: Mapping[str, ExtensionOptions] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)
    queues: Mapping[str, Queue] = field(default_factory=dict)
    menus: Mapping[str, Menu] = field(default_factory=dict)
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    night: Mapping[str, NightSwitch] = field(default_factory=dict)
    announcements: Mapping[str, Announcement] = field(default_factory=dict)
    voicemail: Mapping[str, VoicemailBox] = field(default_factory=dict)
    externals: Mapping[str, External] = field(default_factory=dict)
    webhooks: Mapping[str, Webhook] = field(default_factory=dict)
    managers: Mapping[str, PersonalManager] = field(default_factory=dict)
    duty: Mapping[str, DutyRoster] = field(default_factory=dict)
    branches: Mapping[str, Branch] = field(default_factory=dict)
    known_extensions: Mapping[str, str] = field(default_factory=dict, compare=False)
    # Branch trunk name -> its extension ranges (routing/branch.py), as the trunks say; None: not
    # told (a page that checks one section), and then any branch reference is taken as written.
    links: Mapping[str, tuple[tuple[int, int], ...]] | None = field(default=None, compare=False)

    def extension(self, number: str) -> ExtensionOptions:
        opts = self.extensions.get(number)
        if opts is not None:
            return opts
        d = self.extension_defaults
        return ExtensionOptions(number, d.exits, d.ring_time, d.availability)
