"""What a desk phone's call, a transfer and a trunk's call mean: decisions, as steps.

Pure functions, like the rest of routing: the engine hands over what it
knows (the extensions, the feature codes it has handlers for, the calling
extension's dial rules and how many outside calls it has up) and carries out
the step it gets back.  Nothing here places a call.
"""

from __future__ import annotations

from typing import Callable, Collection, Mapping, Sequence

from . import dialplan
from .branch import Ranges, branch_of
from .numbers import normalise
from .steps import DeskStep, Feature, Forward, Leg, Pickup, Refuse, Ring, Routed

INTERNAL_RING_SECONDS = 30
OUTSIDE_RING_SECONDS = 120


def ring_extension(number: str, seconds: int = INTERNAL_RING_SECONDS) -> Ring:
    return Ring(f"ext:{number}", f"extension {number}", (Leg(number, 0, seconds),), seconds)


def ring_branch(branch: str, number: str, seconds: int = INTERNAL_RING_SECONDS) -> Ring:
    """Extension `number` of the shop behind branch trunk `branch`, over that trunk."""
    return Ring(f"branch:{branch}/{number}", f"extension {number} at branch '{branch}'",
                (Leg(f"{branch}/{number}", 0, seconds, branch=branch),), seconds)


def ring_outside(number: str, seconds: int = OUTSIDE_RING_SECONDS) -> Forward:
    return Forward(f"number:{number}", number, number, seconds, confirm=False)


def outside(ext: str, number: str, rules: Sequence[str] | None, active: int, limit: int | None) -> Forward | Refuse:
    """An outside number from `ext`, within its dial rules and its limit of calls at once."""
    try:
        d = dialplan.classify(number)
        dialplan.check_outbound(d, ext, rules, active, limit)
    except dialplan.Refused as r:
        return Refuse(r.status, r.text)
    return ring_outside(d.number)


def desk_call(ext: str, number: str, *, extensions: Collection[str], features: Collection[str],
              is_office_number: Callable[[str], bool], rules: Sequence[str] | None = None,
              active: int = 0, limit: int | None = None,
              extension_codes: Collection[str] = (),
              branches: Mapping[str, Ranges] | None = None) -> Ring | Forward | DeskStep:
    """What extension `ext` dialling `number` means.

    In order: only digits, `*`, `#` and `+` are dialled; `**EXT` picks up a
    call ringing at EXT and `*8` one ringing in the caller's groups; an
    extension code followed by an extension (`*31101`) is that feature for
    it; other codes starting `*` or `#` are feature codes; an extension rings (not one's
    own); an extension of another shop (in a branch trunk's `branches` ranges)
    rings there over that trunk; one of the office's numbers takes its route;
    anything else is an outside number within the dial rules (`active`
    outside calls up now)."""
    if not dialplan.valid(number):
        return Refuse(484, f"'{number}' is not a number: only digits, *, # and +")
    if number.startswith("**") and number[2:] in extensions:
        return Pickup(number[2:])
    if number == "*8":
        return Pickup("")
    for code in extension_codes:
        if number.startswith(code) and number[len(code):] in extensions:
            return Feature(number)
    if number[0] in "*#":
        return Feature(number) if number in features else Refuse(404, f"No feature code {number}")
    if number in extensions:
        if number == ext:
            return Refuse(486, "You called your own extension")
        return ring_extension(number)
    branch = branch_of(number, branches or {})
    if branch is not None:
        return ring_branch(branch, number)
    if is_office_number(number):
        return Routed(normalise(number))
    return outside(ext, number, rules, active, limit)


def transfer_target(by: str, user: str, *, extensions: Collection[str], rules: Sequence[str] | None,
                    limit: int | None, may_use_trunk: bool, seconds: int) -> Ring | Forward | Refuse:
    """Where a blind transfer by extension `by` to `user` rings, or why it may not."""
    if not user or not dialplan.valid(user):
        return Refuse(484, f"'{user}' is not a number")
    if user in extensions:
        if user == by:
            return Refuse(403, "A call cannot be transferred to the transferor")
        return ring_extension(user, seconds)
    step = outside(by, user, rules, 0, limit)
    if isinstance(step, Forward):
        if not may_use_trunk:
            return Refuse(403, "This call cannot be transferred to an outside number")
        return ring_outside(step.number, seconds)
    return step


def dialled_number(numbers: Collection[str], to_user: str, ruri_user: str, usernames: Collection[str]) -> str:
    """The office number a trunk's call was for.

    Providers put the dialled number in To or in the Request-URI; a
    registered trunk often sends its own username in the Request-URI, which
    means the trunk's first number."""
    ours = [normalise(n) for n in numbers]
    if normalise(to_user) in ours:
        return normalise(to_user)
    if normalise(ruri_user) in ours or not ours:
        return normalise(ruri_user)
    if ruri_user and ruri_user in usernames:
        return ours[0]
    return normalise(ruri_user)
