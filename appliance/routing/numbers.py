"""Phone numbers as routing compares them: normalising and caller patterns.

Ukrainian numbers reach the appliance in several forms (the provider sends
380671234567, a contact was typed as 067 123 45 67, a webhook answers
+380671234567).  They are the same number, so every comparison is done on the
normalised form: `+` and the full international number.  Short numbers
(extensions, service numbers) are left as they are, digits only.
"""

from __future__ import annotations

import re
from functools import lru_cache

_DROP = re.compile(r"[\s\-().]")


@lru_cache(maxsize=65536)
def normalise(number: str) -> str:
    """The canonical form of a phone number.

    >>> normalise("067 123-45-67"), normalise("380671234567"), normalise("+380671234567")
    ('+380671234567', '+380671234567', '+380671234567')

    An empty or withheld caller ID normalises to "".
    """
    n = _DROP.sub("", str(number))
    if n.lower() in ("", "anonymous", "unknown", "restricted", "private"):
        return ""
    if n.startswith("00") and len(n) > 4:  # international prefix dialled out of habit
        n = "+" + n[2:]
    if n.startswith("+"):
        return "+" + "".join(c for c in n[1:] if c.isdigit())
    if not n.isdigit():
        return n
    if len(n) == 12 and n.startswith("380"):
        return "+" + n
    if len(n) == 10 and n.startswith("0"):
        return "+38" + n
    return n


def is_external(number: str) -> bool:
    """A number that leaves the building (a mobile or a landline), not an extension."""
    n = normalise(number)
    return n.startswith("+")


@lru_cache(maxsize=4096)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch in "Xx":
            out.append(r"\d")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z")


def normalise_pattern(pattern: str) -> str:
    """A caller pattern in the same form as the numbers it is matched against.

    Patterns are numbers where `X` is any one digit and a trailing `*` is any
    rest: "067*" (all Kyivstar 067 mobiles), "+38044XXXXXXX" (Kyiv landlines),
    "anonymous" (withheld caller ID).
    """
    p = _DROP.sub("", str(pattern))
    if p.lower() in ("anonymous", "unknown", "withheld"):
        return "anonymous"
    star = p.endswith("*")
    body = p[:-1] if star else p
    digits_like = body.replace("X", "0").replace("x", "0")
    n = normalise(digits_like) if digits_like else ""
    if star and digits_like.startswith("0") and not digits_like.startswith("00"):
        n = "+38" + digits_like  # a prefix of a national number
    elif star and digits_like.startswith("380"):
        n = "+" + digits_like
    # Put the X wildcards back where they were, counting from the right.
    xs = [i for i, c in enumerate(reversed(body)) if c in "Xx"]
    chars = list(n)
    for i in xs:
        chars[len(chars) - 1 - i] = "X"
    return "".join(chars) + ("*" if star else "")


def caller_matches(pattern: str, caller: str) -> bool:
    """Whether a normalised caller number matches a normalised pattern."""
    if pattern == "anonymous":
        return caller == ""
    if not caller:
        return False
    return _pattern_regex(pattern).match(caller) is not None
