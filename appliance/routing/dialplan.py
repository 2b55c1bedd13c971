"""What a desk phone dialled, and whether that extension may call it.

Pure functions: `classify()` says what kind of number was dialled and
`check_outbound()` whether the extension's dial rules allow it (routing's
desk.py asks both for desk phones' calls and transfers).  Classes are the ones the extensions table stores in `dial_rules`:
local, mobile, international, premium (emergency numbers are always allowed).
Numbering is Ukraine's (the appliance's home market): +380 national numbers,
0XX codes, 0900 premium lines, 112 and the 10X services.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .numbers import normalise

DIALLABLE = re.compile(r"[0-9*#+]+\Z")
CLASSES = ("local", "mobile", "international", "premium")
DEFAULT_RULES = ("local", "mobile")
EMERGENCY = frozenset({"112", "101", "102", "103", "104"})
# Mobile operator codes after +380 (Kyivstar, Vodafone, lifecell, 3Mob...).
MOBILE_CODES = frozenset({"39", "50", "63", "66", "67", "68", "73", "77", "91", "92", "93", "94", "95",
                          "96", "97", "98", "99"})
PREMIUM_PREFIXES = ("+38090", "+38070")
HOME = "+380"

NAMES = {"local": "Local", "mobile": "Mobile", "international": "International", "premium": "Premium-rate"}


class Refused(Exception):
    """A dialled number the engine will not call, with the SIP status and a sentence for the user."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass(frozen=True)
class Dialled:
    number: str        # normalised (+E.164 for outside numbers)
    kind: str          # local, mobile, international, premium, emergency

    @property
    def national(self) -> str:
        """The form a Ukrainian provider expects in the Request-URI."""
        if self.number.startswith(HOME):
            return "0" + self.number[len(HOME):]
        if self.number.startswith("+"):
            return "00" + self.number[1:]
        return self.number


def valid(number: str) -> bool:
    return bool(DIALLABLE.match(number))


def classify(number: str) -> Dialled:
    if not valid(number):
        raise Refused(484, f"'{number}' is not a number: only digits, *, # and + can be dialled")
    if number in EMERGENCY:
        return Dialled(number, "emergency")
    n = normalise(number)
    if not n.startswith("+"):
        if len(n) < 3:
            raise Refused(484, f"'{number}' is too short to be an outside number")
        return Dialled(n, "local")  # short service numbers
    if len(n) < 8:
        raise Refused(484, f"'{number}' is too short to be an outside number")
    if not n.startswith(HOME):
        return Dialled(n, "international")
    if n.startswith(PREMIUM_PREFIXES):
        return Dialled(n, "premium")
    if n[len(HOME):len(HOME) + 2] in MOBILE_CODES:
        return Dialled(n, "mobile")
    return Dialled(n, "local")


def check_outbound(dialled: Dialled, extension: str, rules: list[str] | tuple[str, ...] | None,
                   active: int, limit: int | None) -> None:
    """Raise Refused when `extension` may not place this call now."""
    if dialled.kind == "emergency":
        return
    allowed = DEFAULT_RULES if rules is None else tuple(rules)
    if dialled.kind not in allowed:
        raise Refused(403, f"{NAMES[dialled.kind]} calls are not allowed from extension {extension}")
    limit = 2 if limit is None else limit
    if active >= limit:
        raise Refused(403, f"Extension {extension} already has {active} outside calls (limit {limit})")
